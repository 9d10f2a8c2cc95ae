"""Input type "inline": the data travels in the job spec as a `data:` URI (RFC 2397).

As in Bacalhau, `application/gzip` data is a tarball unpacked into a directory (that is how
its CLI ships a local directory or a file over 512 bytes); anything else is one file.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import posixpath
import secrets
import tempfile
from pathlib import Path
from urllib.parse import unquote_to_bytes

from edge.archive import ArchiveError, unpack
from edge.models import InputSource
from edge.workspace import MountedInput

from .base import InputError, StoragePolicy

GZIP_TYPES = ("application/gzip", "application/x-gzip")
SMALL = 64 * 1024
"""Inline data up to this size is written on the event loop: a hand-off to a thread cost
more than the write (a wasm module of a few KB, on every run of its job)."""


def decode_data_uri(uri: str) -> tuple[str, bytes]:
    """(media type, bytes) of a `data:` URI; ValueError says what is wrong with it."""
    text = uri.strip()
    if text[:5].lower() != "data:":
        raise ValueError("it does not start with 'data:'")
    header, comma, payload = text[5:].partition(",")
    if not comma:
        raise ValueError("it has no ',' before the data")
    parts = [p.strip() for p in header.split(";")]
    media_type = parts[0].lower() or "text/plain"
    if any(p.lower() == "base64" for p in parts[1:]):
        compact = "".join(unquote_to_bytes(payload).decode("ascii", "replace").split())
        compact = compact.replace("-", "+").replace("_", "/")  # accept base64url too
        try:
            return media_type, base64.b64decode(compact + "=" * (-len(compact) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("its base64 data is malformed") from None
    return media_type, unquote_to_bytes(payload)


def _file_name(source: InputSource) -> str:
    for candidate in (posixpath.basename(source.Target.rstrip("/")), source.Alias):
        name = candidate.strip().replace("/", "_")
        if name and name not in (".", ".."):
            return name
    return "inline"


def _unpack(data: bytes, dest: Path) -> None:
    """Unpacks a gzip tarball, refusing members that would land outside `dest`."""
    try:
        unpack(io.BytesIO(data), dest)
    except ArchiveError as exc:
        raise InputError(f"{exc}: pack only regular files with relative paths") from None


class InlineProvider:
    """Writes the decoded data into the staging directory."""

    types: tuple[str, ...] = ("inline",)

    def problems(self, source: InputSource, policy: StoragePolicy) -> list[str]:
        try:
            _, data = decode_data_uri(str(source.Source.param("URL") or ""))
        except ValueError as exc:
            return [_bad_uri(source, exc)]
        if len(data) > policy.max_download_bytes:
            return [_too_big(source, len(data), policy)]
        return []

    async def prepare(
        self, source: InputSource, staging: Path, policy: StoragePolicy
    ) -> MountedInput:
        media_type, data = _decoded(source, policy)
        staging.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix="inline-", dir=staging))
        if media_type in GZIP_TYPES:
            try:
                await asyncio.to_thread(_unpack, data, folder)
            except InputError as exc:
                raise InputError(
                    f"inline input for {source.Target or source.Alias}: {exc} "
                    "(send a .tar.gz or another media type)"
                ) from None
            return MountedInput(host_path=folder, target=source.Target)
        path = folder / _file_name(source)
        if len(data) <= SMALL:
            path.write_bytes(data)
        else:
            await asyncio.to_thread(path.write_bytes, data)
        return MountedInput(host_path=path, target=source.Target)

    def hold(
        self, source: InputSource, staging: Path, policy: StoragePolicy
    ) -> MountedInput | None:
        """The input kept in memory (`MountedInput.content`) when it is one small file: an
        executor that reads its inputs itself then needs no disk (a wasm module shipped
        inline: creating its staging folders and file took ~1 ms of each run). None: a
        tarball or more than SMALL bytes, prepared as usual."""
        media_type, data = _decoded(source, policy)
        if media_type in GZIP_TYPES or len(data) > SMALL:
            return None
        folder = staging / f"inline-{secrets.token_hex(6)}"  # as distinct as prepare's
        return MountedInput(
            host_path=folder / _file_name(source), target=source.Target, content=data
        )


def _decoded(source: InputSource, policy: StoragePolicy) -> tuple[str, bytes]:
    try:
        media_type, data = decode_data_uri(str(source.Source.param("URL") or ""))
    except ValueError as exc:
        raise InputError(_bad_uri(source, exc)) from None
    if len(data) > policy.max_download_bytes:
        raise InputError(_too_big(source, len(data), policy))
    return media_type, data


def _bad_uri(source: InputSource, exc: ValueError) -> str:
    return (
        f"inline input for {source.Target or source.Alias or '?'} has an invalid URL ({exc}): "
        "set Source.Params.URL to a data: URI such as data:;base64,aGVsbG8="
    )


def _too_big(source: InputSource, size: int, policy: StoragePolicy) -> str:
    return (
        f"inline input for {source.Target or source.Alias} is {size} bytes, over this node's "
        f"limit of {policy.max_download_bytes}: use a urlDownload or s3 input instead"
    )
