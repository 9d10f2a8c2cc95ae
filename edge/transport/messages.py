"""Messages exchanged over NATS between orchestrator and compute nodes (JSON)."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import Field

from edge.models import (
    ComputeStateType,
    Execution,
    NodeInfo,
    NodeMembership,
    Resources,
    RunOutput,
    SpecConfig,
    WireModel,
)
from edge.models.base import EXACT_KEYS

M = TypeVar("M", bound=WireModel)


def encode(message: WireModel) -> bytes:
    return message.model_dump_json(by_alias=True).encode()


def decode(kind: type[M], data: bytes) -> M:
    """A message from another bacedge process, written by `encode`: exact keys."""
    return kind.model_validate_json(data, context=EXACT_KEYS)


class HandshakeReply(WireModel):
    Accepted: bool = True
    Reason: str = ""
    Membership: NodeMembership = NodeMembership.APPROVED
    HeartbeatInterval: float = 15.0
    # Executions the orchestrator believes run on this node; the node reconciles.
    ActiveExecutions: list[str] = Field(default_factory=list)


class Heartbeat(WireModel):
    NodeID: str
    Sequence: int = 0
    AvailableCapacity: Resources = Field(default_factory=Resources)
    RunningExecutions: int = 0
    EnqueuedExecutions: int = 0


class OfferBatch(WireModel):
    Executions: list[Execution] = Field(default_factory=list)
    Fresh: bool = False
    """Every execution here is offered for the first time (made in this scheduling round),
    so the node can know none of them and need not look them up in its ledger. Absent
    (an older orchestrator): the node checks each one, as an offer made again is answered
    "taken" and never run twice."""


def encode_offer(executions: list[Execution], jobs: dict[str, bytes], fresh: bool = False) -> bytes:
    """`encode(OfferBatch(...))` with each execution's Job attached, the same JSON (keys in
    another order), from `jobs`: each job's JSON (`encode(job)`, or b"null"), encoded once
    per scheduling round rather than once per execution (a job of Count 500 on 500 nodes
    was serialised 500 times)."""
    parts = []
    for execution in executions:
        body = execution.model_dump_json(by_alias=True, exclude={"Job"}).encode()
        parts.append(body[:-1] + b',"Job":' + jobs.get(execution.JobID, b"null") + b"}")
    head = b'{"Fresh":true,"Executions":[' if fresh else b'{"Executions":['
    return head + b",".join(parts) + b"]}"


class OfferResult(WireModel):
    ExecutionID: str
    Accepted: bool
    Reason: str = ""


class OfferReply(WireModel):
    Results: list[OfferResult] = Field(default_factory=list)


_RunOutput = RunOutput  # field names equal type names on the wire


class ExecutionUpdate(WireModel):
    """One state change of an execution as the node saw it; Sequence orders per node."""

    Sequence: int = 0
    ExecutionID: str
    JobID: str
    NodeID: str
    State: ComputeStateType
    Message: str = ""
    Details: dict[str, str] = Field(default_factory=dict)
    RunOutput: _RunOutput | None = None
    PublishedResult: SpecConfig | None = None
    Time: int = 0


class UpdateBatch(WireModel):
    NodeID: str
    Updates: list[ExecutionUpdate] = Field(default_factory=list)


class UpdateAck(WireModel):
    Sequences: list[int] = Field(default_factory=list)


class CancelRequest(WireModel):
    ExecutionIDs: list[str] = Field(default_factory=list)
    Reason: str = ""


class CancelReply(WireModel):
    Cancelled: list[str] = Field(default_factory=list)


class LogRequest(WireModel):
    ExecutionID: str
    Subject: str
    Follow: bool = False
    Tail: int = 0  # lines from the end; 0 means all


class LogReply(WireModel):
    OK: bool = True
    Error: str = ""


class LogFrame(WireModel):
    """One or more lines, or the end of the stream (EOF) with an optional error."""

    Lines: list[tuple[int, str]] = Field(default_factory=list)
    EOF: bool = False
    Error: str = ""


def node_info_of(data: Any) -> NodeInfo:
    return NodeInfo.model_validate(data)


class PresignRequest(WireModel):
    """A node asks where to upload an `s3managed` result; the orchestrator checks that the
    execution is this node's before signing."""

    ExecutionID: str
    NodeID: str


class PresignReply(WireModel):
    OK: bool = False
    URL: str = ""
    Bucket: str = ""
    Key: str = ""
    Error: str = ""


class ResultChunkRequest(WireModel):
    ExecutionID: str
    Offset: int = 0
    Length: int = 512 * 1024


class JoinRequest(WireModel):
    """A node's first words, with a one-time join token: the bcrypt hash of a password it
    made itself becomes its NATS user's (the password stays on the node)."""

    Token: str = Field(max_length=256)
    NodeID: str = Field(max_length=128)
    PasswordHash: str = Field(max_length=128)


class JoinReply(WireModel):
    Accepted: bool = False
    Reason: str = ""
