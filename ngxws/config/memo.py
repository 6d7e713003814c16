"""Values made once from a configuration object, kept while it lives.

A ``Location``, ``ProxySettings`` or ``Server`` never changes once loaded,
so what the request path derives from it alone (a prepared upstream head,
whether its phases can act, its 101's hidden headers) is made on first use
and looked up afterwards.  The frozen dataclasses hash by value, all of
their fields, so the key is the object's identity; the object is kept with
its value, which both keeps that identity from being reused and lets a
lookup tell a reused ``id`` from its own.  Every configuration loaded
(reloads, a ``rewrite ... break`` copy of a location) adds entries: the
memo is emptied whenever it is full, so its size stays bounded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["PerObject"]

K = TypeVar("K")
V = TypeVar("V")


class PerObject(Generic[K, V]):
    """``make(obj)``'s value per object, made once (``get``/``put`` for a
    value that depends on more than the object: the caller checks the rest)."""

    __slots__ = ("entries", "limit", "make")

    def __init__(self, make: Callable[[K], V] | None = None, limit: int = 4096) -> None:
        self.entries: dict[int, tuple[K, V]] = {}
        self.limit = limit
        self.make = make

    def __call__(self, obj: K) -> V:
        hit = self.entries.get(id(obj))
        if hit is not None and hit[0] is obj:
            return hit[1]
        assert self.make is not None
        return self.put(obj, self.make(obj))

    def get(self, obj: K) -> V | None:
        hit = self.entries.get(id(obj))
        return hit[1] if hit is not None and hit[0] is obj else None

    def put(self, obj: K, value: V) -> V:
        if len(self.entries) >= self.limit:
            self.entries.clear()
        self.entries[id(obj)] = (obj, value)
        return value
