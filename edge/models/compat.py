"""What differs between the orchestrators a client attaches to, decided by their version.

bacedge and Bacalhau serve one API, but Bacalhau has changed parts of it over the years.
Shapes that tell themselves apart (nodes as older servers list them) are read by the wire
models; what looks the same but means something else is decided here, from the server's
`/api/v1/agent/version`: Bacalhau before 1.6 numbered execution states without Running
and Publishing, so its 6 means BidRejected where today's 6 means Running. The API client
(for the CLI) and the TUI both read executions and history through `Server`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .events import JobHistory, StateChange
from .execution import ComputeStateType, Execution

__all__ = ["LEGACY_STATES_BEFORE", "Server", "server_from_version"]

LEGACY_STATES_BEFORE = (1, 6, 0)
"""The first Bacalhau release numbering execution states as bacedge does."""

# Bacalhau < 1.6: 0-5 as today, then 6 BidRejected, 7 Completed, 8 Failed, 9 Cancelled.
# The answer has been read with today's numbering already, so this maps today's reading
# of an old number to what the old server meant.
_LEGACY_STATES = {
    ComputeStateType.RUNNING: ComputeStateType.BID_REJECTED,
    ComputeStateType.PUBLISHING: ComputeStateType.COMPLETED,
    ComputeStateType.BID_REJECTED: ComputeStateType.FAILED,
    ComputeStateType.COMPLETED: ComputeStateType.CANCELLED,
}
_RELEASE_RE = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?")


@dataclass(frozen=True)
class Server:
    """The orchestrator on the other end, as its version answer describes it."""

    product: str = ""  # "bacedge", "Bacalhau", or "" when it cannot be told
    version: str = ""  # as the server writes it ("v1.5.1")
    release: tuple[int, int, int] | None = None

    @property
    def label(self) -> str:
        """What the header shows: `v0.1.0` for bacedge, `Bacalhau v1.5.1` for Bacalhau."""
        if self.product and self.product != "bacedge" and self.version:
            return f"{self.product} {self.version}"
        return self.version

    @property
    def legacy_execution_states(self) -> bool:
        return (
            self.product == "Bacalhau"
            and self.release is not None
            and self.release < LEGACY_STATES_BEFORE
        )

    def executions(self, executions: Sequence[Execution]) -> list[Execution]:
        """Executions with their compute states as this server meant them."""
        if not self.legacy_execution_states:
            return list(executions)
        out = []
        for execution in executions:
            state = execution.ComputeState
            meant = _LEGACY_STATES.get(state.StateType)
            if meant is not None:
                state = state.model_copy(update={"StateType": meant})
                execution = execution.model_copy(update={"ComputeState": state})
            out.append(execution)
        return out

    def history(self, history: Sequence[JobHistory]) -> list[JobHistory]:
        """History with execution state changes as this server meant them."""
        if not self.legacy_execution_states:
            return list(history)
        out = []
        for item in history:
            change = item.ExecutionState
            if change is not None:
                fixed = StateChange(Previous=_meant(change.Previous), New=_meant(change.New))
                item = item.model_copy(update={"ExecutionState": fixed})
            out.append(item)
        return out


def _meant(value: str | int) -> str | int:
    if isinstance(value, str) and not value.isdigit():
        return value
    try:
        state = ComputeStateType(int(value))
    except ValueError:
        return value
    return int(_LEGACY_STATES.get(state, state))


def _get(data: Mapping[str, Any], key: str) -> Any:
    """A key of a JSON object in any case: Bacalhau has sent both `GitVersion` and
    `gitversion`."""
    for name, value in data.items():
        if isinstance(name, str) and name.lower() == key.lower():
            return value
    return None


def server_from_version(answer: Mapping[str, Any]) -> Server:
    """Read a `/api/v1/agent/version` answer: Bacalhau's flat `{Major, Minor, GitVersion,
    ...}`, or the same wrapped in `BuildVersionInfo` (bacedge's older answer) or `Version`.
    Only bacedge names a `Product`; a server that names none is Bacalhau once its version
    reads as a 1.x or later release."""
    for wrapper in ("BuildVersionInfo", "Version"):
        inner = _get(answer, wrapper)
        if isinstance(inner, Mapping):
            answer = inner
            break
    version = str(_get(answer, "GitVersion") or "")
    match = _RELEASE_RE.match(version)
    if match:
        major, minor, patch = (int(part or 0) for part in match.groups())
    else:
        try:
            major, minor, patch = int(_get(answer, "Major")), int(_get(answer, "Minor")), 0
        except (TypeError, ValueError):
            return Server(product=str(_get(answer, "Product") or ""), version=version)
        version = version or f"v{major}.{minor}"
    product = str(_get(answer, "Product") or "")
    if product.lower() == "bacedge":
        product = "bacedge"
    elif not product and major >= 1:
        product = "Bacalhau"
    return Server(product=product, version=version, release=(major, minor, patch))
