"""Publisher type "s3managed": the orchestrator owns the bucket and its credentials.

The node holds no S3 credentials at all: when it has results it asks the orchestrator (over
NATS) for a pre-signed upload URL for this execution, then PUTs the .tar.gz to it. Bucket,
key template, endpoint and credentials are the orchestrator's `[publishers.s3managed]`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

from edge.archive import pack
from edge.models import SpecConfig

from .base import PublishError, PublishRequest

Signer = Callable[[str], Awaitable[tuple[str, str, str]]]
"""execution ID -> (pre-signed PUT URL, bucket, key); raises PublishError with the reason."""

CHUNK = 1 << 20


class S3ManagedPublisher:
    types: tuple[str, ...] = ("s3managed",)

    def __init__(self, signer: Signer) -> None:
        self.signer = signer

    def problems(self, spec: SpecConfig) -> list[str]:
        return []

    async def publish(self, request: PublishRequest) -> SpecConfig:
        url, bucket, key = await self.signer(request.execution.ID)
        request.scratch.mkdir(parents=True, exist_ok=True)
        archive = request.scratch / "result.tar.gz"
        size = await asyncio.to_thread(pack, request.result_dir, archive)
        import httpx  # on first use: an idle agent does not hold httpx (and rich)

        try:
            async with httpx.AsyncClient(timeout=httpx.Timeout(120.0, connect=10.0)) as client:
                response = await client.put(
                    url,
                    content=_chunks(archive),
                    headers={"Content-Length": str(size), "Content-Type": "application/gzip"},
                )
        except httpx.HTTPError as exc:
            raise PublishError(
                f"upload of s3://{bucket}/{key} failed ({type(exc).__name__}: {exc}): "
                "the store behind the orchestrator is not reachable from this node"
            ) from None
        if response.status_code >= 300:
            raise PublishError(
                f"upload of s3://{bucket}/{key} was refused: HTTP {response.status_code} "
                f"{_s3_code(response.text)}",
                transient=response.status_code >= 500,
            )
        return SpecConfig(Type="s3managed", Params={"Bucket": bucket, "Key": key})


async def _chunks(path: Path):  # type: ignore[no-untyped-def]
    with path.open("rb") as handle:
        while True:
            block = await asyncio.to_thread(handle.read, CHUNK)
            if not block:
                return
            yield block


def _s3_code(body: str) -> str:
    start, end = body.find("<Code>"), body.find("</Code>")
    return body[start + 6 : end] if 0 <= start < end else body[:120]
