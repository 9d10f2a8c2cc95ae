"""Input types "urlDownload" and "url": the node fetches an http(s) URL before the run.

As in Bacalhau, the task sees the file under its Target directory, named after the last
part of the URL's path (after redirects): URL .../data.csv with Target /inputs gives
/inputs/data.csv. The download streams to disk and stops at the node's size cap.
"""

from __future__ import annotations

import contextlib
import posixpath
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from edge.models import InputSource
from edge.workspace import MountedInput

from .base import InputError, StoragePolicy

if TYPE_CHECKING:
    import httpx

CHUNK = 1 << 16
TIMEOUTS = (60.0, 10.0)  # read, connect: per operation, not for the whole download


def _url(source: InputSource, policy: StoragePolicy) -> str:
    raw = source.Source.param("URL")
    url = raw.strip().strip("'\"") if isinstance(raw, str) else ""
    if not url:
        raise InputError(
            f"urlDownload input for {source.Target or source.Alias or '?'} has no URL: "
            "set Source.Params.URL to an http(s) address"
        )
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise InputError(f"URL {url} is not an http(s) address: use http:// or https://")
    if not policy.allow_network:
        raise InputError(
            f"URL {url} cannot be fetched: this node does not download inputs "
            "(run the job on a node with network access, or ship the data inline)"
        )
    return url


def _file_name(url: httpx.URL, source: InputSource) -> str:
    for candidate in (unquote(posixpath.basename(url.path)), source.Alias):
        name = candidate.strip().replace("/", "_")
        if name and name not in (".", ".."):
            return name
    return "download"


class UrlProvider:
    """Downloads into a fresh folder of the staging directory."""

    types: tuple[str, ...] = ("urldownload", "url")

    def problems(self, source: InputSource, policy: StoragePolicy) -> list[str]:
        try:
            _url(source, policy)
        except InputError as exc:
            return [str(exc)]
        return []

    async def prepare(
        self, source: InputSource, staging: Path, policy: StoragePolicy
    ) -> MountedInput:
        url = _url(source, policy)
        staging.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix="url-", dir=staging))
        try:
            await _download(url, folder, source, policy.max_download_bytes)
        except BaseException:
            for leftover in folder.iterdir():
                leftover.unlink(missing_ok=True)
            folder.rmdir()
            raise
        return MountedInput(host_path=folder, target=source.Target)


async def _download(url: str, folder: Path, source: InputSource, cap: int) -> Path:
    import httpx  # on first use: an idle agent does not hold httpx (and rich)

    timeout = httpx.Timeout(TIMEOUTS[0], connect=TIMEOUTS[1])
    try:
        async with (
            httpx.AsyncClient(follow_redirects=True, timeout=timeout) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code >= 400:
                raise InputError(
                    f"download of {url} failed: HTTP {response.status_code} "
                    f"{response.reason_phrase}: check the URL"
                )
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > cap:
                raise InputError(_too_big(url, int(declared), cap))
            path = folder / _file_name(response.url, source)
            size = 0
            with path.open("wb") as out:
                async for chunk in response.aiter_bytes(CHUNK):
                    size += len(chunk)
                    if size > cap:
                        raise InputError(_too_big(url, size, cap))
                    out.write(chunk)
            return path
    except httpx.TimeoutException:
        raise InputError(
            f"download of {url} timed out: check that the server answers, or retry"
        ) from None
    except httpx.ConnectError as exc:
        raise InputError(
            f"cannot connect to {urlsplit(url).netloc} to download {url} ({_reason(exc)}): "
            "check the URL and that this node can reach it"
        ) from None
    except httpx.HTTPError as exc:
        raise InputError(
            f"download of {url} failed ({_reason(exc)}): retry or check the URL"
        ) from None
    except OSError as exc:
        raise InputError(
            f"download of {url} could not be saved ({exc.strerror}): free disk space on the node"
        ) from None


def _reason(exc: Exception) -> str:
    with contextlib.suppress(Exception):
        text = " ".join(str(exc).split())
        if text:
            return text
    return type(exc).__name__


def _too_big(url: str, size: int, cap: int) -> str:
    return (
        f"download of {url} is larger than this node's limit ({size} > {cap} bytes): "
        "raise the node's download limit or use a smaller input"
    )
