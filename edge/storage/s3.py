"""Input types "s3" and "s3PreSigned": objects fetched by the node before the run.

Bacalhau's params: `Bucket`, `Key` (one object, a `dir/` prefix, or a `prefix*` wildcard),
`Filter` (a regex on keys below the prefix), `Region`, `Endpoint` (empty: this device's
local store), `VersionID`, `ChecksumSHA256`. As in Bacalhau, objects land in the Target
folder relative to the key's directory: Key `in/a.csv` gives `<Target>/a.csv`, Key `in/`
gives `<Target>/sub/b.csv` for `in/sub/b.csv`.

Credentials are the node's (edge/s3.py); sizes are checked against the node's cap before
anything is downloaded; downloads stream to disk, are checked (length, SHA-256 when given)
and go through the object cache.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import logging
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from edge import s3
from edge.config import Config
from edge.models import InputSource
from edge.workspace import MountedInput

from .base import InputError, StoragePolicy
from .cache import ObjectCache, link_or_copy

log = logging.getLogger("bacedge.storage")

CHUNK = 1 << 20
FETCH_ATTEMPTS = 6
MAX_FILTER = 256
_NESTED_QUANTIFIER = re.compile(r"\([^)]*[+*}][^)]*\)\s*[+*{]")


@dataclass(frozen=True)
class S3Object:
    key: str
    size: int
    etag: str = ""
    version_id: str = ""


@dataclass(frozen=True)
class S3Source:
    bucket: str
    key: str
    filter: str
    region: str
    endpoint: str
    version_id: str
    checksum: str

    @property
    def single(self) -> bool:
        return bool(self.key) and not self.key.endswith(("/", "*"))

    @property
    def prefix(self) -> str:
        return self.key.strip().removesuffix("*")

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def parse_source(params: dict[str, Any] | Any, what: str) -> S3Source:
    def get(name: str) -> str:
        for key, value in (params or {}).items():
            if str(key).lower() == name.lower():
                return _text(value)
        return ""

    source = S3Source(
        bucket=get("Bucket"),
        key=get("Key"),
        filter=get("Filter"),
        region=get("Region"),
        endpoint=get("Endpoint"),
        version_id=get("VersionID"),
        checksum=get("ChecksumSHA256"),
    )
    if not source.bucket:
        raise InputError(f"s3 input for {what} has no Bucket: set Source.Params.Bucket")
    if source.filter:
        if len(source.filter) > MAX_FILTER or _NESTED_QUANTIFIER.search(source.filter):
            raise InputError(
                f"s3 input Filter {source.filter[:40]!r} is too long or nests quantifiers "
                "(a regex that could run for ever): simplify it"
            )
        try:
            re.compile(source.filter)
        except re.error as exc:
            message = f"s3 input Filter {source.filter!r} is not a valid regex: {exc}"
            raise InputError(message) from None
    if source.checksum and _checksum_bytes(source.checksum) is None:
        raise InputError(
            f"s3 input ChecksumSHA256 {source.checksum!r} is not a SHA-256 in base64 or hex"
        )
    return source


def _checksum_bytes(text: str) -> bytes | None:
    cleaned = text.strip()
    if len(cleaned) == 64:
        try:
            return bytes.fromhex(cleaned)
        except ValueError:
            pass
    try:
        raw = base64.b64decode(cleaned, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == 32 else None


def relative_path(key: str, prefix: str) -> str:
    """Bacalhau's rule: drop the directory part the key shares with the prefix."""
    prefix_parts = prefix.split("/")
    key_parts = key.split("/")
    start = 0
    for i in range(len(prefix_parts) - 1):
        if i < len(key_parts) and prefix_parts[i] == key_parts[i]:
            start += 1
        else:
            break
    return "/".join(key_parts[start:])


def _safe_target(folder: Path, relative: str, url: str) -> Path:
    parts = [p for p in relative.split("/") if p]
    if not parts or any(p in (".", "..") for p in parts):
        raise InputError(f"object {url} has a key that would land outside the input folder")
    return folder.joinpath(*parts)


class S3Provider:
    """Downloads into a fresh folder of the staging directory, through the cache."""

    types: tuple[str, ...] = ("s3",)

    def __init__(self, config: Config, cache: ObjectCache) -> None:
        self.config = config
        self.cache = cache

    def endpoint(self, source: S3Source) -> s3.S3Endpoint:
        try:
            return s3.resolve(self.config, source.endpoint, source.region)
        except s3.S3Failure as exc:
            raise InputError(str(exc)) from None

    def problems(self, input_source: InputSource, policy: StoragePolicy) -> list[str]:
        try:
            source = parse_source(input_source.Source.Params, _what(input_source))
            endpoint = self.endpoint(source)
        except InputError as exc:
            return [str(exc)]
        if not source.endpoint and not endpoint.local and not self.config.storage.s3.endpoint:
            return [
                f"s3 input {source.url} names no Endpoint and this node has no local store: "
                "run the job where the data is, or set Source.Params.Endpoint"
            ]
        if not policy.allow_network and not endpoint.local:
            return [f"s3 input {source.url} is not on this node's local store"]
        return []

    async def prepare(
        self, input_source: InputSource, staging: Path, policy: StoragePolicy
    ) -> MountedInput:
        source = parse_source(input_source.Source.Params, _what(input_source))
        endpoint = self.endpoint(source)
        staging.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix="s3-", dir=staging))
        try:
            await asyncio.to_thread(
                self._fetch, source, endpoint, folder, policy.max_download_bytes
            )
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return MountedInput(host_path=folder, target=input_source.Target)

    # -- blocking part, in a thread ---------------------------------------------------
    def _fetch(self, source: S3Source, endpoint: s3.S3Endpoint, folder: Path, cap: int) -> None:
        """One fetch, tried again while the store cannot be reached (a store restarting, a
        link coming back): about half a minute before the execution fails with the reason."""
        delay = 1.0
        for attempt in range(1, FETCH_ATTEMPTS + 1):
            try:
                self._fetch_once(source, endpoint, folder, cap)
                return
            except _Unreachable as exc:
                if attempt == FETCH_ATTEMPTS:
                    raise InputError(str(exc)) from None
                log.warning(
                    "S3 store not reachable or not ready; retrying",
                    extra={"endpoint": endpoint.url, "attempt": attempt},
                )
                time.sleep(delay)
                delay = min(delay * 2, 8.0)

    def _fetch_once(
        self, source: S3Source, endpoint: s3.S3Endpoint, folder: Path, cap: int
    ) -> None:
        client = endpoint.client()
        opened: Any = None  # a single object's GET, begun to learn its size and ETag
        try:
            try:
                objects, opened = self._objects(client, source)
            except InputError:
                raise
            except Exception as exc:
                raise _failure(exc, endpoint, source.bucket, source.key) from None
            if not objects:
                raise InputError(f"{source.url} not found at {endpoint.url} (no object matches)")
            total = sum(o.size for o in objects)
            if total > cap:
                raise InputError(
                    f"{source.url} is {total} bytes, over this node's input limit of {cap} "
                    "([compute] max_input_bytes): raise it or select less data"
                )
            for obj in objects:
                relative = (
                    obj.key.rsplit("/", 1)[-1]
                    if source.single
                    else relative_path(obj.key, source.prefix)
                )
                target = _safe_target(folder, relative, f"s3://{source.bucket}/{obj.key}")
                try:
                    self._download(client, source, obj, target, endpoint.url, opened)
                    opened = None
                except InputError:
                    raise
                except Exception as exc:
                    raise _failure(exc, endpoint, source.bucket, obj.key) from None
        finally:
            if opened is not None:
                opened.close()  # unread body: drop the connection rather than reuse it

    def _objects(self, client: Any, source: S3Source) -> tuple[list[S3Object], Any]:
        if source.single:
            # One GET gives size, ETag and version in its headers: no separate HEAD.
            version = source.version_id or None
            response = client.get_object(source.bucket, source.key, version_id=version)
            headers = response.headers
            if not (headers.get("Content-Type") or "").startswith("application/x-directory"):
                obj = S3Object(
                    source.key,
                    int(headers.get("Content-Length") or 0),
                    (headers.get("ETag") or "").strip('"'),
                    headers.get("x-amz-version-id") or source.version_id,
                )
                return [obj], response
            response.close()
        pattern = re.compile(source.filter) if source.filter else None
        found = []
        for item in client.list_objects(source.bucket, prefix=source.prefix, recursive=True):
            if item.is_dir or item.object_name.endswith("/"):
                continue
            if pattern is not None and not pattern.search(item.object_name[len(source.prefix) :]):
                continue
            found.append(
                S3Object(item.object_name, int(item.size or 0), (item.etag or "").strip('"'))
            )
        return found, None

    def _download(
        self,
        client: Any,
        source: S3Source,
        obj: S3Object,
        target: Path,
        endpoint_url: str,
        opened: Any = None,
    ) -> None:
        identity = obj.version_id or obj.etag
        key = self.cache.key(endpoint_url, source.bucket, obj.key, identity, source.checksum)
        cached = self.cache.lookup(key) if identity else None
        if cached is not None:
            if opened is not None:
                opened.close()
            link_or_copy(cached, target)
            log.info("s3 input from cache", extra={"object": obj.key, "bytes": obj.size})
            return
        partial = self.cache.partial(key) if self.cache.enabled else target
        target.parent.mkdir(parents=True, exist_ok=True)
        response = opened or client.get_object(
            source.bucket, obj.key, version_id=obj.version_id or None
        )
        # Hashed only when the spec pins a checksum: the length check is free, SHA-256 is not.
        digest = hashlib.sha256() if source.checksum and source.single else None
        size = 0
        try:
            with partial.open("wb") as out:
                for block in response.stream(CHUNK):
                    size += len(block)
                    if size > obj.size:
                        break
                    if digest is not None:
                        digest.update(block)
                    out.write(block)
        finally:
            response.close()
            response.release_conn()
        try:
            _verify(source, obj, size, digest.digest() if digest is not None else b"")
        except InputError:
            partial.unlink(missing_ok=True)
            raise
        log.info("s3 input downloaded", extra={"object": obj.key, "bytes": size})
        if self.cache.enabled:
            link_or_copy(self.cache.commit(key, partial, size), target)


class _Unreachable(InputError):
    """The store did not answer: worth another try."""


def _failure(exc: BaseException, endpoint: s3.S3Endpoint, bucket: str, key: str) -> InputError:
    failure = s3.describe(exc, endpoint, bucket, key)
    return _Unreachable(str(failure)) if failure.transient else InputError(str(failure))


def _verify(source: S3Source, obj: S3Object, size: int, digest: bytes) -> None:
    url = f"s3://{source.bucket}/{obj.key}"
    if size != obj.size:
        raise InputError(
            f"download of {url} was cut short or changed ({size} of {obj.size} bytes): retry"
        )
    expected = _checksum_bytes(source.checksum) if source.checksum and source.single else None
    if expected is not None and expected != digest:
        raise InputError(
            f"checksum mismatch for {url}: expected {source.checksum}, "
            f"got {base64.b64encode(digest).decode()}"
        )


def _what(source: InputSource) -> str:
    return source.Target or source.Alias or "?"


class S3PreSignedProvider:
    """Bacalhau's `s3PreSigned`: `PreSignedURL` plus `SourceSpec` (the s3 params it was
    signed for). The node needs no credentials. Cached when the spec pins a version or
    checksum, since nothing else proves two URLs return the same bytes."""

    types: tuple[str, ...] = ("s3presigned",)

    def __init__(self, cache: ObjectCache) -> None:
        self.cache = cache

    def _url(self, source: InputSource) -> str:
        url = _text(source.Source.param("PreSignedURL"))
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise InputError(
                f"s3PreSigned input for {_what(source)} has no valid PreSignedURL: "
                "set Source.Params.PreSignedURL to the signed http(s) address"
            )
        return url

    def problems(self, source: InputSource, policy: StoragePolicy) -> list[str]:
        try:
            self._url(source)
            spec = source.Source.param("SourceSpec") or {}
            if spec:
                parse_source(spec, _what(source))
        except InputError as exc:
            return [str(exc)]
        if not policy.allow_network:
            return [f"s3PreSigned input for {_what(source)} needs the network to download"]
        return []

    async def prepare(
        self, source: InputSource, staging: Path, policy: StoragePolicy
    ) -> MountedInput:
        url = self._url(source)
        raw_spec = source.Source.param("SourceSpec") or {}
        spec = parse_source(raw_spec, _what(source)) if raw_spec else None
        name = (spec.key.rsplit("/", 1)[-1] if spec else "") or unquote(
            urlsplit(url).path.rsplit("/", 1)[-1]
        )
        if not name or name in (".", ".."):
            name = "download"
        staging.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix="s3p-", dir=staging))
        target = folder / name
        identity = (spec.version_id or spec.checksum) if spec else ""
        key = self.cache.key("presigned", spec.bucket, spec.key, identity) if spec else ""
        cached = self.cache.lookup(key) if identity else None
        try:
            if cached is not None:
                link_or_copy(cached, target)
            else:
                partial = self.cache.partial(key) if identity and self.cache.enabled else target
                size, digest = await _http_download(url, partial, policy.max_download_bytes)
                if spec is not None and spec.checksum:
                    _verify(spec, S3Object(spec.key, size), size, digest)
                if partial != target:
                    link_or_copy(self.cache.commit(key, partial, size), target)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return MountedInput(host_path=folder, target=source.Target)


async def _http_download(url: str, path: Path, cap: int) -> tuple[int, bytes]:
    import httpx  # on first use: an idle agent does not hold httpx (and rich)

    shown = url.split("?", 1)[0]  # the query holds the signature: never print it
    digest = hashlib.sha256()
    size = 0
    try:
        async with (
            httpx.AsyncClient(timeout=httpx.Timeout(60.0, connect=10.0)) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code >= 400:
                raise InputError(
                    f"download of {shown} failed: HTTP {response.status_code} (the signed URL "
                    "may have expired: sign a new one)"
                )
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > cap:
                raise InputError(f"{shown} is {declared} bytes, over this node's limit of {cap}")
            with path.open("wb") as out:
                async for block in response.aiter_bytes(CHUNK):
                    size += len(block)
                    if size > cap:
                        raise InputError(f"{shown} is over this node's limit of {cap} bytes")
                    digest.update(block)
                    out.write(block)
    except httpx.HTTPError as exc:
        path.unlink(missing_ok=True)
        raise InputError(f"download of {shown} failed ({type(exc).__name__}): retry") from None
    except InputError:
        path.unlink(missing_ok=True)
        raise
    return size, digest.digest()
