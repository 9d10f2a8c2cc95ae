"""Job history: what happened to a job and its executions, in order."""

from __future__ import annotations

from enum import Enum

from pydantic import Field

from .base import WireModel


class HistoryType(str, Enum):
    JOB = "JobLevel"
    EXECUTION = "ExecutionLevel"


class Event(WireModel):
    Topic: str = ""
    Message: str = ""
    Timestamp: str = ""  # RFC 3339
    Details: dict[str, str] = Field(default_factory=dict)


class StateChange(WireModel):
    Previous: str | int = ""
    New: str | int = ""


_Event = Event  # field names equal type names on the wire


class JobHistory(WireModel):
    Type: HistoryType = HistoryType.JOB
    JobID: str = ""
    ExecutionID: str = ""
    JobState: StateChange | None = None
    ExecutionState: StateChange | None = None
    NewRevision: int = 0
    Comment: str = ""
    Time: str = ""  # RFC 3339
    SeqNum: int = 0
    Event: _Event = Field(default_factory=_Event)


class Evaluation(WireModel):
    ID: str = ""
    JobID: str = ""
    Namespace: str = "default"
    TriggeredBy: str = ""
    Type: str = "batch"
    Status: str = "pending"
    CreateTime: int = 0
    ModifyTime: int = 0
