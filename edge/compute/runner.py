"""One execution from accepted to finished: inputs, executor, outputs, result."""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from edge.executors.base import (
    ExecutionRequest,
    ExecutionResult,
    Executor,
    ExecutorError,
    ResultDir,
)
from edge.executors.wasm import entry_module_input
from edge.models import ComputeStateType, Execution, InputSource, RunOutput, SpecConfig, Task
from edge.storage import prepare_inputs
from edge.storage.base import InputError, InputProvider, StoragePolicy

from .logs import ExecutionLog

log = logging.getLogger("bacedge.compute")


@dataclass
class Outcome:
    state: ComputeStateType
    message: str
    output: RunOutput | None = None
    published: SpecConfig | None = None
    details: dict[str, str] = field(default_factory=dict)


def task_inputs(task: Task) -> list[InputSource]:
    """The task's input sources, plus a legacy object-form wasm EntryModule."""
    legacy = entry_module_input(task) if task.Engine.Type == "wasm" else None
    return [*task.InputSources, legacy] if legacy is not None else list(task.InputSources)


def task_env(execution: Execution, node_id: str, partitions: int) -> dict[str, str]:
    assert execution.Job is not None
    env = dict(execution.Job.task.Env)
    env.update(
        {
            "BACALHAU_JOB_ID": execution.JobID,
            "BACALHAU_JOB_NAME": execution.Job.Name,
            "BACALHAU_JOB_NAMESPACE": execution.Job.Namespace,
            "BACALHAU_JOB_TYPE": execution.Job.Type.value,
            "BACALHAU_EXECUTION_ID": execution.ID,
            "BACALHAU_NODE_ID": node_id,
            "BACALHAU_PARTITION_INDEX": str(execution.PartitionIndex),
            "BACALHAU_PARTITION_COUNT": str(partitions),
        }
    )
    return env


async def run_execution(
    execution: Execution,
    executor: Executor,
    providers: dict[str, InputProvider],
    policy: StoragePolicy,
    node_id: str,
    workdir: Path,
    results_dir: Path,
    output_log: ExecutionLog,
    default_timeout: float,
    output_cap: int,
    allow_network: bool,
) -> Outcome:
    """Runs the task; cancellation propagates to the caller after cleanup."""
    job = execution.Job
    assert job is not None
    task = job.task
    staging = workdir / "inputs"
    sources = task_inputs(task)
    try:
        inputs = await prepare_inputs(sources, staging, policy, providers) if sources else []
    except InputError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        return Outcome(
            ComputeStateType.FAILED, f"input: {exc}", RunOutput(ErrorMsg=str(exc), ExitCode=-1)
        )
    results = []
    for wanted in task.ResultPaths:
        host = results_dir / wanted.Name
        host.mkdir(parents=True, exist_ok=True)
        results.append(ResultDir(name=wanted.Name, path=wanted.Path, host_dir=host))
    partitions = job.Count if job.Type.value in ("batch", "service") else 1
    request = ExecutionRequest(
        execution_id=execution.ID,
        job_id=execution.JobID,
        node_id=node_id,
        task=task,
        env=task_env(execution, node_id, max(partitions, 1)),
        workdir=workdir,
        inputs=inputs,
        results=results,
        timeout=float(task.Timeouts.ExecutionTimeout or default_timeout),
        output_cap=output_cap,
        allow_network=allow_network,
    )
    try:
        result = await executor.run(request, output_log.write)
    except ExecutorError as exc:
        return Outcome(ComputeStateType.FAILED, str(exc), RunOutput(ErrorMsg=str(exc), ExitCode=-1))
    finally:
        if sources:
            shutil.rmtree(staging, ignore_errors=True)
    return _outcome(result, results_dir, task.Publisher.Type, bool(results))


def _outcome(
    result: ExecutionResult, results_dir: Path, publisher: str, has_results: bool
) -> Outcome:
    output = RunOutput(
        Stdout=result.stdout,
        StdoutTruncated=result.stdout_truncated,
        Stderr=result.stderr,
        StderrTruncated=result.stderr_truncated,
        ExitCode=result.exit_code,
        ErrorMsg=result.error,
    )
    published = None
    if has_results and publisher != "noop":
        published = SpecConfig(Type="local", Params={"URL": results_dir.resolve().as_uri()})
    if result.error:
        return Outcome(ComputeStateType.FAILED, result.error, output, published, result.details)
    if result.exit_code != 0:
        return Outcome(
            ComputeStateType.FAILED,
            f"task exited with code {result.exit_code}",
            output,
            published,
            result.details,
        )
    return Outcome(
        ComputeStateType.COMPLETED, "execution completed", output, published, result.details
    )
