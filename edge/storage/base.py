"""The input-source protocol: make one InputSource available on the host."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from edge.models import InputSource
from edge.workspace import MountedInput


class InputError(Exception):
    """An input source that cannot be provided; the message names the source and the fix."""


@dataclass(frozen=True)
class StoragePolicy:
    """What the node operator allows input sources to touch."""

    allowed_local_paths: list[Path] = field(default_factory=list)
    allow_network: bool = True  # URL downloads are fetched by the node, not the task
    max_download_bytes: int = 1 << 30


class InputProvider(Protocol):
    """One Source.Type (`inline`, `local`, `urlDownload`, ...)."""

    types: tuple[str, ...]  # lowercase type names handled, aliases included

    def problems(self, source: InputSource, policy: StoragePolicy) -> list[str]:
        """Why this source cannot be provided here (bid rejection); empty if it can."""
        ...

    async def prepare(
        self, source: InputSource, staging: Path, policy: StoragePolicy
    ) -> MountedInput: ...
