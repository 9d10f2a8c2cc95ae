"""What an execution has on the node's disk: inputs made available and result folders.

A neutral module: input sources produce `MountedInput`s, executors consume them, and
publishers read `ResultDir`s, without any of them importing another.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path


@dataclass(frozen=True)
class MountedInput:
    """An input source made available on the host, to be seen by the task at `target`.

    `content`: a small inline input held in memory rather than written (only for an
    executor that reads its inputs itself, `Executor.holds_inline`); `host_path` is where
    `write_held` puts it should the executor need the file after all."""

    host_path: Path
    target: str
    read_write: bool = False
    content: bytes | None = None


@dataclass(frozen=True)
class ResultDir:
    """A ResultPath: the task writes under `path`; the executor leaves it in `host_dir`."""

    name: str
    path: str
    host_dir: Path


def write_held(inputs: list[MountedInput]) -> list[MountedInput]:
    """The inputs, those held in memory written to their host paths first (0644, readable
    by a container's user as staged inputs are): for an executor that needs files after
    all. A few small files: call it where blocking on them is fine (a worker thread)."""
    out = []
    for item in inputs:
        if item.content is not None:
            item.host_path.parent.mkdir(parents=True, exist_ok=True)
            item.host_path.write_bytes(item.content)
            item.host_path.chmod(0o644)
            item = replace(item, content=None)
        out.append(item)
    return out
