"""A bounded mapping that forgets its least recently used entry first.

The one cache shape bacedge needs in several places (jobs a node has decoded or stored,
checked API passwords, the scheduler's candidate lists, loaded wasm modules): bounded so a
long-running process never grows with what it has seen, and cheap (an OrderedDict)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Iterator, ValuesView
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LRU(Generic[K, V]):
    """At most `size` entries (at least one); `get` and `put` count as a use."""

    def __init__(self, size: int) -> None:
        self.size = max(1, size)
        self._entries: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        value = self._entries.get(key)
        if value is not None:
            self._entries.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self._entries[key] = value
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def __contains__(self, key: object) -> bool:
        """Membership only: not a use."""
        return key in self._entries

    def __iter__(self) -> Iterator[K]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def values(self) -> ValuesView[V]:
        return self._entries.values()

    def clear(self) -> None:
        self._entries.clear()
