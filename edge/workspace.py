"""What an execution has on the node's disk: inputs made available and result folders.

A neutral module: input sources produce `MountedInput`s, executors consume them, and
publishers read `ResultDir`s, without any of them importing another.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class MountedInput:
    """An input source made available on the host, to be seen by the task at `target`."""

    host_path: Path
    target: str
    read_write: bool = False


@dataclass(frozen=True)
class ResultDir:
    """A ResultPath: the task writes under `path`; the executor leaves it in `host_dir`."""

    name: str
    path: str
    host_dir: Path
