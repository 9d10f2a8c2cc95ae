"""One way to reach an S3 endpoint: which credentials apply, a client, and errors in one line.

Input sources, publishers, the orchestrator's `s3managed` signer and the `bacedge store`
commands all go through here, so credentials are resolved by one rule:

- a job names an endpoint (or none); credentials never come from the job spec;
- no endpoint means this device's local store when it runs one (`bacedge serve --store`),
  else `[storage.s3] endpoint`, else AWS;
- the local store's generated credentials apply to the local store; `[storage.s3]`
  keys (or `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`) to every other endpoint.

Secrets live in `S3Endpoint.secret_key`, which is left out of its repr so it cannot reach a
log line by accident.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from edge.config import Config

if TYPE_CHECKING:  # minio loads on first use: the CLI's cold start does not pay for it
    from minio import Minio

AWS_ENDPOINT = "https://s3.amazonaws.com"
_CLIENTS: dict[tuple[str, str, str, str], Minio] = {}
_CLIENTS_LOCK = threading.Lock()
CREDENTIALS_FILE = "credentials.json"


class S3Failure(Exception):
    """An S3 operation that failed for a reason the user can act on; the message says how.
    `transient` when the store could not be reached: retrying later may succeed."""

    def __init__(self, message: str, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


@dataclass(frozen=True)
class S3Endpoint:
    url: str  # scheme://host[:port]
    access_key: str = ""
    secret_key: str = field(default="", repr=False)
    region: str = ""
    origin: str = ""  # which config supplied the credentials, for error messages
    local: bool = False  # this device's own store

    @property
    def host(self) -> str:
        return urlsplit(self.url).netloc

    @property
    def secure(self) -> bool:
        return urlsplit(self.url).scheme == "https"

    def client(self) -> Minio:
        """A minio client with short timeouts and few retries: edge links fail fast here
        and the caller decides whether to retry the whole transfer. One per endpoint and
        credentials, shared (it is thread-safe), so jobs reuse its open connections."""
        key = (self.url, self.access_key, self.secret_key, self.region)
        with _CLIENTS_LOCK:
            client = _CLIENTS.get(key)
            if client is None:
                client = _CLIENTS[key] = self._new_client()
            return client

    def _new_client(self) -> Minio:
        import urllib3
        from minio import Minio

        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=5.0, read=60.0),
            retries=urllib3.Retry(total=2, backoff_factor=0.2, status_forcelist=[502, 503, 504]),
            maxsize=8,
        )
        return Minio(
            self.host,
            access_key=self.access_key or None,
            secret_key=self.secret_key or None,
            secure=self.secure,
            region=self.region or None,
            http_client=http,
        )


def normalise_url(endpoint: str) -> str:
    """`host:9000`, `http://host:9000/` -> `http://host:9000` (https for bare AWS hosts)."""
    text = endpoint.strip().rstrip("/")
    if not text:
        return ""
    if "://" not in text:
        scheme = "https" if text.endswith("amazonaws.com") else "http"
        text = f"{scheme}://{text}"
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise S3Failure(f"S3 endpoint {endpoint!r} is not a valid http(s) address")
    return f"{parts.scheme}://{parts.netloc}"


def store_dir(config: Config) -> Path:
    return config.store.data_dir or config.data_dir / "store"


def local_store(config: Config) -> S3Endpoint | None:
    """This device's store, when one has been started here (its credentials file exists)."""
    path = store_dir(config) / CREDENTIALS_FILE
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not data.get("endpoint"):
        return None
    return S3Endpoint(
        url=normalise_url(str(data["endpoint"])),
        access_key=str(data.get("access_key", "")),
        secret_key=str(data.get("secret_key", "")),
        region=str(data.get("region", "")) or config.store.region,
        origin=f"the local store's credentials ({path})",
        local=True,
    )


def resolve(
    config: Config,
    endpoint: str = "",
    region: str = "",
    environ: Mapping[str, str] | None = None,
) -> S3Endpoint:
    """The endpoint a job (or command) means, with the credentials the node holds for it."""
    env = os.environ if environ is None else environ
    local = local_store(config)
    url = normalise_url(endpoint)
    if not url:
        if local is not None:
            return _with_region(local, region)
        url = normalise_url(config.storage.s3.endpoint) or AWS_ENDPOINT
    if local is not None and url == local.url:
        return _with_region(local, region)
    s3 = config.storage.s3
    if s3.access_key or s3.secret_key:
        secret = s3.secret_key.get_secret_value() if s3.secret_key else ""
        return S3Endpoint(
            url=url,
            access_key=s3.access_key,
            secret_key=secret,
            region=region or s3.region,
            origin="[storage.s3] access_key/secret_key",
        )
    if env.get("AWS_ACCESS_KEY_ID"):
        return S3Endpoint(
            url=url,
            access_key=env["AWS_ACCESS_KEY_ID"],
            secret_key=env.get("AWS_SECRET_ACCESS_KEY", ""),
            region=region or s3.region or env.get("AWS_REGION", ""),
            origin="AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY",
        )
    return S3Endpoint(url=url, region=region or s3.region, origin="no credentials (anonymous)")


def _with_region(endpoint: S3Endpoint, region: str) -> S3Endpoint:
    if not region or region == endpoint.region:
        return endpoint
    return S3Endpoint(
        endpoint.url, endpoint.access_key, endpoint.secret_key, region, endpoint.origin, True
    )


def describe(exc: BaseException, endpoint: S3Endpoint, bucket: str, key: str = "") -> S3Failure:
    """A minio or network error as one line naming the object, the endpoint and the fix."""
    from minio.error import S3Error, ServerError

    where = f"s3://{bucket}/{key}" if key else f"s3://{bucket}"
    at = endpoint.url
    if isinstance(exc, S3Error):
        code = exc.code or ""
        if code in ("NoSuchKey", "NoSuchBucket", "NoSuchVersion", "NotFound", "ResourceNotFound"):
            return S3Failure(f"{where} not found at {at}")
        if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "Forbidden"):
            fix = (
                "the local store's credentials file"
                if endpoint.local
                else "[storage.s3] access_key and secret_key (env BACEDGE_STORAGE_S3_ACCESS_KEY, "
                "BACEDGE_STORAGE_S3_SECRET_KEY)"
            )
            return S3Failure(
                f"access to {where} at {at} was refused ({code}) with {endpoint.origin}: "
                f"check {fix}"
            )
        return S3Failure(
            f"{where} at {at}: {code or 'error'}: {exc.message}",
            transient=code in SERVER_BUSY_CODES or _status(exc) >= 500,
        )
    if isinstance(exc, ServerError):  # a 5xx without an S3 error body: a store starting up
        return S3Failure(
            f"S3 store at {at} answered HTTP {exc.status_code} for {where}: try again later",
            transient=True,
        )
    if _network_error(exc):
        return S3Failure(
            f"S3 store at {at} is not reachable ({_short(exc)}) for {where}: "
            "check that it runs and that this node can reach it",
            transient=True,
        )
    if isinstance(exc, OSError):
        return S3Failure(f"{where}: local file error: {exc.strerror or exc}")
    return S3Failure(f"{where} at {at}: {_short(exc)}")


# The store's own answers that mean "not now" (a store still starting, overloaded or
# restarting): a later try may succeed, as when it cannot be reached at all.
SERVER_BUSY_CODES = frozenset(
    {"InternalError", "ServiceUnavailable", "SlowDown", "RequestTimeout", "ServerBusy"}
)


def _status(exc: Any) -> int:
    response = getattr(exc, "response", None)
    return int(getattr(response, "status", 0) or 0)


def _network_error(exc: BaseException) -> bool:
    import urllib3.exceptions

    return isinstance(exc, (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError))


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if "Connection refused" in text:
        return "connection refused"
    if len(text) > 200:
        text = text[:200] + "..."
    return text or type(exc).__name__


def parse_s3_url(url: str) -> tuple[str, str]:
    """`s3://bucket/some/key` -> ("bucket", "some/key"); the key may be empty."""
    if not url.startswith("s3://"):
        raise S3Failure(f"{url!r} is not an s3:// address: use s3://BUCKET/KEY")
    bucket, _, key = url[5:].partition("/")
    if not bucket:
        raise S3Failure(f"{url!r} names no bucket: use s3://BUCKET/KEY")
    return bucket, key


def write_credentials(path: Path, data: Mapping[str, Any]) -> None:
    """Writes a credentials file readable by its owner only, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(dict(data), handle)
    os.chmod(tmp, 0o600)
    tmp.replace(path)
