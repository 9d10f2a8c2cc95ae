"""An offline busybox image for tests and benchmarks, built from Debian's busybox-static.

No registry is reachable, so the image is made here: /bin/busybox plus one symlink per
applet, packed as a docker-archive (what `podman save` writes) with fixed timestamps, so the
same busybox always gives the same image ID and `bacedge image load` can be idempotent.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

BUSYBOX = Path("/bin/busybox")
TAG = "localhost/busybox:latest"
TEST_USER = "bacedge-test"  # the rootless Podman service user of the test suite
CACHE_DIR = Path(tempfile.gettempdir()) / "bacedge-test-images"
_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}


def _add(tar: tarfile.TarFile, name: str, kind: bytes, mode: int, data: bytes = b"") -> None:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.mtime = 0
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)


def _rootfs_layer() -> bytes:
    if not BUSYBOX.exists():
        raise RuntimeError("/bin/busybox not found: apt-get install -y busybox-static")
    applets = subprocess.run(
        [str(BUSYBOX), "--list"], capture_output=True, text=True, check=True
    ).stdout.split()
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for directory, mode in (("bin", 0o755), ("etc", 0o755), ("tmp", 0o1777), ("root", 0o700)):
            _add(tar, directory, tarfile.DIRTYPE, mode)
        _add(tar, "bin/busybox", tarfile.REGTYPE, 0o755, BUSYBOX.read_bytes())
        for applet in sorted(set(applets) - {"busybox"}):
            info = tarfile.TarInfo(f"bin/{applet}")
            info.type = tarfile.SYMTYPE
            info.linkname = "busybox"
            info.mtime = 0
            tar.addfile(info)
        _add(tar, "etc/passwd", tarfile.REGTYPE, 0o644, b"root:x:0:0:root:/root:/bin/sh\n")
        _add(tar, "etc/group", tarfile.REGTYPE, 0o644, b"root:x:0:\n")
    return out.getvalue()


def build_busybox_archive(tag: str = TAG) -> Path:
    """A docker-archive of busybox tagged `tag`, cached by content."""
    layer = _rootfs_layer()
    layer_digest = hashlib.sha256(layer).hexdigest()
    config = json.dumps(
        {
            "architecture": _ARCH.get(platform.machine(), platform.machine()),
            "os": "linux",
            "created": "1970-01-01T00:00:00Z",
            "config": {"Cmd": ["sh"], "Env": ["PATH=/bin"]},
            "rootfs": {"type": "layers", "diff_ids": [f"sha256:{layer_digest}"]},
            "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "bacedge tests"}],
        },
        sort_keys=True,
    ).encode()
    config_digest = hashlib.sha256(config).hexdigest()
    name = f"busybox-{hashlib.sha256((config_digest + tag).encode()).hexdigest()[:16]}.tar"
    out = CACHE_DIR / name
    if out.exists():
        return out
    manifest = json.dumps(
        [
            {
                "Config": f"{config_digest}.json",
                "RepoTags": [tag],
                "Layers": [f"{layer_digest}/layer.tar"],
            }
        ]
    ).encode()
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    partial = out.with_suffix(f".{os.getpid()}.tmp")
    with tarfile.open(partial, "w", format=tarfile.USTAR_FORMAT) as tar:
        _add(tar, f"{layer_digest}", tarfile.DIRTYPE, 0o755)
        _add(tar, f"{layer_digest}/layer.tar", tarfile.REGTYPE, 0o644, layer)
        _add(tar, f"{config_digest}.json", tarfile.REGTYPE, 0o644, config)
        _add(tar, "manifest.json", tarfile.REGTYPE, 0o644, manifest)
    partial.replace(out)
    return out


def image_id(archive: Path) -> str:
    """The image ID (config digest) of an archive built here."""
    with tarfile.open(archive) as tar:
        handle = tar.extractfile("manifest.json")
        assert handle is not None
        return str(json.load(handle)[0]["Config"]).removesuffix(".json")


def podman_socket() -> str | None:
    """The rootless Podman socket tests use: BACEDGE_TEST_PODMAN_SOCKET (scripts/test.sh sets
    it), else one made now with `bacedge setup podman` when running as root; None if neither."""
    configured = os.environ.get("BACEDGE_TEST_PODMAN_SOCKET")
    if configured:
        return configured
    if os.geteuid() != 0 or not shutil.which("podman") or not shutil.which("runuser"):
        return None
    done = subprocess.run(
        [sys.executable, "-m", "edge.cli.main", "setup", "podman", "--user", TEST_USER, "-q"],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"bacedge setup podman failed: {done.stderr.strip()}")
    return done.stdout.strip()


def load_busybox(socket: str) -> Path:
    """The busybox archive, loaded into the Podman of `socket` with `bacedge image load`."""
    archive = build_busybox_archive()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "edge.cli.main",
            "image",
            "load",
            "--podman-socket",
            socket,
            str(archive),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"bacedge image load failed: {done.stderr.strip()}")
    return archive
