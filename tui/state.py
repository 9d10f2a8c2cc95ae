"""Small state objects the app publishes to its widgets (connection, command log)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CommandEntry", "Link"]


@dataclass(frozen=True)
class Link:
    """How the last poll went: the header and the disconnected banner show this.

    status: `connecting` before the first answer, `ok`, `down` (unreachable), or `error`
    (the server answered with an error, or sent data that could not be read).
    """

    status: str = "connecting"
    message: str = ""
    attempt: int = 0
    retry_at: float = 0.0  # monotonic time of the next try
    last_ok: float = 0.0  # app-clock time of the last good poll

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass(frozen=True)
class CommandEntry:
    """One action taken in the TUI, as the equivalent CLI command, and how it went."""

    at: float  # app-clock seconds
    command: str
    ok: bool
    message: str
