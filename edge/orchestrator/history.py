"""Building job history events the way Bacalhau shows them."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import NamedTuple

from edge.models import ComputeStateType, HistoryType, JobHistory, JobStateType


def rfc3339(ns: int | None = None) -> str:
    ts = (
        datetime.now(timezone.utc) if ns is None else datetime.fromtimestamp(ns / 1e9, timezone.utc)
    )
    return ts.isoformat().replace("+00:00", "Z")


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


# The same bytes as pydantic's model_dump_json (compact, UTF-8, the same escapes); a test
# holds them equal.
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
    change = None
    if new is not None:
        change = {"Previous": (previous or JobStateType.UNDEFINED).value, "New": new.value}
    return _row(
        HistoryType.JOB, job_id, "", version, change, None, revision, topic, message, details
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
    change = None
    if new is not None:
        change = {"Previous": int(previous or 0), "New": int(new)}
    return _row(
        HistoryType.EXECUTION,
        job_id,
        execution_id,
        version,
        None,
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
    job_state: dict[str, str] | None,
    execution_state: dict[str, int] | None,
    revision: int,
    topic: str,
    message: str,
    details: dict[str, str] | None,
) -> HistoryRow:
    now = rfc3339()
    data = _encode(
        {
            "Type": kind.value,
            "JobID": job_id,
            "JobVersion": version,
            "ExecutionID": execution_id,
            "JobState": job_state,
            "ExecutionState": execution_state,
            "NewRevision": revision,
            "Comment": message,
            "Time": now,
            "Event": {
                "Topic": topic,
                "Message": message,
                "Timestamp": now,
                "Details": dict(details) if details else {},
            },
        }
    )
    return HistoryRow(job_id, execution_id, kind.value, now, data)
