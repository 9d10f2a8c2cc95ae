"""Errors the API turns into HTTP statuses; the message is for the user."""

from __future__ import annotations


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
