"""Fetching a job's results into a folder: `bacedge job get` and the TUI's Results tab.

Bacalhau's layout: `stdout`, `stderr`, `exitCode` and one folder per ResultPath; one
completed execution fills the output folder itself, several get a sub-folder each (named
by execution ID), so results never overwrite each other. Archives come through the
orchestrator first (it relays results from nodes behind NAT and from stores the client
has no credentials for); when it cannot (a Bacalhau orchestrator, a plain-encoded S3
result) the client fetches from the published location itself. Every archive is unpacked
with `edge.archive.unpack`, which refuses anything that would escape the folder.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from edge import s3
from edge.archive import ArchiveError, unpack
from edge.client import ApiClient, ApiError
from edge.config import Config
from edge.models import ComputeStateType, Execution, RunOutput, SpecConfig

Progress = Callable[[str, int, int | None], None]
"""(execution ID, bytes so far, total bytes when known)."""


class DownloadError(Exception):
    """Results that cannot be fetched or written; the message says why and what to do."""


@dataclass
class Downloaded:
    execution_id: str
    folder: Path
    source: str  # where the archive came from: "orchestrator", a URL, s3://..., "output"
    files: list[str] = field(default_factory=list)


def default_output_dir(job_id: str) -> Path:
    return Path.cwd() / f"job-{job_id.removeprefix('j-')[:8]}"


def occupied(out: Path) -> bool:
    """A folder with something in it: written into only when forced (`--force`)."""
    return out.is_dir() and any(out.iterdir())


def prepare_output_dir(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise DownloadError(f"{out} exists and is not a folder: choose another --output-dir")
    if occupied(out) and not force:
        raise DownloadError(
            f"{out} already exists and is not empty: choose another --output-dir or pass --force"
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(f"cannot create {out}: {exc.strerror or exc}") from None


def completed(executions: list[Execution]) -> list[Execution]:
    return [e for e in executions if e.state == ComputeStateType.COMPLETED]


def published_location(published: SpecConfig) -> str:
    """Where a result was published, as a person reads it: its URL, `s3://bucket/key`
    (a folder, ending in `/`, for plain-encoded S3 results), or "" when nothing was."""
    kind = published.Type.lower()
    if kind in ("urldownload", "local"):
        return str(published.param("URL", ""))
    if kind in ("s3", "s3managed"):
        bucket, key = str(published.param("Bucket", "")), str(published.param("Key", ""))
        if str(published.param("Encoding", "gzip")).lower() == "plain":
            return f"s3://{bucket}/{key.rstrip('/')}/"
        return f"s3://{bucket}/{key}"
    return ""


def download_job(
    client: ApiClient,
    job_id: str,
    out: Path,
    force: bool = False,
    progress: Progress | None = None,
    config: Config | None = None,
) -> list[Downloaded]:
    """Fetches every completed execution's results of a job into `out`."""
    job, _, executions = client.get_job(job_id, include=("executions",))
    if executions is None:
        executions = client.job_executions(job.ID or job_id)
    done = completed(executions)
    if not done:
        state = job.State.StateType.value.lower()
        raise DownloadError(
            f"job {job.ID} has no completed execution yet (it is {state}): "
            "wait for it (bacedge job describe) and retry"
        )
    prepare_output_dir(out, force)
    report = []
    for execution in done:
        folder = out if len(done) == 1 else out / execution.ID
        report.append(fetch_execution(client, job.ID, execution, folder, progress, config))
    return report


def fetch_execution(
    client: ApiClient,
    job_id: str,
    execution: Execution,
    folder: Path,
    progress: Progress | None = None,
    config: Config | None = None,
) -> Downloaded:
    folder.mkdir(parents=True, exist_ok=True)
    published = execution.PublishedResult
    source = "output"
    names: list[str] = []
    if published.Type:
        source, names = _fetch_archive(client, job_id, execution, folder, progress, config)
    _write_run_files(folder, execution.RunOutput or RunOutput())
    return Downloaded(execution.ID, folder, source, names)


def _write_run_files(folder: Path, output: RunOutput) -> None:
    """stdout/stderr/exitCode from the execution when the archive did not carry them."""
    for name, text in (
        ("stdout", output.Stdout),
        ("stderr", output.Stderr),
        ("exitCode", f"{output.ExitCode}\n"),
    ):
        path = folder / name
        if not path.exists():
            path.write_text(text)


def _fetch_archive(
    client: ApiClient,
    job_id: str,
    execution: Execution,
    folder: Path,
    progress: Progress | None,
    config: Config | None,
) -> tuple[str, list[str]]:
    fd, name = tempfile.mkstemp(prefix=f".{execution.ID}.", suffix=".tar.gz.part", dir=folder)
    part = Path(name)
    try:
        with os.fdopen(fd, "wb") as sink:

            def report(done: int, total: int | None) -> None:
                if progress is not None:
                    progress(execution.ID, done, total)

            try:
                client.download_result(job_id, execution.ID, sink, report)
                source = "orchestrator"
            except ApiError as exc:
                if exc.status not in (404, 405, 409, 501):
                    raise
                sink.seek(0)
                sink.truncate()
                source = _fetch_direct(execution.PublishedResult, sink, folder, config, exc)
        if source.endswith("/") and source.startswith("s3://"):
            return source, []  # a folder of plain objects, already in place
        try:
            return source, unpack(part, folder)
        except ArchiveError as exc:
            raise DownloadError(f"result of {execution.ID} from {source}: {exc}") from None
    finally:
        part.unlink(missing_ok=True)


def _fetch_direct(
    published: SpecConfig, sink: object, folder: Path, config: Config | None, why: ApiError
) -> str:
    """The published location itself, with this client's own network and credentials."""
    from edge.config import load_config

    kind = published.Type.lower()
    if kind in ("urldownload", "local"):
        url = str(published.param("URL", ""))
        if not url.startswith(("http://", "https://")):
            raise DownloadError(f"cannot fetch result at {url!r}: not an http(s) address")
        try:
            with httpx.stream("GET", url, timeout=httpx.Timeout(30.0, read=300.0)) as response:
                if response.status_code >= 400:
                    raise DownloadError(f"{url} answered HTTP {response.status_code}")
                for block in response.iter_bytes(1 << 20):
                    sink.write(block)  # type: ignore[attr-defined]
        except httpx.HTTPError as exc:
            raise DownloadError(
                f"cannot download {url} ({type(exc).__name__}); the orchestrator could not "
                f"relay it either ({why.message})"
            ) from None
        return url
    if kind == "s3":
        cfg = config or load_config()
        bucket, key = str(published.param("Bucket", "")), str(published.param("Key", ""))
        endpoint = s3.resolve(
            cfg, str(published.param("Endpoint", "")), str(published.param("Region", ""))
        )
        plain = str(published.param("Encoding", "gzip")).lower() == "plain"
        try:
            client = endpoint.client()
            if plain:
                _download_prefix(client, bucket, key, folder)
                return published_location(published)
            body = client.get_object(bucket, key)
            try:
                for block in body.stream(1 << 20):
                    sink.write(block)  # type: ignore[attr-defined]
            finally:
                body.close()
                body.release_conn()
        except DownloadError:
            raise
        except Exception as exc:
            raise DownloadError(str(s3.describe(exc, endpoint, bucket, key))) from None
        return published_location(published)
    raise DownloadError(f"cannot fetch a result published as {published.Type!r}: {why.message}")


def _download_prefix(client: object, bucket: str, prefix: str, folder: Path) -> None:
    prefix = prefix if prefix.endswith("/") else prefix + "/"
    root = folder.resolve()
    for item in client.list_objects(bucket, prefix=prefix, recursive=True):  # type: ignore[attr-defined]
        relative = item.object_name[len(prefix) :]
        target = (folder / relative).resolve()
        if not relative or item.is_dir or not target.is_relative_to(root) or target == root:
            continue  # keys with .. or absolute parts would escape the folder
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".part")
        try:
            client.fget_object(bucket, item.object_name, str(tmp))  # type: ignore[attr-defined]
            tmp.replace(target)
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink()


def remove_partial(out: Path, created: bool) -> None:
    """After Ctrl-C: an output folder this run created goes entirely."""
    if created:
        shutil.rmtree(out, ignore_errors=True)
