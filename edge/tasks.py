"""Ending background tasks for certain, whatever Python version runs them.

On Python 3.11 `asyncio.wait_for` loses a cancellation that arrives as the future it waits
for completes (CPython gh-86296, fixed in 3.12): the task goes on as if never cancelled.
nats-py's `request` waits that way, and so do timed waits of our own, so a loop such as a
node's heartbeat could outlive its cancel, and a stop that cancels once and then awaits the
task waited forever (a CI run hung in a compute node's stop). Tasks are cancelled again until
they have ended; cleanup that must finish shields itself (the Podman executor's does).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

log = logging.getLogger(__name__)


async def cancel_and_wait(tasks: Iterable[asyncio.Future[Any]], patience: float = 1.0) -> None:
    """Cancels `tasks` and returns once all have ended, cancelling those still running
    again every `patience` seconds. One that had failed is logged (its error would otherwise
    be lost, or reported as 'never retrieved')."""
    tasks = list(tasks)
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=patience)
    for task in tasks:
        error = None if task.cancelled() else task.exception()
        if error is not None:
            name = task.get_name() if isinstance(task, asyncio.Task) else repr(task)
            log.warning("task had failed", extra={"task": name, "error": repr(error)})
