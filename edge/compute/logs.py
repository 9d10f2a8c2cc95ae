"""Task output as lines: kept on disk for later reads, fanned out to live followers.

What is on disk is sent in frames read by a worker thread, from the byte offset where the
wanted lines begin (`tail` found by reading the file backwards), each frame sent before the
next is read: a 64 MiB log costs the node a frame of memory, never the whole file parsed on
its event loop (3.1 s and +193 MiB measured for 64 MiB of short lines, `tail` or not).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import BinaryIO

Line = tuple[int, str]

SendFrame = Callable[[list[Line], bool], Awaitable[None]]
"""Sends (lines, eof) to one reader, returning once it may take the next frame."""

FRAME_LINES = 500
FRAME_BYTES = 512 * 1024
"""Stored bytes of lines per frame (at least one line): a frame stays under a NATS server's
default 1 MiB payload limit, whatever the lines hold."""

KEEPALIVE = 5.0
"""Seconds a follower of a quiet task waits before an empty frame: the reader's answer, or
its absence (it left), is all that tells the node whether anyone still reads."""

_BACKWARDS = 64 * 1024


MAX_LINE = 64 * 1024
"""Bytes: a longer line is kept as pieces of this size (Docker cuts at 16 KiB), so a task
printing without newlines never makes the node hold more than this per stream."""


class ExecutionLog:
    """One execution's output: complete lines go to `output.jsonl`, where followers read
    them at their own pace (woken when more is written): a slow one holds nothing back and
    costs the node a frame, never a queue of lines.

    At most `max_bytes` of lines are kept ([compute] max_log_bytes); past that one line on
    stderr says the log was cut, and the rest of the output is read and dropped (the task
    is not held up): a task printing forever cannot fill the device's disk, nor a later
    `job logs` the node's memory."""

    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self._kept = 0  # bytes of lines written so far, newlines included
        self.truncated = False
        self._partial: dict[int, bytes] = {1: b"", 2: b""}
        self._grown: asyncio.Event | None = None  # set when followers have more to read
        self._file: BinaryIO | None = None  # opened on the first line: most tasks print little
        self.written = 0  # bytes of complete lines in the file: what a reader may read
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
        lines: list[Line] = []
        for line in raw:
            for start in range(0, max(len(line), 1), MAX_LINE):
                piece = line[start : start + MAX_LINE]
                if self._kept + len(piece) + 1 > self.max_bytes:
                    self._cut(lines)
                    return
                self._kept += len(piece) + 1
                lines.append((stream, piece.decode("utf-8", "replace")))
        self._emit(lines)

    def _cut(self, lines: list[Line]) -> None:
        self.truncated = True
        self._partial = {1: b"", 2: b""}
        notice = (
            f"bacedge: log cut after {self._kept} bytes ([compute] max_log_bytes); "
            "the task's further output is not kept"
        )
        self._emit([*lines, (2, notice)])

    def _emit(self, lines: list[Line]) -> None:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("ab")
            self.written = os.fstat(self._file.fileno()).st_size
        data = "".join(json.dumps(line) + "\n" for line in lines).encode()
        self._file.write(data)
        self._file.flush()
        self.written += len(data)
        self._wake()

    def _wake(self) -> None:
        if self._grown is not None:
            self._grown.set()
            self._grown = None

    async def follow(self, tail: int, send: SendFrame) -> None:
        """Sends what is written (its last `tail` lines), then each line written after it,
        frame by frame as the reader takes them, then EOF once the log is closed."""
        offset = await asyncio.to_thread(tail_offset, self.path, tail, self.written)
        while True:
            if offset < self.written:
                lines, offset = await asyncio.to_thread(read_frame, self.path, offset, self.written)
                if lines:
                    await send(lines, False)
            elif self.closed:
                await send([], True)
                return
            else:  # caught up: until more is written (no await since the check above)
                if self._grown is None:
                    self._grown = asyncio.Event()
                try:
                    await asyncio.wait_for(self._grown.wait(), KEEPALIVE)
                except asyncio.TimeoutError:
                    await send([], False)  # a reader that left ends this here

    def close(self) -> None:
        if self.closed:
            return
        for stream, rest in self._partial.items():
            if rest and not self.truncated:
                self._keep(stream, [rest])
        if self._file is not None:
            self._file.close()
        self.closed = True
        self._wake()


def tail_offset(path: Path, tail: int, end: int) -> int:
    """Where the last `tail` lines before byte `end` begin: 0 for all of them, `end`
    for none (a negative tail: from the end on)."""
    if tail < 0:
        return end
    if tail == 0 or end <= 0:
        return 0
    newlines = tail + 1  # the last line's own, then the one before each wanted line
    try:
        with path.open("rb") as handle:
            stop = end
            while stop > 0:
                start = max(0, stop - _BACKWARDS)
                handle.seek(start)
                block = handle.read(stop - start)
                at = len(block)
                while (at := block.rfind(b"\n", 0, at)) >= 0:
                    newlines -= 1
                    if newlines == 0:
                        return start + at + 1
                stop = start
    except FileNotFoundError:
        pass
    return 0


def read_frame(path: Path, offset: int, end: int) -> tuple[list[Line], int]:
    """The lines from byte `offset` (a line's start) up to a frame's worth or `end`, and
    where the next frame starts. A line that is not a stored pair is skipped."""
    lines: list[Line] = []
    size = 0
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return lines, end
    with handle:
        handle.seek(offset)
        while offset < end and len(lines) < FRAME_LINES and size < FRAME_BYTES:
            raw = handle.readline(end - offset)
            if not raw:
                return lines, end  # the file is shorter than it was said to be
            offset += len(raw)
            size += len(raw)
            try:
                kind, text = json.loads(raw)
                lines.append((int(kind), str(text)))
            except (ValueError, TypeError):
                continue
    return lines, offset


async def send_lines(path: Path, tail: int, send: SendFrame) -> None:
    """A finished execution's stored lines (its last `tail`), frame by frame, then EOF."""
    try:
        end = (await asyncio.to_thread(path.stat)).st_size
    except FileNotFoundError:
        end = 0
    offset = await asyncio.to_thread(tail_offset, path, tail, end)
    while offset < end:
        lines, offset = await asyncio.to_thread(read_frame, path, offset, end)
        if lines:
            await send(lines, False)
    await send([], True)
