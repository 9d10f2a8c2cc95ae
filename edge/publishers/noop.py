"""Publisher type "noop": results stay unpublished (stdout and stderr still reach the job)."""

from __future__ import annotations

from edge.models import SpecConfig

from .base import PublishRequest


class NoopPublisher:
    types: tuple[str, ...] = ("noop",)

    def problems(self, spec: SpecConfig) -> list[str]:
        return []

    async def publish(self, request: PublishRequest) -> SpecConfig:
        return SpecConfig()
