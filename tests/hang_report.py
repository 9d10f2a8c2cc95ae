"""A pytest plugin that says where a stuck test is stuck, before pytest-timeout ends the run.

pytest-timeout (`timeout` in pyproject.toml) bounds every test so a hang fails CI in minutes
instead of using up its time; its own dump shows threads only, and an asyncio test that hangs
shows nothing but the event loop's `select`. This report, written when a test has run for
`hang_report_after` seconds, adds the stack of every task of every running event loop: the
coroutine that waits, and on what.
"""

from __future__ import annotations

import asyncio
import faulthandler
import gc
import io
import sys
import threading
from collections.abc import Iterator

import pytest

REPORT_AFTER = "420"  # seconds: twice the slowest setup seen (a .deb built and booted, 217 s)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini("hang_report_after", "seconds before a running test's stacks are shown")


def _running_loops() -> list[asyncio.AbstractEventLoop]:
    loops = (o for o in gc.get_objects() if isinstance(o, asyncio.AbstractEventLoop))
    return [loop for loop in loops if loop.is_running()]


def _task_stacks(loop: asyncio.AbstractEventLoop) -> str:
    out = io.StringIO()
    for _ in range(3):  # the set may change while read from this thread
        try:
            tasks = list(asyncio.all_tasks(loop))
            break
        except RuntimeError:
            continue
    else:
        return "  (tasks changed while being listed)\n"
    for task in tasks:
        out.write(f"--- {task!r}\n")
        try:
            task.print_stack(limit=12, file=out)
        except Exception as exc:  # a task that ends meanwhile
            out.write(f"  ({exc!r})\n")
    return out.getvalue()


def _report(item: pytest.Item, after: float) -> None:
    """Written past pytest's capture (as pytest-timeout writes its own), so CI shows it."""
    capture = item.config.pluginmanager.getplugin("capturemanager")
    if capture is not None:
        capture.suspend_global_capture(in_=True)
    try:
        err = sys.stderr
        err.write(f"\n==== {item.nodeid} has run for {after:.0f} s: threads, then tasks\n")
        err.flush()
        faulthandler.dump_traceback(file=err, all_threads=True)
        for loop in _running_loops():
            err.write(f"==== tasks of {loop!r}\n{_task_stacks(loop)}")
        err.flush()
    finally:
        if capture is not None:
            capture.resume_global_capture()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[None]:
    after = float(item.config.getini("hang_report_after") or REPORT_AFTER)
    timer = threading.Timer(after, _report, args=(item, after))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
