"""One execution from accepted to finished: inputs, executor, outputs, result."""

from __future__ import annotations

import asyncio
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
from edge.executors.gpu import visible_devices
from edge.executors.wasm import entry_module_input
from edge.models import (
    ComputeStateType,
    Execution,
    GPUInfo,
    InputSource,
    Job,
    JobType,
    RunOutput,
    SpecConfig,
    Task,
)
from edge.publishers import Publisher, PublishRequest
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
    """Bacalhau's task variables. PARTITION_COUNT is what the orchestrator decided when it
    placed the execution (ops and daemon jobs: the nodes that match), so every
    PARTITION_INDEX is below it; `partitions` is for executions placed without one."""
    assert execution.Job is not None
    partitions = max(execution.PartitionCount or partitions, execution.PartitionIndex + 1, 1)
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


def reserved_gpus(execution: Execution) -> list[GPUInfo]:
    """The GPUs the orchestrator reserved for this execution (its AllocatedResources)."""
    return [g for resources in execution.AllocatedResources.Tasks.values() for g in resources.GPUs]


def execution_timeout(job: Job, default: float) -> float | None:
    """The task's own timeout; else the node's default for batch and ops jobs, and none for
    daemon and service jobs, which run until stopped (as Bacalhau's defaults)."""
    if job.task.Timeouts.ExecutionTimeout:
        return float(job.task.Timeouts.ExecutionTimeout)
    return None if job.Type in (JobType.DAEMON, JobType.SERVICE) else default


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
    sources = task_inputs(task)
    staging = workdir / "inputs" if sources else workdir  # touched only with sources
    try:
        inputs = (
            await prepare_inputs(sources, staging, policy, providers, executor.holds_inline)
            if sources
            else []
        )
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
    partitions = execution.PartitionCount or (
        job.Count if job.Type.value in ("batch", "service") else 1
    )
    gpus = reserved_gpus(execution)
    env = task_env(execution, node_id, max(partitions, 1))
    if gpus:
        env["NVIDIA_VISIBLE_DEVICES"] = visible_devices(gpus)
    request = ExecutionRequest(
        execution_id=execution.ID,
        job_id=execution.JobID,
        node_id=node_id,
        task=task,
        env=env,
        workdir=workdir,
        inputs=inputs,
        results=results,
        timeout=execution_timeout(job, default_timeout),
        output_cap=output_cap,
        allow_network=allow_network,
        gpus=gpus,
    )
    try:
        result = await executor.run(request, output_log.write)
    except ExecutorError as exc:
        return Outcome(ComputeStateType.FAILED, str(exc), RunOutput(ErrorMsg=str(exc), ExitCode=-1))
    finally:
        if sources:
            shutil.rmtree(staging, ignore_errors=True)
    return _outcome(result)


def _outcome(result: ExecutionResult) -> Outcome:
    """How the task ended; publishing (when the task succeeded) comes after."""
    output = RunOutput(
        Stdout=result.stdout,
        StdoutTruncated=result.stdout_truncated,
        Stderr=result.stderr,
        StderrTruncated=result.stderr_truncated,
        ExitCode=result.exit_code,
        ErrorMsg=result.error,
    )
    if result.error:
        return Outcome(ComputeStateType.FAILED, result.error, output, None, result.details)
    if result.exit_code != 0:
        return Outcome(
            ComputeStateType.FAILED,
            f"task exited with code {result.exit_code}",
            output,
            None,
            result.details,
        )
    return Outcome(ComputeStateType.COMPLETED, "execution completed", output, None, result.details)


def write_run_files(result_dir: Path, output: RunOutput) -> None:
    """Bacalhau's result layout: `stdout`, `stderr` and `exitCode` beside the ResultPaths."""
    result_dir.mkdir(parents=True, exist_ok=True)
    (result_dir / "stdout").write_text(output.Stdout)
    (result_dir / "stderr").write_text(output.Stderr)
    (result_dir / "exitCode").write_text(f"{output.ExitCode}\n")


async def publish_results(
    execution: Execution,
    publisher: Publisher,
    node_id: str,
    result_dir: Path,
    scratch: Path,
    finished: Outcome,
) -> Outcome:
    """Publishes a finished execution's results; the outcome carries the PublishedResult.
    PublishError propagates so the caller can retry; the result folder is kept until a
    publish succeeds, so a restart mid-upload publishes again."""
    output = finished.output or RunOutput()
    await asyncio.to_thread(write_run_files, result_dir, output)
    try:
        spec = await publisher.publish(PublishRequest(execution, node_id, result_dir, scratch))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return Outcome(
        finished.state,
        finished.message,
        finished.output,
        spec if spec.Type else None,
        finished.details,
    )
