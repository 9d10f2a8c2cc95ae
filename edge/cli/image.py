"""`bacedge image ...`: the container images a node's tasks can use, managed offline.

Edge nodes often have no registry to pull from, so images travel as archives (`podman save`,
`docker save`) and are loaded into the node's rootless Podman store. These commands talk to
that Podman socket directly (the one `[compute] podman_socket` names), not to the
orchestrator: run them on the node.
"""

from __future__ import annotations

import datetime
import json
import pwd
import sys
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast

import click

from edge.cli.common import BacedgeGroup, echo_data, output_option
from edge.cli.output import colour_enabled, render_table
from edge.config import ConfigError, load_config
from edge.models import format_bytes

if TYPE_CHECKING:
    from podman import PodmanClient

_CHUNK = 1 << 20


@click.group(cls=BacedgeGroup)
def image() -> None:
    """Images on this node's Podman, for docker tasks (works offline)."""


def socket_options(func: Any) -> Any:
    """--podman-socket, --user and --config: which Podman service to manage."""
    func = click.option(
        "--config",
        "config_file",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Config file whose [compute] podman_socket to use.",
    )(func)
    func = click.option(
        "--user",
        "user_name",
        metavar="NAME",
        help="Use the rootless Podman of this service user (as root, e.g. --user bacedge).",
    )(func)
    return click.option(
        "--podman-socket",
        metavar="PATH",
        help="Rootless Podman API socket [default: [compute] podman_socket, "
        "else /run/user/$UID/podman/podman.sock].",
    )(func)


def user_socket(name: str) -> str:
    """The socket `bacedge setup podman --user NAME` starts for that user."""
    try:
        uid = pwd.getpwnam(name).pw_uid
    except KeyError:
        raise click.ClickException(
            f"no user {name!r} on this host: create it with `bacedge setup podman --user {name}`"
        ) from None
    return f"/run/user/{uid}/podman/podman.sock"


@contextmanager
def podman_client(
    config_file: Path | None, socket: str | None, user_name: str | None = None
) -> Iterator[PodmanClient]:
    """A connected client, or a one-line error that says how to get the socket going."""
    from edge.executors.base import ExecutorError
    from edge.executors.podman import connect

    if socket is None and user_name:
        socket = user_socket(user_name)
    try:
        config = load_config(config_file, {"compute.podman_socket": socket})
        client = connect(config.compute.podman_socket)
    except (ConfigError, ExecutorError) as exc:
        raise click.ClickException(str(exc)) from None
    try:
        yield client
    finally:
        client.close()


def _list_images(client: PodmanClient) -> list[dict[str, Any]]:
    response = client.api.get("/images/json")
    response.raise_for_status()
    return list(response.json() or [])


# --------------------------------------------------------------------------- archives


@dataclass(frozen=True)
class ArchivedImage:
    """One image in an archive: its ID (config digest) and the tags it carries."""

    image_id: str
    tags: tuple[str, ...]


def archive_images(path: Path) -> list[ArchivedImage]:
    """The images a docker-archive or oci-archive holds (empty when it cannot tell).

    Reading the small manifest first is what makes `image load` idempotent and cheap:
    images already present with the same ID and tags are not sent again.
    """
    try:
        with tarfile.open(path, "r:*") as tar:
            names = {m.name.removeprefix("./"): m for m in tar.getmembers() if m.isfile()}

            def read(name: str) -> Any:
                member = names.get(name)
                handle = tar.extractfile(member) if member is not None else None
                return json.load(handle) if handle is not None else None

            if "manifest.json" in names:  # docker-archive (podman save default)
                return [
                    ArchivedImage(
                        str(entry.get("Config", "")).rsplit("/", 1)[-1].removesuffix(".json"),
                        tuple(entry.get("RepoTags") or ()),
                    )
                    for entry in read("manifest.json") or []
                ]
            if "index.json" in names:  # oci-archive
                out = []
                for entry in (read("index.json") or {}).get("manifests", []):
                    digest = str(entry.get("digest", "")).replace(":", "/")
                    manifest = read(f"blobs/{digest}") or {}
                    config = str((manifest.get("config") or {}).get("digest", ""))
                    ref = (entry.get("annotations") or {}).get("org.opencontainers.image.ref.name")
                    out.append(ArchivedImage(config.removeprefix("sha256:"), (ref,) if ref else ()))
                return out
    except (tarfile.TarError, OSError, ValueError, AttributeError):
        pass
    return []


def _normal_tag(tag: str) -> str:
    from edge.models.node import ImageRef

    return ImageRef.parse(tag).canonical()


def already_loaded(wanted: list[ArchivedImage], present: list[dict[str, Any]]) -> bool:
    """Every image of the archive is in the store with the same ID and all its tags."""
    if not wanted or any(not w.image_id for w in wanted):
        return False
    by_id = {str(p.get("Id", "")).removeprefix("sha256:"): p for p in present}
    for want in wanted:
        have = by_id.get(want.image_id)
        if have is None:
            return False
        tags = {_normal_tag(t) for t in have.get("RepoTags") or []}
        if any(_normal_tag(t) not in tags for t in want.tags):
            return False
    return True


class _ProgressReader:
    """A file that reports each chunk read to a progress bar; `len` gives Content-Length."""

    def __init__(self, handle: IO[bytes], size: int, bar: Any) -> None:
        self.handle = handle
        self.size = size
        self.bar = bar

    def __len__(self) -> int:
        return self.size

    def read(self, amount: int = -1) -> bytes:
        data = self.handle.read(_CHUNK if amount is None or amount < 0 else amount)
        self.bar.update(len(data))
        return data


# --------------------------------------------------------------------------- commands


@image.command("load")
@socket_options
@click.option("--force", is_flag=True, help="Load even if the archive's images are all present.")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def load(
    file: Path,
    config_file: Path | None,
    podman_socket: str | None,
    user_name: str | None,
    force: bool,
) -> None:
    """Load an image archive (podman/docker save, docker- or oci-archive) into this node.

    Images already present with the same ID and tags are skipped, so running it again
    changes nothing. Ctrl-C during the upload leaves the store as it was.
    """
    import requests
    from podman.errors import APIError

    wanted = archive_images(file)
    with podman_client(config_file, podman_socket, user_name) as client:
        try:
            present = _list_images(client)
        except (APIError, requests.RequestException) as exc:
            raise click.ClickException(f"cannot list Podman images: {exc}") from None
        if not force and already_loaded(wanted, present):
            tags = ", ".join(t for w in wanted for t in w.tags) or ", ".join(
                w.image_id[:12] for w in wanted
            )
            click.echo(f"Already loaded: {tags}")
            return
        size = file.stat().st_size
        try:
            with (
                file.open("rb") as handle,
                click.progressbar(
                    length=size,
                    label=f"Uploading {file.name} ({format_bytes(size)})",
                    file=sys.stderr,
                ) as bar,
            ):
                response = client.api.post(
                    "/images/load",
                    data=cast(IO[bytes], _ProgressReader(handle, size, bar)),
                    headers={"Content-Type": "application/x-tar"},
                )
        except KeyboardInterrupt:
            click.echo("\nCancelled during the upload: nothing was loaded.", err=True)
            sys.exit(130)
        except (APIError, requests.RequestException) as exc:
            raise click.ClickException(f"Podman could not load {file}: {exc}") from None
        if response.status_code >= 400:
            try:
                message = str(response.json().get("message") or response.text)
            except ValueError:
                message = response.text
            if "supported image formats" in message:
                message = "not an image archive"
            raise click.ClickException(
                f"Podman could not load {file}: {' '.join(message.split())} "
                "(expected a docker-archive or oci-archive, as `podman save` writes)"
            )
        names = (response.json() or {}).get("Names") or []
    click.echo(f"Loaded image: {', '.join(names) or file.name}")


@image.command("list")
@socket_options
@output_option
def list_images(
    config_file: Path | None, podman_socket: str | None, user_name: str | None, output: str
) -> None:
    """Images on this node that docker tasks can use without a pull."""
    import requests
    from podman.errors import APIError

    with podman_client(config_file, podman_socket, user_name) as client:
        try:
            items = _list_images(client)
        except (APIError, requests.RequestException) as exc:
            raise click.ClickException(f"cannot list Podman images: {exc}") from None
    rows: list[dict[str, Any]] = []
    for item in sorted(items, key=lambda i: (i.get("RepoTags") or ["~"])[0]):
        image_id = str(item.get("Id", "")).removeprefix("sha256:")
        created = item.get("Created") or 0
        tags = [t for t in item.get("RepoTags") or [] if "<none>" not in t] or ["<none>"]
        rows.append(
            {
                "Names": tags,
                "ID": image_id,
                "Created": datetime.datetime.fromtimestamp(created, datetime.timezone.utc)
                .isoformat()
                .replace("+00:00", "Z"),
                "Size": int(item.get("Size") or 0),
            }
        )
    if output != "table":
        echo_data(rows, output)
        return
    table = [
        [
            name,
            row["ID"][:12],
            str(row["Created"])[:19].replace("T", " "),
            format_bytes(row["Size"]),
        ]
        for row in rows
        for name in row["Names"]
    ]
    click.echo(render_table(["IMAGE", "ID", "CREATED", "SIZE"], table, colour_enabled()))
