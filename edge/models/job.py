"""Job, Task and their parts, with Bacalhau's wire names (see DESIGN.md)."""

from __future__ import annotations

from enum import Enum
from typing import Any

from pydantic import Field, field_serializer, field_validator
from pydantic_core import PydanticCustomError

from .base import WireModel
from .resources import ResourcesConfig


class JobType(str, Enum):
    BATCH = "batch"
    OPS = "ops"
    DAEMON = "daemon"
    SERVICE = "service"


_JOB_TYPES = tuple(t.value for t in JobType)


class JobStateType(str, Enum):
    UNDEFINED = "Undefined"
    PENDING = "Pending"
    QUEUED = "Queued"
    RUNNING = "Running"
    COMPLETED = "Completed"
    FAILED = "Failed"
    STOPPED = "Stopped"

    @property
    def terminal(self) -> bool:
        return self in (JobStateType.COMPLETED, JobStateType.FAILED, JobStateType.STOPPED)


def _lower_text(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


_CANONICAL_TYPES = {
    "urldownload": "urlDownload",
    "s3presigned": "s3PreSigned",
    "localdirectory": "localDirectory",
}
"""Bacalhau's camelCase type names: matched in lowercase here, sent as Bacalhau spells them."""


def display_type(name: str) -> str:
    """A lowercase plug-in type as Bacalhau spells it (`urldownload` -> `urlDownload`)."""
    return _CANONICAL_TYPES.get(name, name)


class SpecConfig(WireModel):
    """A plug-in choice (engine, publisher, input source): a Type string plus its Params."""

    Type: str = ""
    Params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("Type", mode="before")
    @classmethod
    def _type_case(cls, value: Any) -> Any:
        return _lower_text(value)

    @field_serializer("Type")
    def _wire_type(self, value: str) -> str:
        return display_type(value)

    @field_validator("Params", mode="before")
    @classmethod
    def _none_params(cls, value: Any) -> Any:
        return {} if value is None else value

    def param(self, name: str, default: Any = None) -> Any:
        """A param by name, case-insensitively, as job specs write them both ways."""
        lowered = name.lower()
        for key, value in self.Params.items():
            if key.lower() == lowered:
                return value
        return default


class InputSource(WireModel):
    Source: SpecConfig = Field(default_factory=SpecConfig)
    Alias: str = ""
    Target: str = ""


class ResultPath(WireModel):
    Name: str = ""
    Path: str = ""


class NetworkType(str, Enum):
    """Bacalhau's network types, spelled as its API sends them; any case is read."""

    DEFAULT = "Default"
    NONE = "None"
    HOST = "Host"
    FULL = "Full"
    HTTP = "HTTP"
    BRIDGE = "Bridge"

    @classmethod
    def _missing_(cls, value: object) -> NetworkType | None:
        if isinstance(value, str):
            wanted = value.strip().lower()
            for member in cls:
                if member.value.lower() == wanted:
                    return member
        return None


class NetworkConfig(WireModel):
    Type: NetworkType = NetworkType.DEFAULT
    Domains: list[str] = Field(default_factory=list)
    Ports: list[dict[str, Any]] = Field(default_factory=list)

    @field_validator("Type", mode="before")
    @classmethod
    def _type_case(cls, value: Any) -> Any:
        return NetworkType.DEFAULT if value in (None, "") else value


class TimeoutConfig(WireModel):
    """Seconds; 0 means the node's default."""

    ExecutionTimeout: int = 0
    QueueTimeout: int = 0
    TotalTimeout: int = 0


class Task(WireModel):
    Name: str = "main"
    Engine: SpecConfig = Field(default_factory=SpecConfig)
    Publisher: SpecConfig = Field(default_factory=SpecConfig)
    Env: dict[str, str] = Field(default_factory=dict)
    Meta: dict[str, str] = Field(default_factory=dict)
    InputSources: list[InputSource] = Field(default_factory=list)
    ResultPaths: list[ResultPath] = Field(default_factory=list)
    Resources: ResourcesConfig = Field(default_factory=ResourcesConfig)
    Network: NetworkConfig = Field(default_factory=NetworkConfig)
    Timeouts: TimeoutConfig = Field(default_factory=TimeoutConfig)


class Constraint(WireModel):
    Key: str = ""
    Operator: str = "="
    Values: list[str] = Field(default_factory=list)


class JobState(WireModel):
    StateType: JobStateType = JobStateType.UNDEFINED
    Message: str = ""
    Details: dict[str, str] = Field(default_factory=dict)


class Job(WireModel):
    ID: str = ""
    Name: str = ""
    Namespace: str = "default"
    Type: JobType = JobType.BATCH
    Priority: int = 0
    Count: int = 1
    Constraints: list[Constraint] = Field(default_factory=list)
    Meta: dict[str, str] = Field(default_factory=dict)
    Labels: dict[str, str] = Field(default_factory=dict)
    Tasks: list[Task] = Field(default_factory=list)
    State: JobState = Field(default_factory=JobState)
    Version: int = 0
    Revision: int = 0
    CreateTime: int = 0
    ModifyTime: int = 0

    @field_validator("Type", mode="before")
    @classmethod
    def _type_case(cls, value: Any) -> Any:
        value = "batch" if value in (None, "") else _lower_text(value)
        if isinstance(value, str) and value not in _JOB_TYPES:
            raise PydanticCustomError(
                "job_type",
                "unknown job type {kind}: use one of {known}",
                {"kind": repr(value), "known": ", ".join(_JOB_TYPES)},
            )
        return value

    @property
    def task(self) -> Task:
        """Bacalhau jobs carry exactly one task."""
        return self.Tasks[0]
