"""Executions: one placement of a job's partition on a node."""

from __future__ import annotations

from enum import IntEnum
from typing import Any

from pydantic import ConfigDict, Field, field_validator

from .base import WireModel
from .job import Job, SpecConfig
from .resources import Resources

LOST_DETAIL = "Lost"
"""ComputeState.Details key: the execution died with its node (crash, restart, outage),
not because of its task, so it may be retried on that same node."""


class ComputeStateType(IntEnum):
    """Bacalhau's execution compute states; integers on the wire."""

    UNDEFINED = 0
    NEW = 1
    ASK_FOR_BID = 2
    ASK_FOR_BID_ACCEPTED = 3
    ASK_FOR_BID_REJECTED = 4
    BID_ACCEPTED = 5
    RUNNING = 6
    PUBLISHING = 7
    BID_REJECTED = 8
    COMPLETED = 9
    FAILED = 10
    CANCELLED = 11

    @property
    def terminal(self) -> bool:
        return self in _TERMINAL

    @property
    def label(self) -> str:
        return _LABELS[self]


_TERMINAL = frozenset(
    {
        ComputeStateType.ASK_FOR_BID_REJECTED,
        ComputeStateType.BID_REJECTED,
        ComputeStateType.COMPLETED,
        ComputeStateType.FAILED,
        ComputeStateType.CANCELLED,
    }
)
_LABELS = {
    ComputeStateType.UNDEFINED: "Undefined",
    ComputeStateType.NEW: "New",
    ComputeStateType.ASK_FOR_BID: "AskForBid",
    ComputeStateType.ASK_FOR_BID_ACCEPTED: "AskForBidAccepted",
    ComputeStateType.ASK_FOR_BID_REJECTED: "AskForBidRejected",
    ComputeStateType.BID_ACCEPTED: "BidAccepted",
    ComputeStateType.RUNNING: "Running",
    ComputeStateType.PUBLISHING: "Publishing",
    ComputeStateType.BID_REJECTED: "BidRejected",
    ComputeStateType.COMPLETED: "Completed",
    ComputeStateType.FAILED: "Failed",
    ComputeStateType.CANCELLED: "Cancelled",
}


class DesiredStateType(IntEnum):
    PENDING = 0
    RUNNING = 1
    STOPPED = 2

    @property
    def label(self) -> str:
        return self.name.capitalize()


class ComputeState(WireModel):
    StateType: ComputeStateType = ComputeStateType.UNDEFINED
    Message: str = ""
    Details: dict[str, str] = Field(default_factory=dict)


class DesiredState(WireModel):
    StateType: DesiredStateType = DesiredStateType.PENDING
    Message: str = ""
    Details: dict[str, str] = Field(default_factory=dict)


class RunOutput(WireModel):
    """What a task printed and how it ended; `stderr` is lowercase on Bacalhau's wire."""

    Stdout: str = ""
    StdoutTruncated: bool = False
    Stderr: str = Field(default="", alias="stderr")
    StderrTruncated: bool = False
    ExitCode: int = 0
    ErrorMsg: str = ""


_RESOURCE_KEYS = frozenset(k.lower() for k in Resources.model_fields)


class AllocatedResources(WireModel):
    """What an execution was given, per task name, as Bacalhau sends it:
    `{"Tasks": {"main": {CPU, Memory, Disk, GPU}}}`."""

    Tasks: dict[str, Resources] = Field(default_factory=dict)

    @field_validator("Tasks", mode="before")
    @classmethod
    def _flat_resources(cls, value: Any) -> Any:
        """Executions stored before the per-task map held the resources themselves."""
        if (
            isinstance(value, dict)
            and value
            and all(isinstance(k, str) and k.lower() in _RESOURCE_KEYS for k in value)
        ):
            return {"main": value}
        return value

    def total(self) -> Resources:
        out = Resources()
        for resources in self.Tasks.values():
            out = out.add(resources)
        return out


_Job = Job  # field names equal type names on the wire
_AllocatedResources = AllocatedResources
_DesiredState = DesiredState
_ComputeState = ComputeState
_RunOutput = RunOutput


class Execution(WireModel):
    ID: str = ""
    Namespace: str = "default"
    EvalID: str = ""
    Name: str = ""
    NodeID: str = ""
    JobID: str = ""
    Job: _Job | None = None
    AllocatedResources: _AllocatedResources = Field(default_factory=_AllocatedResources)
    DesiredState: _DesiredState = Field(default_factory=_DesiredState)
    ComputeState: _ComputeState = Field(default_factory=_ComputeState)
    PublishedResult: SpecConfig = Field(default_factory=SpecConfig)
    RunOutput: _RunOutput | None = None
    PreviousExecution: str = ""
    NextExecution: str = ""
    FollowupEvalID: str = ""
    PartitionIndex: int = 0
    # bacedge: the job's partitions when this execution was placed (ops and daemon jobs have
    # one per matching node), so BACALHAU_PARTITION_COUNT agrees with the indexes in use.
    PartitionCount: int = 0
    JobVersion: int = 0
    Revision: int = 0
    CreateTime: int = 0
    ModifyTime: int = 0

    @property
    def state(self) -> ComputeStateType:
        return self.ComputeState.StateType

    @property
    def terminal(self) -> bool:
        return self.ComputeState.StateType in _TERMINAL

    @classmethod
    def placed(
        cls,
        job: _Job,
        node_id: str,
        partition: int,
        partitions: int,
        reserved: Resources,
        execution_id: str,
        now: int,
    ) -> Execution:
        """A new execution of `job` on a node, offered (AskForBid): what the orchestrator
        makes for every placement, assembled from typed values without validation (a test
        holds it equal to the validated model)."""
        return cls.assemble(
            ID=execution_id,
            Namespace=job.Namespace,
            EvalID="",
            Name=job.Name,
            NodeID=node_id,
            JobID=job.ID,
            Job=None,
            AllocatedResources=AllocatedResources.assemble(
                Tasks={job.task.Name or "main": reserved}
            ),
            DesiredState=_TO_RUN,
            ComputeState=ComputeState.assemble(
                StateType=ComputeStateType.ASK_FOR_BID, Message="", Details={}
            ),
            PublishedResult=_NO_RESULT,
            RunOutput=None,
            PreviousExecution="",
            NextExecution="",
            FollowupEvalID="",
            PartitionIndex=partition,
            PartitionCount=partitions,
            JobVersion=job.Version,
            Revision=1,
            CreateTime=now,
            ModifyTime=now,
        )


class _SharedDesiredState(DesiredState):
    """One value every new execution holds until its desired state changes (which
    replaces it): frozen, so that nothing changes it for them all. Each shared value is
    three objects fewer per execution for the cyclic collector to walk, which at 30,000
    executions in flight was a tenth of the orchestrator's CPU."""

    model_config = ConfigDict(frozen=True)


class _SharedSpecConfig(SpecConfig):
    """The empty published result every execution holds until it has one (replaced then)."""

    model_config = ConfigDict(frozen=True)


_TO_RUN = _SharedDesiredState(StateType=DesiredStateType.RUNNING)
_NO_RESULT = _SharedSpecConfig()
