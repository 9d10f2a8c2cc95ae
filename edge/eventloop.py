"""The event loop every long-running bacedge process runs on.

uvloop when it is installed (a dependency on Linux): measured with bench/bench_jobs.py's
latency section on a 2-core machine, a noop job's submit -> Completed p50 fell by about a
fifth (32-36 ms -> 25-29 ms). `BACEDGE_EVENT_LOOP=asyncio` keeps the standard loop.

The cyclic garbage collector runs less often in these processes, and never looks again at
what startup built (`started()`): an orchestrator with 1,000 simulated nodes spent 1.9-2.9 s
of CPU in it during bench/bench_scale.py's placement run with Python's defaults (1,600+
young, 13 full collections), 0.8-0.9 s with these, at the same RSS. Reference counting
frees everything else at once, as before; cycles are still collected, in larger steps.
"""

from __future__ import annotations

import asyncio
import gc
import os
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

# Python's defaults are (700, 10, 10): a young collection every 700 net allocations.
GC_THRESHOLDS = (10_000, 10, 10)


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
    """Everything built while starting (modules, models, config) lives as long as the
    process: moved out of the collector's reach, so full collections stop rescanning it."""
    gc.collect()
    gc.freeze()
