"""Result publishers, one module per Publisher.Type, chosen by the task's spec.

The compute node builds the registry once; the runner asks it to publish and never knows a
type. Nodes advertise exactly the types they built.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from edge.config import Config
from edge.models import Task

from .base import Publisher, PublishError, PublishRequest
from .local import LocalPublisher
from .noop import NoopPublisher
from .s3 import S3Publisher
from .s3managed import S3ManagedPublisher, Signer


def effective_type(task: Task) -> str:
    """The publisher a task uses: its own, or `local` when it has ResultPaths and names
    none (so declared results are never silently dropped); "" means nothing to publish."""
    kind = task.Publisher.Type.strip().lower()
    if kind:
        return kind
    return "local" if task.ResultPaths else ""


def build_publishers(
    config: Config, published_dir: Path, signer: Signer | None
) -> dict[str, Publisher]:
    """Every publisher this node has, keyed by type; s3managed only with an orchestrator
    link to sign its uploads."""
    local = config.publishers.local
    found: list[Publisher] = [
        NoopPublisher(),
        LocalPublisher(published_dir, local.host, local.port, local.address, local.retention),
        S3Publisher(config),
    ]
    if signer is not None:
        found.append(S3ManagedPublisher(signer))
    return {name: p for p in found for name in p.types}


def publisher_for(task: Task, publishers: Mapping[str, Publisher]) -> Publisher | None:
    kind = effective_type(task)
    if not kind:
        return None
    publisher = publishers.get(kind)
    if publisher is None:
        known = ", ".join(sorted(publishers))
        raise PublishError(f"publisher {kind!r} is not available on this node: it has {known}")
    return publisher


__all__ = [
    "LocalPublisher",
    "PublishError",
    "PublishRequest",
    "Publisher",
    "build_publishers",
    "effective_type",
    "publisher_for",
]
