"""Errors the API turns into HTTP statuses; the message is for the user."""

from __future__ import annotations


def quoted(text: str, limit: int = 80) -> str:
    """What a user sent, quoted in a message: at most `limit` characters of it (a 100 kB
    node ID is not echoed back whole)."""
    return repr(text if len(text) <= limit else text[:limit] + "...")


class OrchestratorError(Exception):
    status = 500
    code = "InternalError"


class NotFound(OrchestratorError):
    status = 404
    code = "NotFound"


class BadRequest(OrchestratorError):
    status = 400
    code = "BadRequest"


class Conflict(OrchestratorError):
    status = 409
    code = "Conflict"


class Unavailable(OrchestratorError):
    """What was asked for lives on a node or store that cannot be reached now."""

    status = 503
    code = "Unavailable"


class NotRelayable(Conflict):
    """A result the orchestrator cannot relay; the client fetches it itself."""

    code = "ResultNotRelayable"
