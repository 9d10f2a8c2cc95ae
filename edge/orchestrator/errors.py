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
