"""Whether this node takes an execution: each rule returns a reason to refuse, or None."""

from __future__ import annotations

from collections.abc import Mapping

from edge.executors.base import Executor
from edge.models import Execution, NetworkType, ResourceError, Resources
from edge.publishers import Publisher, effective_type
from edge.storage.base import InputProvider, StoragePolicy

from .runner import task_inputs

_NETWORKED = (NetworkType.HOST, NetworkType.FULL, NetworkType.HTTP, NetworkType.BRIDGE)


def refusal(
    execution: Execution,
    executors: Mapping[str, Executor],
    providers: Mapping[str, InputProvider],
    publishers: Mapping[str, Publisher],
    policy: StoragePolicy,
    allow_networking: bool,
    capacity: Resources,
) -> str | None:
    job = execution.Job
    if job is None or not job.Tasks:
        return "offer carries no job spec"
    task = job.task
    executor = executors.get(task.Engine.Type)
    if executor is None:
        return f"engine {task.Engine.Type!r} is not enabled on this node"
    problems = executor.problems(task)
    if problems:
        return "; ".join(problems)
    for source in task_inputs(task):
        provider = providers.get(source.Source.Type)
        if provider is None:
            return f"input source type {source.Source.Type!r} is not supported on this node"
        problems = provider.problems(source, policy)
        if problems:
            return "; ".join(problems)
    if task.Network.Type in _NETWORKED and not allow_networking:
        return (
            f"network type {task.Network.Type.value!r} is not allowed on this node "
            "(tasks run without network; an operator can set [compute] allow_networking)"
        )
    kind = effective_type(task)
    if kind:
        publisher = publishers.get(kind)
        if publisher is None:
            return f"publisher {task.Publisher.Type!r} is not available on this node"
        problems = publisher.problems(task.Publisher)
        if problems:
            return "; ".join(problems)
    try:
        need = task.Resources.parse()
    except ResourceError as exc:
        return str(exc)
    if not need.fits_in(capacity):
        return (
            f"the task asks for more than this node has (CPU {need.CPU:g}/{capacity.CPU:g}, "
            f"memory {need.Memory}/{capacity.Memory}, GPU {need.GPU}/{capacity.GPU})"
        )
    return None
