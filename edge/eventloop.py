"""The event loop every long-running bacedge process runs on.

uvloop when it is installed (a dependency on Linux): measured with bench/bench_jobs.py's
latency section on a 2-core machine, a noop job's submit -> Completed p50 fell by about a
fifth (32-36 ms -> 25-29 ms). `BACEDGE_EVENT_LOOP=asyncio` keeps the standard loop.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    if os.environ.get("BACEDGE_EVENT_LOOP", "").strip().lower() != "asyncio":
        try:
            import uvloop
        except ImportError:
            pass
        else:
            return uvloop.run(main)
    return asyncio.run(main)
