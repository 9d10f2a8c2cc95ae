"""The publisher protocol: make one execution's results reachable after the task ends."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from edge.models import Execution, SpecConfig


class PublishError(Exception):
    """Results that could not be published; the message names the target and the fix.
    `transient` when trying again later may succeed (a store or link that is down)."""

    def __init__(self, message: str, transient: bool = True) -> None:
        super().__init__(message)
        self.transient = transient


@dataclass(frozen=True)
class PublishRequest:
    execution: Execution  # with its Job
    node_id: str
    result_dir: Path  # stdout, stderr, exitCode and one folder per ResultPath
    scratch: Path  # for temporary archives; removed by the caller


class Publisher(Protocol):
    """One Publisher.Type (`local`, `s3`, ...), chosen by the task's spec."""

    types: tuple[str, ...]  # lowercase type names handled

    def problems(self, spec: SpecConfig) -> list[str]:
        """Why this node cannot publish with these params (bid rejection); empty if it can."""
        ...

    async def publish(self, request: PublishRequest) -> SpecConfig:
        """Publishes and returns the PublishedResult; raises PublishError. Safe to retry:
        publishing the same execution twice leaves one complete result."""
        ...
