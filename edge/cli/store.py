"""`bacedge store ...`: this device's local S3 store, spoken to directly over S3.

The commands read the store's endpoint and credentials from its credentials file (under
`[store] data_dir`, written by `bacedge serve --store`), so they run on the device, as root
or as the service user. `--endpoint URL` points them at any other S3 endpoint instead, with
the credentials `[storage.s3]` (or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY) give for it.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, BinaryIO, TypeVar, cast

import click

from edge.cli.common import BacedgeGroup, echo_data, output_option
from edge.cli.output import colour_enabled, render_fields, render_table
from edge.config import Config, ConfigError, load_config
from edge.models import format_bytes
from edge.s3 import (
    CREDENTIALS_FILE,
    S3Endpoint,
    S3Failure,
    describe,
    local_store,
    parse_s3_url,
    resolve,
    store_dir,
)
from edge.store.buckets import bucket_name_problem

if TYPE_CHECKING:
    from minio import Minio

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

_CHUNK = 1 << 20
_MASK = "********"


@click.group(cls=BacedgeGroup)
def store() -> None:
    """This device's local S3 store (`bacedge serve --store`): buckets, objects, credentials."""


# --------------------------------------------------------------------------- where


@dataclass(frozen=True)
class Target:
    config: Config
    endpoint: S3Endpoint

    def client(self) -> Minio:
        return self.endpoint.client()


def _config(config_file: Path | None, data_dir: Path | None) -> Config:
    try:
        return load_config(config_file, {"node.data_dir": data_dir})
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def _credentials_path(config: Config) -> Path:
    return store_dir(config) / CREDENTIALS_FILE


def _no_local_store(config: Config) -> click.ClickException:
    path = _credentials_path(config)
    try:
        os.stat(path)
    except PermissionError:
        return click.ClickException(
            f"cannot read the local store's credentials ({path}): permission denied; "
            "run as root or as the service user (sudo -u bacedge bacedge store ...)"
        )
    except OSError:
        return click.ClickException(
            f"no local store here ({path} does not exist): start one with "
            "`bacedge serve --store` (or `systemctl enable --now bacedge-store`), "
            "pass --data-dir to find it, or --endpoint URL for another S3 store"
        )
    if not os.access(path, os.R_OK):
        return click.ClickException(
            f"cannot read the local store's credentials ({path}): permission denied; "
            "run as root or as the service user (sudo -u bacedge bacedge store ...)"
        )
    return click.ClickException(f"{path} is not a valid store credentials file")


def _target(config_file: Path | None, data_dir: Path | None, endpoint: str | None) -> Target:
    config = _config(config_file, data_dir)
    if endpoint:
        try:
            return Target(config, resolve(config, endpoint))
        except S3Failure as exc:
            raise click.ClickException(str(exc)) from None
    local = local_store(config)
    if local is None:
        raise _no_local_store(config)
    return Target(config, local)


def store_options(func: F) -> F:
    """--config, --data-dir, --endpoint: which store, with which credentials; passes `target`."""

    @click.option(
        "--config",
        "config_file",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Config file whose [store] (and [storage.s3]) to use.",
    )
    @click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        help="Data dir of the `bacedge serve --store` whose store to use "
        "[default: /var/lib/bacedge as root, ~/.local/share/bacedge otherwise].",
    )
    @click.option(
        "--endpoint",
        metavar="URL",
        help="Another S3 endpoint instead of the local store (credentials from "
        "[storage.s3] or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY).",
    )
    @functools.wraps(func)
    def wrapper(
        *args: Any,
        config_file: Path | None,
        data_dir: Path | None,
        endpoint: str | None,
        **kwargs: Any,
    ) -> Any:
        return func(*args, target=_target(config_file, data_dir, endpoint), **kwargs)

    return wrapper  # type: ignore[return-value]


def _s3(endpoint: S3Endpoint, bucket: str, key: str, call: Callable[[], T]) -> T:
    """Runs one S3 call; a failure becomes the one-line error `edge.s3.describe` writes."""
    try:
        return call()
    except (KeyboardInterrupt, click.ClickException):
        raise
    except Exception as exc:
        raise click.ClickException(_describe(exc, endpoint, bucket, key)) from None


def _describe(exc: BaseException, endpoint: S3Endpoint, bucket: str, key: str = "") -> str:
    if endpoint.local and _is_network(exc):
        reason = "connection refused" if "Connection refused" in str(exc) else type(exc).__name__
        return (
            f"the local store at {endpoint.url} is not reachable ({reason}): start it with "
            "`bacedge serve --store` or `systemctl start bacedge-store`"
        )
    if bucket:
        return str(describe(exc, endpoint, bucket, key))
    text = str(describe(exc, endpoint, "-"))  # a store-wide call (ListBuckets)
    return text.replace("s3://- at ", "the store at ").replace(" for s3://-", "")


def _bucket_arg(text: str) -> str:
    name = text[5:].rstrip("/") if text.startswith("s3://") else text
    problem = bucket_name_problem(name)
    if problem is not None:
        raise click.ClickException(f"invalid bucket name {name!r}: a bucket name {problem}")
    return name


def _s3_url(text: str) -> tuple[str, str]:
    try:
        bucket, key = parse_s3_url(text)
    except S3Failure as exc:
        raise click.ClickException(str(exc)) from None
    _bucket_arg(bucket)
    return bucket, key


def _iso(value: Any) -> str:
    if value is None:
        return ""
    return str(value.isoformat()).replace("+00:00", "Z")


# --------------------------------------------------------------------------- status


@store.command("status")
@store_options
@output_option
def status(target: Target, output: str) -> None:
    """Endpoint, backend, buckets with their objects and size, and whether the store answers.

    Exits 1 when the store does not answer."""
    endpoint = target.endpoint
    client = target.client()
    info: dict[str, Any] = {
        "endpoint": endpoint.url,
        "backend": _local_backend(target.config) if endpoint.local else "",
        "alive": True,
        "error": "",
        "buckets": [],
    }
    if endpoint.local:
        info["data_dir"] = str(store_dir(target.config))
        info["disk_bytes"] = _disk_usage(store_dir(target.config))
    try:
        buckets = client.list_buckets()
    except Exception as exc:
        info["alive"] = False
        info["error"] = _describe(exc, endpoint, "")
        buckets = []
    for bucket in buckets:
        objects = size = 0
        with contextlib.suppress(Exception):
            for obj in client.list_objects(bucket.name, recursive=True):
                objects += 1
                size += int(obj.size or 0)
        info["buckets"].append(
            {
                "name": bucket.name,
                "objects": objects,
                "bytes": size,
                "created": _iso(bucket.creation_date),
            }
        )
    if output != "table":
        echo_data(info, output)
    else:
        _print_status(info)
    if not info["alive"]:
        sys.exit(1)


def _print_status(info: dict[str, Any]) -> None:
    colour = colour_enabled()
    alive = click.style("yes", fg="green") if colour else "yes"
    down = click.style("no", fg="red") if colour else "no"
    total = sum(b["bytes"] for b in info["buckets"])
    pairs = [
        ("Endpoint", info["endpoint"]),
        ("Backend", info["backend"]),
        ("Alive", alive if info["alive"] else down),
        ("Error", info["error"]),
        ("Data dir", info.get("data_dir", "")),
    ]
    if "disk_bytes" in info:
        pairs.append(("On disk", format_bytes(info["disk_bytes"])))
    if info["alive"]:
        pairs.append(("Buckets", f"{len(info['buckets'])} ({format_bytes(total)} in objects)"))
    click.echo(render_fields(pairs))
    if info["buckets"]:
        rows = [
            [b["name"], str(b["objects"]), format_bytes(b["bytes"]), b["created"]]
            for b in info["buckets"]
        ]
        click.echo("")
        click.echo(render_table(["BUCKET", "OBJECTS", "SIZE", "CREATED"], rows, colour))


def _local_backend(config: Config) -> str:
    with contextlib.suppress(OSError, ValueError, AttributeError):
        return str(json.loads(_credentials_path(config).read_text()).get("backend", ""))
    return ""


def _disk_usage(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
    return total


# --------------------------------------------------------------------------- mb / ls / rm


@store.command("mb")
@store_options
@click.argument("bucket", metavar="BUCKET")
def make_bucket(target: Target, bucket: str) -> None:
    """Create a bucket (`BUCKET` or `s3://BUCKET`); the name follows S3's rules."""
    from minio.error import S3Error

    name = _bucket_arg(bucket)
    endpoint = target.endpoint
    client = target.client()
    try:
        client.make_bucket(name)
    except S3Error as exc:
        if exc.code in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise click.ClickException(f"s3://{name} already exists at {endpoint.url}") from None
        raise click.ClickException(_describe(exc, endpoint, name)) from None
    except Exception as exc:
        raise click.ClickException(_describe(exc, endpoint, name)) from None
    click.echo(f"Created bucket s3://{name}")


@store.command("ls")
@store_options
@output_option
@click.option("--recursive", "-r", is_flag=True, help="List every key under the prefix.")
@click.argument("url", metavar="[s3://BUCKET/PREFIX]", required=False)
def list_objects(target: Target, output: str, recursive: bool, url: str | None) -> None:
    """Buckets (no argument), or the objects and folders under s3://BUCKET/PREFIX."""
    endpoint = target.endpoint
    client = target.client()
    if not url or url.rstrip("/") == "s3:":
        buckets = _s3(endpoint, "", "", client.list_buckets)
        names = [{"name": b.name, "created": _iso(b.creation_date)} for b in buckets]
        if output != "table":
            echo_data(names, output)
            return
        rows = [[b["created"], f"s3://{b['name']}"] for b in names]
        click.echo(render_table(["CREATED", "BUCKET"], rows))
        return
    bucket, prefix = _s3_url(url)
    entries = _s3(
        endpoint,
        bucket,
        prefix,
        lambda: list(client.list_objects(bucket, prefix=prefix or None, recursive=recursive)),
    )
    if prefix and not entries:
        raise click.ClickException(f"s3://{bucket}/{prefix} not found at {endpoint.url}")
    items: list[dict[str, Any]] = [
        {
            "key": obj.object_name,
            "size": int(obj.size or 0),
            "modified": _iso(obj.last_modified),
            "folder": bool(obj.is_dir),
        }
        for obj in entries
    ]
    if output != "table":
        echo_data(items, output)
        return
    rows = [
        ["", "PRE", i["key"]] if i["folder"] else [i["modified"], format_bytes(i["size"]), i["key"]]
        for i in items
    ]
    click.echo(render_table(["MODIFIED", "SIZE", "KEY"], rows))


@store.command("rm")
@store_options
@click.option("--recursive", "-r", is_flag=True, help="Remove every object under the prefix.")
@click.argument("url", metavar="s3://BUCKET/KEY")
def remove(target: Target, recursive: bool, url: str) -> None:
    """Remove an object, or with --recursive every object under a prefix (the bucket stays)."""
    from minio.deleteobjects import DeleteObject

    bucket, key = _s3_url(url)
    endpoint = target.endpoint
    client = target.client()
    if not recursive:
        if not key or key.endswith("/"):
            raise click.ClickException(
                f"{url} names a prefix, not an object: pass --recursive to remove what it holds"
            )
        _s3(endpoint, bucket, key, lambda: client.stat_object(bucket, key))
        _s3(endpoint, bucket, key, lambda: client.remove_object(bucket, key))
        click.echo(f"Removed s3://{bucket}/{key}")
        return
    names = _s3(
        endpoint,
        bucket,
        key,
        lambda: [
            o.object_name
            for o in client.list_objects(bucket, prefix=key or None, recursive=True)
            if o.object_name
        ],
    )
    if not names:
        raise click.ClickException(f"s3://{bucket}/{key} not found at {endpoint.url}")
    errors = _s3(
        endpoint,
        bucket,
        key,
        lambda: list(client.remove_objects(bucket, (DeleteObject(n) for n in names))),
    )
    if errors:
        first = errors[0]
        raise click.ClickException(
            f"{len(errors)} of {len(names)} objects under s3://{bucket}/{key} were not removed "
            f"({first.name}: {first.code} {first.message})"
        )
    click.echo(f"Removed {len(names)} object{'' if len(names) == 1 else 's'} under {url}")


# --------------------------------------------------------------------------- cp


class _Cancelled(Exception):
    """Raised inside an upload's reader once Ctrl-C was pressed: the SDK then aborts."""


class _Reader:
    """A file for put_object: reports progress, stops the upload when cancelled."""

    def __init__(self, handle: IO[bytes], bar: Any, cancel: threading.Event) -> None:
        self.handle = handle
        self.bar = bar
        self.cancel = cancel

    def read(self, amount: int = -1) -> bytes:
        if self.cancel.is_set():
            raise _Cancelled()
        size = _CHUNK if amount is None or amount < 0 else min(amount, _CHUNK)
        data = self.handle.read(size)
        self.bar.update(len(data))
        return data


class _NoBar:
    def update(self, _amount: int) -> None:
        pass


@contextlib.contextmanager
def _progress(total: int, label: str) -> Iterator[Any]:
    """click's progress bar on stderr, as `bacedge image load` shows, when it is a terminal."""
    if not sys.stderr.isatty():
        yield _NoBar()
        return
    with click.progressbar(length=total, label=label, file=sys.stderr) as bar:
        yield bar


@dataclass(frozen=True)
class _Copy:
    source: str
    destination: str
    size: int


@store.command("cp")
@store_options
@output_option
@click.option(
    "--recursive", "-r", is_flag=True, help="Copy a directory, or every key under a prefix."
)
@click.argument("source", metavar="SRC")
@click.argument("destination", metavar="DST")
def copy(target: Target, output: str, recursive: bool, source: str, destination: str) -> None:
    """Copy a local file to s3://BUCKET/KEY or back; directories and prefixes with --recursive.

    A DST ending in `/` (or an existing directory) receives the file under its own name.
    Ctrl-C stops the copy without leaving a partial object or file behind."""
    up, down = destination.startswith("s3://"), source.startswith("s3://")
    if up and down:
        raise click.ClickException(
            "copying between two s3:// addresses is not supported: copy to a local file first"
        )
    if not up and not down:
        raise click.ClickException("one of SRC and DST must be an s3:// address")
    try:
        if up:
            done = _upload(target, source, destination, recursive)
        else:
            done = _download(target, source, destination, recursive)
    except KeyboardInterrupt:
        click.echo("\nCancelled: the object being copied was not written.", err=True)
        sys.exit(130)
    if output != "table":
        echo_data([c.__dict__ for c in done], output)
        return
    verb = "upload" if up else "download"
    for item in done:
        click.echo(f"{verb}: {item.source} -> {item.destination} ({format_bytes(item.size)})")


def _upload(target: Target, source: str, destination: str, recursive: bool) -> list[_Copy]:
    bucket, key = _s3_url(destination)
    path = Path(source)
    if not path.exists():
        raise click.ClickException(f"{source}: no such file or directory")
    if path.is_dir():
        if not recursive:
            raise click.ClickException(f"{source} is a directory: pass --recursive to copy it")
        prefix = key if not key or key.endswith("/") else key + "/"
        files = sorted(p for p in path.rglob("*") if p.is_file())
        plan = [(p, prefix + p.relative_to(path).as_posix()) for p in files]
        if not plan:
            raise click.ClickException(f"{source} holds no files to copy")
    else:
        name = key + path.name if not key or key.endswith("/") else key
        plan = [(path, name)]
    try:
        sizes = [file.stat().st_size for file, _ in plan]
    except OSError as exc:
        raise click.ClickException(f"{exc.filename}: {exc.strerror}") from None
    endpoint = target.endpoint
    client = target.client()
    _s3(endpoint, bucket, "", lambda: _require_bucket(client, endpoint, bucket))
    done: list[_Copy] = []
    total = sum(sizes)
    label = f"Uploading {len(plan)} file{'s' if len(plan) != 1 else ''} ({format_bytes(total)})"
    with _progress(total, label) as bar:
        for (file, name), size in zip(plan, sizes, strict=True):
            _put(client, endpoint, bucket, name, file, size, bar)
            done.append(_Copy(str(file), f"s3://{bucket}/{name}", size))
    return done


def _require_bucket(client: Minio, endpoint: S3Endpoint, bucket: str) -> None:
    if not client.bucket_exists(bucket):
        raise click.ClickException(f"s3://{bucket} not found at {endpoint.url}")


def _put(
    client: Minio, endpoint: S3Endpoint, bucket: str, key: str, file: Path, size: int, bar: Any
) -> None:
    """One upload in a worker thread, so Ctrl-C here can make its reader stop it: the SDK
    then aborts a multipart upload, and a single PUT never completes half an object."""
    cancel = threading.Event()
    finished = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        try:
            with file.open("rb") as handle:
                client.put_object(
                    bucket,
                    key,
                    cast(BinaryIO, _Reader(handle, bar, cancel)),
                    size,
                    num_parallel_uploads=1,  # no part still in flight after an abort
                )
        except BaseException as exc:
            failure.append(exc)
        finally:
            finished.set()

    threading.Thread(target=run, name="store-upload", daemon=True).start()
    # Event.wait, not Thread.join: a join that Ctrl-C interrupts can leave the thread
    # marked stopped while it still runs, and the abort below would not be waited for.
    try:
        while not finished.wait(0.1):
            pass
    except KeyboardInterrupt:
        cancel.set()
        finished.wait(30.0)
        raise
    if failure and not isinstance(failure[0], _Cancelled):
        exc = failure[0]
        if isinstance(exc, OSError) and not _is_network(exc):
            raise click.ClickException(f"{file}: {exc.strerror or exc}")
        raise click.ClickException(_describe(exc, endpoint, bucket, key))


def _is_network(exc: BaseException) -> bool:
    import urllib3.exceptions

    return isinstance(exc, (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError))


def _download(target: Target, source: str, destination: str, recursive: bool) -> list[_Copy]:
    bucket, key = _s3_url(source)
    endpoint = target.endpoint
    client = target.client()
    dest = Path(destination)
    if recursive:
        prefix = key if not key or key.endswith("/") else key + "/"
        objects = _s3(
            endpoint,
            bucket,
            key,
            lambda: [
                o
                for o in client.list_objects(bucket, prefix=prefix or None, recursive=True)
                if o.object_name and not o.object_name.endswith("/")
            ],
        )
        if not objects:
            raise click.ClickException(f"s3://{bucket}/{key} not found at {endpoint.url}")
        if not dest.parent.is_dir():
            raise click.ClickException(f"{destination}: directory {dest.parent} does not exist")
        if dest.exists() and not dest.is_dir():
            raise click.ClickException(f"{destination} is a file: give a directory")
        plan = []
        for obj in objects:
            name = str(obj.object_name)
            relative = Path(name[len(prefix) :])
            if relative.is_absolute() or ".." in relative.parts or not relative.parts:
                raise click.ClickException(
                    f"s3://{bucket}/{name} would land outside {destination}: not copied"
                )
            plan.append((name, dest / relative, int(obj.size or 0)))
    else:
        if not key or key.endswith("/"):
            raise click.ClickException(
                f"{source} names a prefix, not an object: pass --recursive to copy what it holds"
            )
        stat = _s3(endpoint, bucket, key, lambda: client.stat_object(bucket, key))
        if destination.endswith(("/", os.sep)) or dest.is_dir():
            if not dest.is_dir():
                raise click.ClickException(f"{destination}: no such directory")
            dest = dest / Path(key).name
        elif not dest.parent.is_dir():
            raise click.ClickException(f"{destination}: directory {dest.parent} does not exist")
        plan = [(key, dest, int(stat.size or 0))]
    total = sum(size for _, _, size in plan)
    label = f"Downloading {len(plan)} file{'s' if len(plan) != 1 else ''} ({format_bytes(total)})"
    done: list[_Copy] = []
    with _progress(total, label) as bar:
        for name, path, size in plan:
            _get(client, endpoint, bucket, name, path, bar)
            done.append(_Copy(f"s3://{bucket}/{name}", str(path), size))
    return done


def _get(client: Minio, endpoint: S3Endpoint, bucket: str, key: str, path: Path, bar: Any) -> None:
    """Streams one object into a temporary file next to `path`, renamed when complete."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise click.ClickException(f"{path.parent}: {exc.strerror}") from None
    part = path.with_name(f".{path.name}.bacedge-part")
    response = _s3(endpoint, bucket, key, lambda: client.get_object(bucket, key))
    try:
        try:
            handle = part.open("wb")
        except OSError as exc:
            raise click.ClickException(f"{path}: {exc.strerror}") from None
        with handle:
            try:
                for block in response.stream(_CHUNK):
                    handle.write(block)
                    bar.update(len(block))
            except OSError as exc:
                if _is_network(exc):
                    raise click.ClickException(_describe(exc, endpoint, bucket, key)) from None
                raise click.ClickException(f"{path}: {exc.strerror or exc}") from None
            except Exception as exc:
                raise click.ClickException(_describe(exc, endpoint, bucket, key)) from None
        part.replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            part.unlink()
        raise
    finally:
        response.close()
        response.release_conn()


# --------------------------------------------------------------------------- credentials


@store.command("credentials")
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Config file whose [store] to use.",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Data dir of the `bacedge serve --store` whose store to use.",
)
@click.option("--show-secret", is_flag=True, help="Print the secret key instead of ********.")
@output_option
def credentials(
    config_file: Path | None, data_dir: Path | None, show_secret: bool, output: str
) -> None:
    """The local store's endpoint and access key, for S3 clients (the secret is masked)."""
    config = _config(config_file, data_dir)
    local = local_store(config)
    if local is None:
        raise _no_local_store(config)
    data = {
        "endpoint": local.url,
        "access_key": local.access_key,
        "secret_key": local.secret_key if show_secret else _MASK,
        "region": local.region,
        "backend": _local_backend(config),
    }
    if output != "table":
        echo_data(data, output)
        return
    click.echo(
        render_fields(
            [
                ("Endpoint", data["endpoint"]),
                ("Access key", data["access_key"]),
                ("Secret key", data["secret_key"]),
                ("Region", data["region"]),
                ("Backend", data["backend"]),
            ]
        )
    )
