"""Input types "local" and "localDirectory": a path on the node, used in place.

Only paths under the operator's allow-list qualify, judged after symlinks are resolved so a
link inside an allowed directory cannot reach outside it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from edge.models import InputSource
from edge.workspace import MountedInput

from .base import InputError, StoragePolicy


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "y", "on", "rw")
    return bool(value)


def _allowed(real: Path, policy: StoragePolicy) -> bool:
    for entry in policy.allowed_local_paths:
        root = Path(os.path.realpath(entry))
        if real.is_relative_to(root):
            return True
    return False


def resolve_local(source: InputSource, policy: StoragePolicy) -> Path:
    """The real path of an allowed, existing SourcePath, or InputError saying why not."""
    raw = source.Source.param("SourcePath")
    if not isinstance(raw, str) or not raw.strip():
        raise InputError(
            f"local input for {source.Target or source.Alias or '?'} has no SourcePath: "
            "set Source.Params.SourcePath to an absolute path on the node"
        )
    if not os.path.isabs(raw):
        raise InputError(
            f"local path {raw} is relative: set Source.Params.SourcePath to an absolute path"
        )
    real = Path(os.path.realpath(raw))
    if not _allowed(real, policy):
        raise InputError(
            f"local path {raw} is not allowed on this node: add it to [compute] allowed_local_paths"
        )
    if not real.exists():
        raise InputError(
            f"local path {raw} does not exist on this node: create it or fix SourcePath"
        )
    return real


class LocalProvider:
    """Mounts the allowed host path itself (no copy); read-only unless ReadWrite."""

    types: tuple[str, ...] = ("local", "localdirectory")

    def problems(self, source: InputSource, policy: StoragePolicy) -> list[str]:
        try:
            resolve_local(source, policy)
        except InputError as exc:
            return [str(exc)]
        return []

    async def prepare(
        self, source: InputSource, staging: Path, policy: StoragePolicy
    ) -> MountedInput:
        real = resolve_local(source, policy)
        read_write = _flag(source.Source.param("ReadWrite", False))
        return MountedInput(host_path=real, target=source.Target, read_write=read_write)
