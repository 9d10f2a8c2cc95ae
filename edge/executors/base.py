"""The executor protocol: how the compute node asks an engine to run one task.

An executor gets everything prepared (inputs on disk, result dirs created, env
merged) and only has to run the task, stream its output and say how it ended.
Cancellation is asyncio cancellation of `run()`; executors clean up in `finally`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from edge.models import GPUInfo, Task
from edge.workspace import MountedInput, ResultDir

STDOUT = 1  # Bacalhau's log frame Type for stdout
STDERR = 2

LogSink = Callable[[int, bytes], None]
"""Receives raw output chunks as they are produced: (STDOUT|STDERR, data)."""


__all__ = ["MountedInput", "ResultDir"]  # re-exported: executors take them in requests


class ExecutorError(Exception):
    """The task could not be run at all (bad module, missing image): not a task failure."""


@dataclass
class ExecutionRequest:
    execution_id: str
    job_id: str
    node_id: str
    task: Task
    env: dict[str, str]
    workdir: Path
    inputs: list[MountedInput] = field(default_factory=list)
    results: list[ResultDir] = field(default_factory=list)
    timeout: float | None = None
    output_cap: int = 1 << 20
    allow_network: bool = False
    gpus: list[GPUInfo] = field(default_factory=list)  # reserved by the orchestrator


@dataclass
class ExecutionResult:
    exit_code: int = 0
    stdout: str = ""
    stdout_truncated: bool = False
    stderr: str = ""
    stderr_truncated: bool = False
    error: str = ""  # set when the engine failed, e.g. a timeout or an invalid module
    details: dict[str, str] = field(default_factory=dict)


class Executor(Protocol):
    """An engine chosen by the job's `Engine.Type`."""

    name: str
    holds_inline: bool
    """It reads its inputs itself: small inline ones may come held in memory
    (`MountedInput.content`, see `storage.write_held`) instead of written to disk."""

    def problems(self, task: Task) -> list[str]:
        """Why this node cannot run the task (said in the bid rejection); empty if it can."""
        ...

    async def run(self, request: ExecutionRequest, sink: LogSink) -> ExecutionResult: ...

    async def close(self) -> None: ...
