"""Garbage collection after startup: full collections on heap growth (edge/eventloop.py)."""

from __future__ import annotations

import asyncio
import gc
import weakref

import pytest

from edge.eventloop import collect_on_growth


class _Node:
    """An object in a reference cycle: only the cyclic collector frees it."""

    def __init__(self) -> None:
        self.me = self


def _cycles(count: int) -> weakref.ref[_Node]:
    """`count` objects of cyclic garbage; a weak reference to one of them."""
    nodes = [_Node() for _ in range(count)]
    probe = weakref.ref(nodes[0])
    del nodes
    return probe


async def _until(condition: object, checks: int = 500) -> bool:
    for _ in range(checks):
        if callable(condition) and condition():
            return True
        await asyncio.sleep(0.01)
    return False


@pytest.fixture
def collector_off() -> object:
    """As after `started()`: what the test process built is frozen out of the count."""
    gc.collect()
    gc.freeze()
    yield
    gc.unfreeze()
    gc.enable()


async def test_cycles_wait_for_growth_then_go_in_one_full_collection(collector_off: object) -> None:
    assert gc.isenabled()
    # Past 50,000 new blocks, whatever the test process held before (ratio 0).
    task = asyncio.create_task(collect_on_growth(floor=50_000, check_every=0.01, ratio=0))
    await asyncio.sleep(0.05)
    assert not gc.isenabled()  # no generational passes while it runs
    few = _cycles(1_000)  # far under the floor: left for later, never rescanned meanwhile
    await asyncio.sleep(0.2)
    assert few() is not None
    many = _cycles(60_000)  # the heap grew past the floor: one full collection frees all
    assert await _until(lambda: many() is None and few() is None)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert gc.isenabled()  # given back when the process stops


async def test_a_full_collection_still_comes_after_max_interval(collector_off: object) -> None:
    gc.collect()
    task = asyncio.create_task(collect_on_growth(floor=10**9, check_every=0.01, max_interval=0.1))
    await asyncio.sleep(0.05)
    few = _cycles(10)
    assert await _until(lambda: few() is None)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
