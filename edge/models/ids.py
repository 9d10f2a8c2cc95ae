"""Bacalhau-style IDs: a one-letter kind, a dash, a UUID."""

from __future__ import annotations

import time
import uuid


def new_job_id() -> str:
    return f"j-{uuid.uuid4()}"


def new_execution_id() -> str:
    return f"e-{uuid.uuid4()}"


def new_node_id() -> str:
    return f"n-{uuid.uuid4()}"


def new_evaluation_id() -> str:
    return str(uuid.uuid4())


def now_ns() -> int:
    """Bacalhau times are unix nanoseconds."""
    return time.time_ns()


def short_id(full: str) -> str:
    """The prefix people read in tables (`j-1a2b3c4d`)."""
    return full[:10] if len(full) > 10 and full[1:2] == "-" else full[:8]
