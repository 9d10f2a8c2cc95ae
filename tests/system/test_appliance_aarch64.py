"""The aarch64 appliance, built on this x86_64 machine through qemu-user: its programs are
arm64 programs, and they run (under binfmt's qemu-aarch64 here, natively on a board)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

EM_AARCH64 = 183  # ELF e_machine


def inside(root: Path, name: str) -> Path:
    """`root/name` with its links followed inside `root` (they are absolute in the image)."""
    path = root / name
    for _ in range(16):
        if not path.is_symlink():
            return path
        target = Path(os.readlink(path))
        path = root / target.relative_to("/") if target.is_absolute() else path.parent / target
    raise AssertionError(f"{name}: too many links")


def elf_machine(path: Path) -> int:
    header = path.read_bytes()[:20]
    assert header[:4] == b"\x7fELF", f"{path} is not an ELF file"
    return int.from_bytes(header[18:20], "little")


@pytest.fixture(scope="module")
def arm64(aarch64_dist: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The build (started in the background at the session's start: conftest.py) and its
    rootfs unpacked."""
    out = aarch64_dist
    root = tmp_path_factory.mktemp("aarch64") / "root"
    tarball = next(out.glob("*-aarch64.rootfs.tar.zst"))
    root.mkdir()
    subprocess.run(["tar", "--zstd", "-xpf", str(tarball), "-C", str(root)], check=True)
    return out, root


def test_the_rootfs_holds_arm64_programs(arm64: tuple[Path, Path]) -> None:
    out, root = arm64
    manifest = json.loads(next(out.glob("*.manifest.json")).read_text())
    assert manifest["arch"] == "aarch64"
    assert {p["arch"] for p in manifest["packages"]} <= {"arm64", "all"}
    programs = [
        inside(root, f) for f in ("opt/bacedge/bin/python3", "usr/bin/podman", "bin/busybox")
    ]
    programs += [p for p in (root / "opt/bacedge").rglob("nats-server") if p.is_file()]
    programs += [p for p in (root / "opt/bacedge").rglob("weed") if p.is_file()]
    assert len(programs) >= 5, programs
    for program in programs:
        assert elf_machine(program) == EM_AARCH64, program


def test_bacedge_runs_in_it(arm64: tuple[Path, Path]) -> None:
    _out, root = arm64
    done = subprocess.run(
        ["chroot", str(root), "/opt/bacedge/bin/bacedge", "--version"],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C.UTF-8"},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("bacedge"), done.stdout
    machine = subprocess.run(
        [
            "chroot",
            str(root),
            "/opt/bacedge/bin/python3",
            "-c",
            "import platform; print(platform.machine())",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert machine.stdout.strip() == "aarch64"
