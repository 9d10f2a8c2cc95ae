"""cancel_and_wait: a task ends even when a cancel is lost to asyncio.wait_for's race."""

from __future__ import annotations

import asyncio
import logging

import pytest

from edge.tasks import cancel_and_wait


async def test_a_loop_whose_cancel_wait_for_lost_still_ends() -> None:
    """The heartbeat's shape: a request answered just as the task is cancelled. On Python
    3.11 wait_for returns the answer and drops the cancel; the loop would run on."""
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[int] = loop.create_future()
    rounds = 0

    async def heartbeat() -> None:
        nonlocal rounds
        while True:
            await asyncio.wait_for(answer if rounds == 0 else asyncio.sleep(10), 30)
            rounds += 1
            await asyncio.sleep(0.01)

    task = asyncio.create_task(heartbeat())
    await asyncio.sleep(0)  # waiting for its answer
    answer.set_result(1)  # answered, and cancelled in the same turn of the loop
    await asyncio.wait_for(cancel_and_wait([task], patience=0.1), 10)
    assert task.cancelled()


async def test_a_task_that_swallows_a_cancel_is_cancelled_again() -> None:
    cancels = 0

    async def stubborn() -> None:
        nonlocal cancels
        while True:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                cancels += 1
                if cancels == 3:
                    raise

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    await asyncio.wait_for(cancel_and_wait([task], patience=0.05), 10)
    assert task.cancelled() and cancels == 3


async def test_cleanup_gets_its_patience_and_a_failure_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cleaned = asyncio.Event()

    async def with_cleanup() -> None:
        try:
            await asyncio.sleep(10)
        finally:
            await asyncio.sleep(0.1)  # interrupted were it cancelled again within patience
            cleaned.set()

    async def failed() -> None:
        raise RuntimeError("the loop broke")

    broken = asyncio.create_task(failed(), name="broken-loop")
    cleaning = asyncio.create_task(with_cleanup())
    done = asyncio.create_task(asyncio.sleep(0))
    await asyncio.sleep(0.01)
    with caplog.at_level(logging.WARNING, logger="edge.tasks"):
        await cancel_and_wait([broken, cleaning, done], patience=5)
    assert cleaned.is_set() and cleaning.cancelled()
    [record] = caplog.records
    assert record.task == "broken-loop" and "the loop broke" in record.error  # type: ignore[attr-defined]
