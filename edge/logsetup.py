"""Structured logs: JSON lines when stderr is not a terminal (journald, files), text otherwise.

Fields passed as `extra=` (job_id, node_id, ...) appear as JSON keys, so logs can be
filtered by ID without parsing messages.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from typing import IO, Any

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update(_fields(record))
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extra = " ".join(f"{k}={v}" for k, v in _fields(record).items())
        line = f"{time.strftime('%H:%M:%S')} {record.levelname[:4]} {record.getMessage()}"
        line = f"{line} {extra}" if extra else line
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def _to_journal(stream: IO[str]) -> bool:
    """Whether the stream is systemd's journal (JOURNAL_STREAM names its device:inode)."""
    wanted = os.environ.get("JOURNAL_STREAM", "")
    try:
        info = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return bool(wanted) and wanted == f"{info.st_dev}:{info.st_ino}"


def use_json(fmt: str = "auto", stream: IO[str] | None = None) -> bool:
    """`json`, `text`, or `auto`: one readable line per record on a terminal, JSON lines
    under systemd (the journal) or when the output is a file or a pipe."""
    if fmt != "auto":
        return fmt == "json"
    stream = stream or sys.stderr
    try:
        terminal = stream.isatty()
    except (AttributeError, ValueError):
        terminal = False
    return not terminal or _to_journal(stream)


class MalformedRequestFilter(logging.Filter):
    """aiohttp logs a request its HTTP parser refuses (a header line over 8 KiB, bytes that
    are not HTTP) with a traceback that quotes the start of the offending line, which may
    be an `Authorization` header. Such a record becomes one warning without those bytes."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is None:
            return True
        from aiohttp.http_exceptions import HttpProcessingError

        if isinstance(exc, HttpProcessingError):
            remote = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
            record.msg = "refused a malformed HTTP request from %s: %s (HTTP %s)"
            record.args = (remote, type(exc).__name__, exc.code)
            record.exc_info = record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def setup_logging(level: str = "info", fmt: str = "auto") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if use_json(fmt) else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # httpx/httpcore log every request URL at INFO: signed URLs carry their signature in
    # the query, and a secret must never reach a log line.
    for noisy in ("aiohttp.access", "nats", "httpx", "httpcore", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    server = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, MalformedRequestFilter) for f in server.filters):
        server.addFilter(MalformedRequestFilter())
