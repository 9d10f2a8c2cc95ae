"""Building job history events the way Bacalhau shows them."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from json.encoder import encode_basestring as _quote  # C, as the encoder below uses
from typing import NamedTuple

from edge.models import ComputeStateType, HistoryType, JobHistory, JobStateType


def rfc3339(ns: int | None = None) -> str:
    """A UTC time as Bacalhau writes it (microseconds, none when zero): `ns`, or now."""
    if ns is not None:
        stamp = datetime.fromtimestamp(ns / 1e9, timezone.utc).isoformat()
        return stamp.replace("+00:00", "Z")
    # Now, on every state change and heartbeat: the date and time of day are formatted once
    # per second, the microseconds each time (a third of the cost of datetime's isoformat).
    global _second
    second, fraction = divmod(time.time_ns(), 1_000_000_000)
    cached = _second  # read once: another thread may replace it meanwhile
    if cached[0] != second:
        cached = _second = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
    micros = fraction // 1000
    return f"{cached[1]}.{micros:06d}Z" if micros else f"{cached[1]}Z"


_second: tuple[int, str] = (-1, "")  # the last second formatted, and its text


def parse_rfc3339(text: str) -> int:
    """Unix ns of an RFC 3339 time as `rfc3339` writes it."""
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1e9)


class HistoryRow(NamedTuple):
    """A history event as the store keeps it: a row of its `history` table, the event's
    JSON (`JobHistory` without SeqNum, which the store assigns) built straight from the
    fields. Four of these are made per placement; building `JobHistory` models and dumping
    them was about a tenth of the orchestrator's CPU per placement, and nothing reads them
    before the store has written them."""

    JobID: str
    ExecutionID: str
    Type: str
    Time: str
    Data: str

    def model(self) -> JobHistory:
        return JobHistory.model_validate_json(self.Data)


# The same bytes as pydantic's model_dump_json (compact, UTF-8, the same escapes), as
# `_quote` gives for one string; a test holds them equal.
_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False).encode


def job_event(
    job_id: str,
    topic: str,
    message: str,
    previous: JobStateType | None = None,
    new: JobStateType | None = None,
    revision: int = 0,
    details: dict[str, str] | None = None,
    version: int = 0,
) -> HistoryRow:
    change = "null"
    if new is not None:
        before = _quote((previous or JobStateType.UNDEFINED).value)
        change = f'{{"Previous":{before},"New":{_quote(new.value)}}}'
    return _row(
        HistoryType.JOB, job_id, "", version, change, "null", revision, topic, message, details
    )


def execution_event(
    job_id: str,
    execution_id: str,
    topic: str,
    message: str,
    previous: ComputeStateType | None = None,
    new: ComputeStateType | None = None,
    details: dict[str, str] | None = None,
    version: int = 0,
) -> HistoryRow:
    change = "null"
    if new is not None:
        change = f'{{"Previous":{int(previous or 0)},"New":{int(new)}}}'
    return _row(
        HistoryType.EXECUTION,
        job_id,
        execution_id,
        version,
        "null",
        change,
        0,
        topic,
        message,
        details,
    )


def _row(
    kind: HistoryType,
    job_id: str,
    execution_id: str,
    version: int,
    job_state: str,
    execution_state: str,
    revision: int,
    topic: str,
    message: str,
    details: dict[str, str] | None,
) -> HistoryRow:
    """`JobHistory`'s JSON (without SeqNum), its fields in order; the state changes come as
    JSON text."""
    now = rfc3339()
    text, stamp = _quote(message), _quote(now)
    data = (
        f'{{"Type":"{kind.value}","JobID":{_quote(job_id)},"JobVersion":{int(version)},'
        f'"ExecutionID":{_quote(execution_id)},"JobState":{job_state},'
        f'"ExecutionState":{execution_state},"NewRevision":{int(revision)},"Comment":{text},'
        f'"Time":{stamp},"Event":{{"Topic":{_quote(topic)},"Message":{text},'
        f'"Timestamp":{stamp},"Details":{_encode(details) if details else "{}"}}}}}'
    )
    return HistoryRow(job_id, execution_id, kind.value, now, data)
