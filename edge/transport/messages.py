"""Messages exchanged over NATS between orchestrator and compute nodes (JSON)."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import Field
from pydantic_core import from_json

from edge.lru import LRU
from edge.models import (
    ComputeStateType,
    Execution,
    Job,
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


class JobCache(LRU[tuple[str, int], Job]):
    """Jobs decoded from offers, by ID and version, the most recent `size`: a node offered
    many partitions of one job (a process of simulated nodes: the same job a thousand
    times) validates it once and holds one copy, shared by those executions (read only:
    nothing on a node changes a job). What may differ between two offers of one version
    (its State, ModifyTime, Revision) is nothing a node reads."""

    def __init__(self, size: int = 256) -> None:
        super().__init__(size)


def decode_offer(data: bytes, jobs: JobCache) -> OfferBatch:
    """`decode(OfferBatch, data)`, with each execution's job taken from `jobs` when it
    holds that version (validated once, when first seen). Raises ValueError as decode."""
    raw = from_json(data)  # pydantic's parser: twice json.loads' speed, ValueError when bad
    held: dict[int, Job] = {}  # execution -> the version the cache holds
    fresh: dict[tuple[str, int], int] = {}  # a version not held -> the execution decoding it
    again: dict[int, tuple[str, int]] = {}  # execution -> a version decoded for another
    executions = raw.get("Executions") if isinstance(raw, dict) else None
    for i, execution in enumerate(executions if isinstance(executions, list) else []):
        job = execution.get("Job") if isinstance(execution, dict) else None
        if isinstance(job, dict) and type(job.get("ID")) is str and type(job.get("Version")) is int:
            key = (job["ID"], job["Version"])
            known = jobs.get(key)
            if known is None and key not in fresh:
                fresh[key] = i  # validated with the rest of the offer, once
                continue
            execution["Job"] = None
            if known is not None:
                held[i] = known
            else:
                again[i] = key
    offer = OfferBatch.model_validate(raw, context=EXACT_KEYS)
    for i, job in held.items():
        offer.Executions[i].Job = job
    for i, key in again.items():
        offer.Executions[i].Job = offer.Executions[fresh[key]].Job
    for key, i in fresh.items():
        if (job := offer.Executions[i].Job) is not None:
            jobs.put(key, job)
    return offer


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


def updates_message(node_id: str, updates: list[ExecutionUpdate], limit: int) -> tuple[bytes, int]:
    """The UpdateBatch to send now, at most `limit` bytes: the first of `updates` (in
    order) that fit, and how many. One that alone is too large has its output cut to fit
    (flagged truncated; the node's log keeps every line). Without this a node whose
    batch outgrew the server's max_payload (two tasks that each printed a megabyte) was
    refused it at every try, and every later update of the node waited behind it."""
    data = encode(UpdateBatch(NodeID=node_id, Updates=updates))
    if len(data) <= limit:
        return data, len(updates)
    head = b'{"NodeID":' + json.dumps(node_id).encode() + b',"Updates":['
    room = limit - len(head) - 2
    parts: list[bytes] = []
    size = 0
    for update in updates:
        part = encode(update)
        if len(part) > room:
            part = encode(_output_cut(update, room))
        if parts and size + len(part) + 1 > room:
            break
        parts.append(part)
        size += len(part) + 1
    return head + b",".join(parts) + b"]}", len(parts)


def _output_cut(update: ExecutionUpdate, limit: int) -> ExecutionUpdate:
    """`update` with the longer of its stdout and stderr halved until it encodes in
    `limit` bytes (the start of each kept, as the capture keeps it), its message at most
    4 KiB."""
    if len(update.Message) > 4096:
        update = update.model_copy(update={"Message": update.Message[:4096]})
    output = update.RunOutput
    if output is None:
        return update
    stdout, stderr = output.Stdout, output.Stderr
    while True:
        cut = output.model_copy(
            update={
                "Stdout": stdout,
                "Stderr": stderr,
                "StdoutTruncated": output.StdoutTruncated or len(stdout) < len(output.Stdout),
                "StderrTruncated": output.StderrTruncated or len(stderr) < len(output.Stderr),
            }
        )
        candidate = update.model_copy(update={"RunOutput": cut})
        if (not stdout and not stderr) or len(encode(candidate)) <= limit:
            return candidate
        if len(stdout) >= len(stderr):
            stdout = stdout[: len(stdout) // 2]
        else:
            stderr = stderr[: len(stderr) // 2]


class UpdateAck(WireModel):
    Sequences: list[int] = Field(default_factory=list)


class CancelRequest(WireModel):
    ExecutionIDs: list[str] = Field(default_factory=list)
    Reason: str = ""


class CancelReply(WireModel):
    Cancelled: list[str] = Field(default_factory=list)


FROM_END = -1
"""A LogRequest's Tail that starts at the end: only lines printed from now on."""


class LogRequest(WireModel):
    ExecutionID: str
    Subject: str
    Follow: bool = False
    Tail: int = 0  # lines from the end; 0 means all, FROM_END none of those written so far
    Acks: bool = False  # frames of stored lines are requests, each answered once taken


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
