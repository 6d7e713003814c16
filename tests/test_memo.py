"""PerObject: a value per configuration object, made once, bounded."""

from __future__ import annotations

from dataclasses import dataclass

from ngxws.config.memo import PerObject


@dataclass(frozen=True)
class Conf:
    name: str


def test_made_once_per_object_and_equal_objects_are_apart() -> None:
    made: list[str] = []

    def make(c: Conf) -> str:
        made.append(c.name)
        return c.name.upper()

    memo: PerObject[Conf, str] = PerObject(make)
    a, b = Conf("x"), Conf("x")  # equal, not the same object (a reload's copy)
    assert [memo(a), memo(a), memo(b), memo(b)] == ["X", "X", "X", "X"]
    assert made == ["x", "x"]
    assert memo.get(a) == "X" and memo.get(Conf("y")) is None


def test_bounded_and_an_id_reused_is_not_mistaken() -> None:
    memo: PerObject[Conf, str] = PerObject(lambda c: c.name, limit=3)
    kept = [Conf(str(i)) for i in range(10)]
    for c in kept:
        assert memo(c) == c.name
        assert len(memo.entries) <= 3
    # an entry whose id now names another object answers for its own only
    stale = Conf("old")
    memo.entries[id(kept[0])] = (stale, "old")
    assert memo(kept[0]) == "0"


def test_put_for_values_that_depend_on_more() -> None:
    memo: PerObject[Conf, tuple[str, int]] = PerObject()
    c = Conf("loc")
    assert memo.get(c) is None
    assert memo.put(c, ("loc", 1)) == ("loc", 1)
    assert memo.get(c) == ("loc", 1)
