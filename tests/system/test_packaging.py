"""Package quality and the offline bundle, installed with no network."""

from __future__ import annotations

import subprocess
import tarfile
from pathlib import Path

from .machine import REPO, chroot, copy_tree


def test_lintian_reports_no_errors(deb_file: Path) -> None:
    result = subprocess.run(
        ["lintian", "--no-tag-display-limit", str(deb_file)], capture_output=True, text=True
    )
    errors = [line for line in result.stdout.splitlines() if line.startswith("E:")]
    assert errors == [], "\n".join(errors)


def test_bundle_installs_without_network(base_rootfs: Path, tmp_path: Path) -> None:
    subprocess.run(
        ["bash", str(REPO / "packaging" / "build-bundle.sh")], check=True, capture_output=True
    )
    bundles = sorted(
        (REPO / "dist").glob("bacedge-bundle-*.tar.gz"), key=lambda p: p.stat().st_mtime
    )
    root = tmp_path / "root"
    root.mkdir()
    copy_tree(base_rootfs, root)
    with tarfile.open(bundles[-1]) as archive:
        archive.extractall(root / "root", filter="data")
    name = bundles[-1].name.removesuffix(".tar.gz")
    result = chroot(root, "sh", f"/root/{name}/install.sh", check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "bacedge" in chroot(root, "/usr/local/bin/bacedge", "--version").stdout
    assert (root / "etc/systemd/system/bacedge-compute.service").exists()
    assert (root / "etc/bacedge/config.toml").exists()
    assert (root / "etc/bacedge/credentials/nats-token").stat().st_mode & 0o777 == 0o600
    again = chroot(root, "sh", f"/root/{name}/install.sh", check=False)  # idempotent
    assert again.returncode == 0, again.stderr
