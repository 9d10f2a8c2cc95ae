"""Task output as lines: kept on disk for later reads, fanned out to live followers."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

Publish = Callable[[str, list[tuple[int, str]], bool], None]
"""Sends (subject, lines, eof) to one follower."""


MAX_LINE = 64 * 1024
"""Bytes: a longer line is kept as pieces of this size (Docker cuts at 16 KiB), so a task
printing without newlines never makes the node hold more than this per stream."""


class ExecutionLog:
    """One execution's output: complete lines go to `output.jsonl` and to followers.

    At most `max_bytes` of lines are kept ([compute] max_log_bytes); past that one line on
    stderr says the log was cut, and the rest of the output is read and dropped (the task
    is not held up): a task printing forever cannot fill the device's disk, nor a later
    `job logs` the node's memory."""

    def __init__(self, path: Path, publish: Publish, max_bytes: int) -> None:
        self.path = path
        self.publish = publish
        self.max_bytes = max_bytes
        self._kept = 0  # bytes of lines written so far, newlines included
        self.truncated = False
        self._partial: dict[int, bytes] = {1: b"", 2: b""}
        self._followers: set[str] = set()
        self._file: TextIO | None = None  # opened on the first line: most tasks print little
        self.closed = False

    def write(self, stream: int, data: bytes) -> None:
        if self.truncated:
            return
        buffered = self._partial.get(stream, b"") + data
        *complete, rest = buffered.split(b"\n")
        while len(rest) > MAX_LINE:
            complete.append(rest[:MAX_LINE])
            rest = rest[MAX_LINE:]
        self._partial[stream] = rest
        if complete:
            self._keep(stream, complete)

    def _keep(self, stream: int, raw: list[bytes]) -> None:
        """Lines within the byte budget, cut to MAX_LINE, then the truncation notice."""
        lines: list[tuple[int, str]] = []
        for line in raw:
            for start in range(0, max(len(line), 1), MAX_LINE):
                piece = line[start : start + MAX_LINE]
                if self._kept + len(piece) + 1 > self.max_bytes:
                    self._cut(lines)
                    return
                self._kept += len(piece) + 1
                lines.append((stream, piece.decode("utf-8", "replace")))
        self._emit(lines)

    def _cut(self, lines: list[tuple[int, str]]) -> None:
        self.truncated = True
        self._partial = {1: b"", 2: b""}
        notice = (
            f"bacedge: log cut after {self._kept} bytes ([compute] max_log_bytes); "
            "the task's further output is not kept"
        )
        self._emit([*lines, (2, notice)])

    def _emit(self, lines: list[tuple[int, str]]) -> None:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("a", encoding="utf-8")
        for line in lines:
            self._file.write(json.dumps(line) + "\n")
        self._file.flush()
        for subject in self._followers:
            self.publish(subject, lines, False)

    def follow(self, subject: str, tail: int) -> None:
        """Send what is there, then everything new until close (no await in between)."""
        send_lines(self.path, subject, tail, self.publish, eof=False)
        self._followers.add(subject)

    def close(self) -> None:
        if self.closed:
            return
        for stream, rest in self._partial.items():
            if rest and not self.truncated:
                self._keep(stream, [rest])
        if self._file is not None:
            self._file.close()
        self.closed = True
        for subject in self._followers:
            self.publish(subject, [], True)
        self._followers.clear()


def read_lines(path: Path, tail: int = 0) -> list[tuple[int, str]]:
    try:
        with path.open(encoding="utf-8") as handle:
            lines = [tuple(json.loads(raw)) for raw in handle if raw.strip()]
    except FileNotFoundError:
        return []
    out = [(int(kind), str(text)) for kind, text in lines]
    return out[-tail:] if tail else out


def send_lines(
    path: Path, subject: str, tail: int, publish: Publish, eof: bool, chunk: int = 500
) -> None:
    lines = read_lines(path, tail)
    for start in range(0, len(lines), chunk):
        publish(subject, lines[start : start + chunk], False)
    if eof:
        publish(subject, [], True)
