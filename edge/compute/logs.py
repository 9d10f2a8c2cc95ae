"""Task output as lines: kept on disk for later reads, fanned out to live followers."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

Publish = Callable[[str, list[tuple[int, str]], bool], None]
"""Sends (subject, lines, eof) to one follower."""


class ExecutionLog:
    """One execution's output: complete lines go to `output.jsonl` and to followers."""

    def __init__(self, path: Path, publish: Publish) -> None:
        self.path = path
        self.publish = publish
        self._partial: dict[int, bytes] = {1: b"", 2: b""}
        self._followers: set[str] = set()
        self._file: TextIO | None = None  # opened on the first line: most tasks print little
        self.closed = False

    def write(self, stream: int, data: bytes) -> None:
        buffered = self._partial.get(stream, b"") + data
        *complete, rest = buffered.split(b"\n")
        self._partial[stream] = rest
        if complete:
            self._emit([(stream, c.decode("utf-8", "replace")) for c in complete])

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
        rest = [(s, p.decode("utf-8", "replace")) for s, p in self._partial.items() if p]
        if rest:
            self._emit(rest)
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
