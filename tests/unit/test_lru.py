"""The shared bounded cache (edge/lru.py) behind the node's job caches, the API's password
cache, the scheduler's candidate lists and the wasm module cache."""

from __future__ import annotations

from edge.lru import LRU


def test_the_least_recently_used_entry_goes_first_and_the_size_holds() -> None:
    cache: LRU[str, int] = LRU(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # a use: "b" is now the oldest
    cache.put("c", 3)
    assert list(cache) == ["a", "c"] and len(cache) == 2
    assert cache.get("b") is None
    cache.put("a", 10)  # replaced, and used
    cache.put("d", 4)
    assert list(cache) == ["a", "d"] and list(cache.values()) == [10, 4]


def test_membership_is_not_a_use_and_a_size_below_one_keeps_one() -> None:
    cache: LRU[str, bool] = LRU(2)
    cache.put("a", True)
    cache.put("b", True)
    assert "a" in cache and "z" not in cache
    cache.put("c", True)  # "a" was only looked at, never used: it goes
    assert list(cache) == ["b", "c"]
    tiny: LRU[int, int] = LRU(0)
    tiny.put(1, 1)
    tiny.put(2, 2)
    assert list(tiny) == [2]
    tiny.clear()
    assert len(tiny) == 0
