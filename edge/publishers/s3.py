"""Publisher type "s3": results uploaded to a bucket, as Bacalhau's S3 publisher.

Params: `Bucket`, `Key` (template with {jobID} {executionID} {nodeID} {date} {time}),
`Endpoint`, `Region`, `Encoding` (`gzip`, the default: one .tar.gz object; `plain`: one
object per file under Key/). Credentials come from the node's config, never the spec.
A gzip archive appears at its key only once complete (multipart uploads are invisible
until finished), so a crash mid-upload leaves nothing half-written; publishing again
overwrites with the same content.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from edge import s3
from edge.archive import pack
from edge.config import Config
from edge.models import SpecConfig

from .base import PublishError, PublishRequest
from .keys import published_key

DEFAULT_KEY = "{jobID}/{executionID}"


def encoding_of(spec: SpecConfig) -> str:
    """`gzip` or `plain`; Bacalhau's older `Compress` flag is understood too."""
    raw = spec.param("Encoding")
    if raw is None:
        compress = spec.param("Compress")
        if compress is None:
            return "gzip"
        flag = compress if isinstance(compress, bool) else str(compress).lower() == "true"
        return "gzip" if flag else "plain"
    return str(raw).strip().lower()


def _text(spec: SpecConfig, name: str) -> str:
    value = spec.param(name, "")
    return value.strip() if isinstance(value, str) else ""


class S3Publisher:
    types: tuple[str, ...] = ("s3",)

    def __init__(self, config: Config) -> None:
        self.config = config

    def problems(self, spec: SpecConfig) -> list[str]:
        out = []
        if not _text(spec, "Bucket"):
            out.append("s3 publisher has no Bucket: set Publisher.Params.Bucket")
        if encoding_of(spec) not in ("gzip", "plain"):
            out.append(
                f"s3 publisher Encoding {spec.param('Encoding')!r} is not supported: "
                "use gzip or plain"
            )
        try:
            endpoint = s3.resolve(self.config, _text(spec, "Endpoint"), _text(spec, "Region"))
        except s3.S3Failure as exc:
            return [*out, str(exc)]
        anonymous_aws = endpoint.url == s3.AWS_ENDPOINT and not endpoint.access_key
        if anonymous_aws and not _text(spec, "Endpoint"):
            out.append(
                "s3 publisher names no Endpoint and this node has no local store, no "
                "[storage.s3] endpoint and no credentials"
            )
        return out

    async def publish(self, request: PublishRequest) -> SpecConfig:
        spec = request.execution.Job.task.Publisher if request.execution.Job else SpecConfig()
        problems = self.problems(spec)
        if problems:
            raise PublishError("; ".join(problems), transient=False)
        bucket = _text(spec, "Bucket")
        encoding = encoding_of(spec)
        template = _text(spec, "Key") or DEFAULT_KEY
        key = published_key(template, request.execution, request.node_id, encoding == "gzip")
        endpoint = s3.resolve(self.config, _text(spec, "Endpoint"), _text(spec, "Region"))
        params: dict[str, Any] = {
            "Bucket": bucket,
            "Key": key,
            "Endpoint": endpoint.url,  # resolved: an empty one meant this node's store
            "Region": endpoint.region,
            "Encoding": encoding,
        }
        try:
            if encoding == "gzip":
                request.scratch.mkdir(parents=True, exist_ok=True)
                archive = request.scratch / "result.tar.gz"
                await asyncio.to_thread(pack, request.result_dir, archive)
                result = await asyncio.to_thread(_upload_file, endpoint, bucket, key, archive)
                if result.version_id:
                    params["VersionID"] = result.version_id
            else:
                await asyncio.to_thread(_upload_tree, endpoint, bucket, key, request.result_dir)
        except Exception as exc:
            raise PublishError(
                f"upload failed: {s3.describe(exc, endpoint, bucket, key)}"
            ) from None
        return SpecConfig(Type="s3", Params=params)


def _upload_file(endpoint: s3.S3Endpoint, bucket: str, key: str, path: Path) -> Any:
    return endpoint.client().fput_object(bucket, key, str(path), content_type="application/gzip")


def _upload_tree(endpoint: s3.S3Endpoint, bucket: str, prefix: str, folder: Path) -> None:
    client = endpoint.client()
    for root, _dirs, files in os.walk(folder):
        for name in sorted(files):
            path = Path(root) / name
            if path.is_symlink():
                continue  # never follow a task's link to a host file
            relative = path.relative_to(folder).as_posix()
            with path.open("rb") as handle:
                client.put_object(bucket, prefix + relative, handle, path.stat().st_size)
