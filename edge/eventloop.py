"""The event loop every long-running bacedge process runs on, and its garbage collection.

uvloop when it is installed (a dependency on Linux): measured with bench/bench_jobs.py's
latency section on a 2-core machine, a noop job's submit -> Completed p50 fell by about a
fifth (32-36 ms -> 25-29 ms). `BACEDGE_EVENT_LOOP=asyncio` keeps the standard loop.

Garbage collection: reference counting frees almost everything these processes drop; the
cyclic collector is for the rest. Python's generational passes keep re-scanning whatever
survives a young collection, and a server at scale holds a large, slowly changing heap
(the fleet's node states, thousands of executions in flight). Measured in
bench/bench_scale.py's placement run with 10,000 simulated nodes, the generational
collector (already at (10000, 10, 10)) took about a quarter of the orchestrator's CPU and
paused it for 0.4-0.8 s several times in 15 s, while a full collection found ~600 cyclic
objects in 15 s. So once a process has started (`started()`): what startup built is frozen
out of the collector's reach, and full collections run only when the heap has grown by as
much as it held after the last one (at least `GROWTH_FLOOR` memory blocks), or `MAX_INTERVAL`
after it: cyclic garbage stays bounded by the live heap, and a steady server is not scanned
over and over. Startup keeps the generational collector (a node may retry joining for a long
time, and each failed try can leave cycles).

The heap is measured in the interpreter's allocated memory blocks, never by listing the
objects (`gc.get_objects()`): that list holds a reference to every object of every thread,
and an object whose owner dropped it meanwhile is then finalised on this thread, not its
own; a SQLite cursor finalised that way resets the statement its connection's thread may be
running.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import sys
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

log = logging.getLogger("bacedge.gc")

# Until started(): Python's defaults are (700, 10, 10), a young collection every 700 net
# allocations; startup builds many long-lived objects, so fewer passes.
GC_THRESHOLDS = (10_000, 10, 10)
GROWTH_FLOOR = 200_000  # memory blocks (at most 512 bytes each): a few MB of small objects
CHECK_EVERY = 1.0  # seconds: reading the growth count costs nothing
MAX_INTERVAL = 300.0  # seconds: slow leaks of cycles are still collected

_collector: asyncio.Task[None] | None = None


def run(main: Coroutine[Any, Any, T]) -> T:
    gc.set_threshold(*GC_THRESHOLDS)
    if os.environ.get("BACEDGE_EVENT_LOOP", "").strip().lower() != "asyncio":
        try:
            import uvloop
        except ImportError:
            pass
        else:
            return uvloop.run(main)
    return asyncio.run(main)


def started() -> None:
    """Startup is done (call from the running loop): everything built so far lives as
    long as the process and is frozen out of the collector's reach; from here, full
    collections on growth (`collect_on_growth`) replace the generational passes."""
    global _collector
    gc.collect()
    gc.freeze()
    if _collector is None or _collector.done():
        _collector = asyncio.get_running_loop().create_task(
            collect_on_growth(), name="gc-on-growth"
        )


async def collect_on_growth(
    floor: int = GROWTH_FLOOR,
    check_every: float = CHECK_EVERY,
    max_interval: float = MAX_INTERVAL,
    ratio: float = 1.0,
) -> None:
    """Turns the generational collector off and runs full collections when the heap has
    grown by `ratio` times what it held after the last one (at least `floor` blocks), or
    `max_interval` seconds after it; the collector is turned back on when this ends."""
    gc.disable()
    try:
        live = sys.getallocatedblocks()
        last = time.monotonic()
        while True:
            await asyncio.sleep(check_every)
            grown = sys.getallocatedblocks() - live
            fresh = gc.get_count()[0] > 0  # objects the collector tracks, made since
            overdue = fresh and time.monotonic() - last >= max_interval
            if grown >= max(floor, live * ratio) or overdue:
                began = time.perf_counter()
                found = gc.collect()
                live = sys.getallocatedblocks()
                last = time.monotonic()
                log.debug(
                    "full collection",
                    extra={
                        "grown": grown,
                        "unreachable": found,
                        "blocks": live,
                        "ms": round((time.perf_counter() - began) * 1000, 1),
                    },
                )
    finally:
        with contextlib.suppress(Exception):
            gc.enable()
