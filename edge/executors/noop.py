"""The noop engine: finishes at once; its Params let tests script an outcome.

It runs on every node and costs next to nothing, so it also measures the scheduler's own
throughput: nothing here may allocate more than a result.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

from edge.models import Task

from .base import STDOUT, ExecutionRequest, ExecutionResult, ExecutorError, LogSink

TIMEOUT_EXIT_CODE = 137  # what a killed process reports (128 + SIGKILL), as the wasm engine


def _int_param(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(value)
    number = float(value)
    if not number.is_integer():
        raise ValueError(value)
    return int(number)


def _float_param(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(value)
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise ValueError(value)
    return number


def _params(task: Task) -> tuple[int, str, float]:
    """(ExitCode, Stdout, SleepSeconds), or ExecutorError naming the bad one."""
    engine = task.Engine
    exit_code, stdout, sleep = 0, "", 0.0
    if engine.Params:  # the common case in benchmarks is no Params at all
        raw = engine.param("ExitCode")
        try:
            exit_code = 0 if raw is None else _int_param(raw)
        except ValueError:
            raise ExecutorError(
                f"noop ExitCode {raw!r} is not an integer: set Engine.Params.ExitCode to e.g. 2"
            ) from None
        raw = engine.param("Stdout")
        stdout = "" if raw is None else str(raw)
        raw = engine.param("SleepSeconds")
        try:
            sleep = 0.0 if raw is None else _float_param(raw)
        except ValueError:
            raise ExecutorError(
                f"noop SleepSeconds {raw!r} is not a non-negative number: "
                "set Engine.Params.SleepSeconds to e.g. 1.5"
            ) from None
    return exit_code, stdout, sleep


class NoopExecutor:
    """Engine "noop": exit code, stdout and a cancellable sleep taken from Params."""

    name = "noop"
    holds_inline = False

    def problems(self, task: Task) -> list[str]:
        try:
            _params(task)
        except ExecutorError as exc:
            return [str(exc)]
        return []

    async def run(self, request: ExecutionRequest, sink: LogSink) -> ExecutionResult:
        exit_code, stdout, sleep = _params(request.task)
        timeout = request.timeout
        if sleep > 0:
            if timeout is not None and 0 < timeout < sleep:
                await asyncio.sleep(timeout)
                return ExecutionResult(
                    exit_code=TIMEOUT_EXIT_CODE, error=f"execution timed out after {timeout:g}s"
                )
            await asyncio.sleep(sleep)  # cancellation simply propagates: nothing to clean up
        if not stdout:
            return ExecutionResult(exit_code=exit_code)
        data = stdout.encode()
        sink(STDOUT, data)
        cap = request.output_cap
        if len(data) <= cap:
            return ExecutionResult(exit_code=exit_code, stdout=stdout)
        kept = data[:cap].decode("utf-8", "ignore")
        return ExecutionResult(exit_code=exit_code, stdout=kept, stdout_truncated=True)

    async def close(self) -> None:
        return None
