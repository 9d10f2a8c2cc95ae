"""Package quality and the offline bundle, installed with no network."""

from __future__ import annotations

import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.podman_image import build_busybox_archive

from .conftest import boot
from .machine import REPO, Machine, chroot, copy_tree


def test_lintian_reports_no_errors(deb_file: Path) -> None:
    result = subprocess.run(
        ["lintian", "--no-tag-display-limit", str(deb_file)], capture_output=True, text=True
    )
    errors = [line for line in result.stdout.splitlines() if line.startswith("E:")]
    assert errors == [], "\n".join(errors)


@pytest.fixture(scope="module")
def bundle() -> Path:
    """A bundle that ships the busybox task image, as an operator would build one."""
    image = build_busybox_archive()
    subprocess.run(
        ["bash", str(REPO / "packaging" / "build-bundle.sh"), "--image", str(image)],
        check=True,
        capture_output=True,
    )
    bundles = sorted(
        (REPO / "dist").glob("bacedge-bundle-*.tar.gz"), key=lambda p: p.stat().st_mtime
    )
    assert bundles, "packaging/build-bundle.sh made no bundle"
    return bundles[-1]


def _unpack(bundle: Path, base_rootfs: Path, root: Path) -> str:
    root.mkdir()
    copy_tree(base_rootfs, root)
    with tarfile.open(bundle) as archive:
        archive.extractall(root / "root", filter="data")
    return f"/root/{bundle.name.removesuffix('.tar.gz')}/install.sh"


def test_bundle_installs_without_network_into_an_image(
    bundle: Path, base_rootfs: Path, tmp_path: Path
) -> None:
    """The image-build path: a chroot with no network and no running systemd."""
    root = tmp_path / "root"
    install = _unpack(bundle, base_rootfs, root)
    result = chroot(root, "sh", install, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "bacedge" in chroot(root, "/usr/local/bin/bacedge", "--version").stdout
    assert (root / "etc/systemd/system/bacedge-compute.service").exists()
    assert (root / "etc/bacedge/config.toml").exists()
    assert (root / "etc/bacedge/credentials/nats-token").stat().st_mode & 0o777 == 0o600
    again = chroot(root, "sh", install, check=False)  # idempotent
    assert again.returncode == 0, again.stderr


@pytest.fixture(scope="module")
def live(
    bundle: Path, base_rootfs: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Machine, str]]:
    root = tmp_path_factory.mktemp("bundle") / "root"
    install = _unpack(bundle, base_rootfs, root)
    with boot(root, "bacedge-bundle", tmp_path_factory) as machine:
        yield machine, install


def test_bundle_installs_on_a_running_device_and_its_image_runs(
    live: tuple[Machine, str],
) -> None:
    """The field path: a booted device with no network (private netns) gets the bundle,
    loads its task image into the service user's Podman and runs a container job."""
    machine, install = live
    assert machine.run("ip", "-o", "route", check=False).stdout.strip() == ""  # no network
    result = machine.run("sh", install, timeout=600)
    assert "could not load" not in result.stderr, result.stderr
    images = machine.run("bacedge", "image", "list", "--user", "bacedge").stdout
    assert "localhost/busybox" in images
    machine.run(
        "systemctl", "enable", "--now", "bacedge-orchestrator", "bacedge-compute", timeout=120
    )
    machine.wait_for("sh", "-c", "bacedge node list | grep -q CONNECTED", what="the node to join")
    run = machine.docker_run("echo", "from-bundle")
    assert run.stdout == "from-bundle\n", run.stdout + run.stderr
