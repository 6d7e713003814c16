"""RelayTurns, the per-turn relay allowance, without a loop: ``call_soon`` is a list."""

from __future__ import annotations

from collections.abc import Callable

from ngxws.proxy.turns import RelayTurns


class Side:
    """Holds ``chunks`` pieces of work; relays one per turn, costing ``cost``."""

    def __init__(self, name: str, turns: RelayTurns, chunks: int, cost: int, log: list[str]):
        self.name, self.turns, self.chunks, self.cost, self.log = name, turns, chunks, cost, log

    def run_held(self) -> None:
        self.log.append(self.name)
        self.turns.spend(self.cost)
        self.chunks -= 1
        if self.chunks:
            self.turns.wait(self)


def _turns(per_turn: int) -> tuple[RelayTurns, list[Callable[[], None]]]:
    soon: list[Callable[[], None]] = []
    return RelayTurns(soon.append, per_turn), soon


def _next_turn(soon: list[Callable[[], None]]) -> None:
    callbacks = soon[:]
    soon.clear()
    for callback in callbacks:
        callback()


def test_spent_allowance_is_refilled_next_turn() -> None:
    turns, soon = _turns(100)
    turns.spend(150)
    assert turns.left == -50
    assert len(soon) == 1  # one refill per turn, however often it is spent
    turns.spend(10)
    assert len(soon) == 1
    _next_turn(soon)
    assert turns.left == 100
    assert soon == []  # nothing waits: no more callbacks


def test_waiting_sides_take_turns_in_order_within_the_allowance() -> None:
    turns, soon = _turns(100)
    log: list[str] = []
    a = Side("a", turns, 3, 60, log)
    b = Side("b", turns, 1, 60, log)
    c = Side("c", turns, 2, 60, log)
    turns.spend(100)  # this turn is spent
    for side in (a, b, c):
        turns.wait(side)
    _next_turn(soon)
    assert log == ["a", "b"]  # 60 + 60 > 100: the turn ends after b
    _next_turn(soon)
    assert log == ["a", "b", "c", "a"]  # round robin: a went to the back
    _next_turn(soon)
    assert log == ["a", "b", "c", "a", "c", "a"]
    assert turns.waiting == 0
    _next_turn(soon)  # the last spend armed one refill
    assert soon == [] and turns.left == 100


def test_a_side_that_requeues_waits_for_the_next_turn() -> None:
    turns, soon = _turns(10_000)
    log: list[str] = []
    a = Side("a", turns, 5, 1, log)
    turns.wait(a)
    _next_turn(soon)
    assert log == ["a"]  # one chunk per side per turn, even with allowance left
    _next_turn(soon)
    assert log == ["a", "a"]
