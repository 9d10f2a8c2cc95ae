"""Wire models shared by the API, CLI, TUI, orchestrator and compute nodes.

Each name loads its own submodule on first use (PEP 562): `bacedge job list` builds the
job models and not the node, event or version ones (~15 ms of a cold start), and a module
that imports one model does not pay for the rest. Type checkers read the imports below.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .base import WireModel
    from .events import Evaluation, Event, HistoryType, JobHistory, StateChange
    from .execution import (
        LOST_DETAIL,
        AllocatedResources,
        ComputeState,
        ComputeStateType,
        DesiredState,
        DesiredStateType,
        Execution,
        RunOutput,
    )
    from .ids import new_evaluation_id, new_execution_id, new_job_id, new_node_id, now_ns, short_id
    from .job import (
        Constraint,
        InputSource,
        Job,
        JobState,
        JobStateType,
        JobType,
        NetworkConfig,
        NetworkType,
        ResultPath,
        SpecConfig,
        Task,
        TimeoutConfig,
        display_type,
    )
    from .node import (
        ComputeNodeInfo,
        ConnectionState,
        Inventory,
        NodeConnection,
        NodeInfo,
        NodeMembership,
        NodeScheduling,
        NodeState,
        SchedulingState,
        StoreInfo,
    )
    from .resources import (
        MIB,
        GPUInfo,
        ResourceError,
        Resources,
        ResourcesConfig,
        format_bytes,
        parse_bytes,
        parse_cpu,
        parse_gpu,
    )
    from .version import BuildVersionInfo

_HOME: dict[str, str] = {
    "AllocatedResources": "execution",
    "BuildVersionInfo": "version",
    "ComputeNodeInfo": "node",
    "ComputeState": "execution",
    "ComputeStateType": "execution",
    "ConnectionState": "node",
    "Constraint": "job",
    "DesiredState": "execution",
    "DesiredStateType": "execution",
    "display_type": "job",
    "Evaluation": "events",
    "Event": "events",
    "Execution": "execution",
    "format_bytes": "resources",
    "GPUInfo": "resources",
    "HistoryType": "events",
    "InputSource": "job",
    "Inventory": "node",
    "Job": "job",
    "JobHistory": "events",
    "JobState": "job",
    "JobStateType": "job",
    "JobType": "job",
    "LOST_DETAIL": "execution",
    "MIB": "resources",
    "NetworkConfig": "job",
    "NetworkType": "job",
    "new_evaluation_id": "ids",
    "new_execution_id": "ids",
    "new_job_id": "ids",
    "new_node_id": "ids",
    "NodeConnection": "node",
    "NodeInfo": "node",
    "NodeMembership": "node",
    "NodeScheduling": "node",
    "NodeState": "node",
    "now_ns": "ids",
    "parse_bytes": "resources",
    "parse_cpu": "resources",
    "parse_gpu": "resources",
    "ResourceError": "resources",
    "Resources": "resources",
    "ResourcesConfig": "resources",
    "ResultPath": "job",
    "RunOutput": "execution",
    "SchedulingState": "node",
    "short_id": "ids",
    "SpecConfig": "job",
    "StateChange": "events",
    "StoreInfo": "node",
    "Task": "job",
    "TimeoutConfig": "job",
    "WireModel": "base",
}


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value  # later reads skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOME])


__all__ = [
    "LOST_DETAIL",
    "MIB",
    "AllocatedResources",
    "BuildVersionInfo",
    "ComputeNodeInfo",
    "ComputeState",
    "ComputeStateType",
    "ConnectionState",
    "Constraint",
    "DesiredState",
    "DesiredStateType",
    "Evaluation",
    "Event",
    "Execution",
    "GPUInfo",
    "HistoryType",
    "InputSource",
    "Inventory",
    "Job",
    "JobHistory",
    "JobState",
    "JobStateType",
    "JobType",
    "NetworkConfig",
    "NetworkType",
    "NodeConnection",
    "NodeInfo",
    "NodeMembership",
    "NodeScheduling",
    "NodeState",
    "ResourceError",
    "Resources",
    "ResourcesConfig",
    "ResultPath",
    "RunOutput",
    "SchedulingState",
    "SpecConfig",
    "StateChange",
    "StoreInfo",
    "Task",
    "TimeoutConfig",
    "WireModel",
    "display_type",
    "format_bytes",
    "new_evaluation_id",
    "new_execution_id",
    "new_job_id",
    "new_node_id",
    "now_ns",
    "parse_bytes",
    "parse_cpu",
    "parse_gpu",
    "short_id",
]
