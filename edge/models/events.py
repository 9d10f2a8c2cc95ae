"""Job history: what happened to a job and its executions, in order."""

from __future__ import annotations

from enum import Enum

from pydantic import Field

from .base import WireModel
from .execution import ComputeStateType


class HistoryType(str, Enum):
    JOB = "JobLevel"
    EXECUTION = "ExecutionLevel"


class Event(WireModel):
    Topic: str = ""
    Message: str = ""
    Timestamp: str = ""  # RFC 3339
    Details: dict[str, str] = Field(default_factory=dict)


def state_label(value: str | int) -> str:
    """A state as people read it: execution states travel as integers, job states as names."""
    if isinstance(value, int) or value.isdigit():
        try:
            return ComputeStateType(int(value)).label
        except ValueError:
            return str(value)
    return value


class StateChange(WireModel):
    Previous: str | int = ""
    New: str | int = ""


_Event = Event  # field names equal type names on the wire


class JobHistory(WireModel):
    Type: HistoryType = HistoryType.JOB
    JobID: str = ""
    JobVersion: int = 0  # the job version the event belongs to
    ExecutionID: str = ""
    JobState: StateChange | None = None
    ExecutionState: StateChange | None = None
    NewRevision: int = 0
    Comment: str = ""
    Time: str = ""  # RFC 3339
    SeqNum: int = 0
    Event: _Event = Field(default_factory=_Event)

    @property
    def state_text(self) -> str:
        """`Previous → New` when the state changed, else the one state there is."""
        change = self.JobState if self.JobState is not None else self.ExecutionState
        if change is None:
            return ""
        before = state_label(change.Previous) if change.Previous != "" else ""
        after = state_label(change.New) if change.New != "" else ""
        if before and after and before != after:
            return f"{before} → {after}"
        return after or before


class Evaluation(WireModel):
    ID: str = ""
    JobID: str = ""
    Namespace: str = "default"
    TriggeredBy: str = ""
    Type: str = "batch"
    Status: str = "pending"
    CreateTime: int = 0
    ModifyTime: int = 0
