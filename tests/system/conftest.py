from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.wasm_build import build_wasm

from .machine import REPO, Machine, chroot, copy_tree, debootstrap, have_tools, is_root

AARCH64_TESTS = "test_appliance_aarch64.py"
BUILD = ["bash", str(REPO / "images/build.sh")]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/system" in str(item.fspath):
            item.add_marker(pytest.mark.system)
    # The aarch64 image builds under qemu-user in the background while the rest runs
    # (pytest_collection_finish); its tests go last so they wait for it the least.
    late = [item for item in items if AARCH64_TESTS in item.nodeid]
    items[:] = [item for item in items if AARCH64_TESTS not in item.nodeid] + late


class BackgroundBuild:
    """`images/build.sh --arch aarch64 --no-raw`, started when the session has tests that
    need it. Emulated, it takes tens of minutes of one core, mostly while the other tests
    wait on processes and sockets; run last, it would add all of that to the run."""

    def __init__(self) -> None:
        self.out = Path(tempfile.mkdtemp(prefix="bacedge-aarch64-", dir="/var/tmp"))
        self.log = self.out / "build.log"
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [*BUILD, "--arch", "aarch64", "--no-raw", "--out", str(self.out / "dist")],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait(self, timeout: float) -> Path:
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise AssertionError(f"the aarch64 build took over {timeout:.0f}s") from None
        tail = self.log.read_text(errors="replace")[-3000:]
        assert code == 0, f"images/build.sh --arch aarch64 exited {code}:\n{tail}"
        return self.out / "dist"

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.out, ignore_errors=True)


AARCH64_BUILD = pytest.StashKey[BackgroundBuild]()


def pytest_collection_finish(session: pytest.Session) -> None:
    if session.config.option.collectonly or not is_root():
        return
    if os.environ.get("BACEDGE_AARCH64_DIST"):
        return  # checking a build made before (images/build.sh --arch aarch64 --out DIR)
    if any(AARCH64_TESTS in item.nodeid for item in session.items):
        session.config.stash[AARCH64_BUILD] = BackgroundBuild()


def pytest_sessionfinish(session: pytest.Session) -> None:
    build = session.config.stash.get(AARCH64_BUILD, None)
    if build is not None:
        build.remove()


@pytest.fixture(scope="session")
def aarch64_dist(request: pytest.FixtureRequest) -> Path:
    """The aarch64 build's output folder, once the background build is done (or the one
    BACEDGE_AARCH64_DIST names)."""
    if given := os.environ.get("BACEDGE_AARCH64_DIST"):
        return Path(given)
    build = request.config.stash.get(AARCH64_BUILD, None)
    assert build is not None, "the aarch64 build needs root (scripts/install.sh tools too)"
    return build.wait(timeout=3600)


@pytest.fixture(scope="session")
def base_rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One debootstrapped Debian 12 for the session (cached between tests, not runs)."""
    missing = have_tools()
    assert not missing and is_root(), (
        f"system tests need root and {', '.join(missing)} (scripts/install.sh installs them)"
    )
    root = tmp_path_factory.mktemp("rootfs") / "bookworm"
    debootstrap(root)
    return root


@pytest.fixture(scope="session")
def deb_file() -> Path:
    subprocess.run(
        ["bash", str(REPO / "packaging" / "build-deb.sh")], check=True, capture_output=True
    )
    debs = sorted((REPO / "dist").glob("bacedge_*.deb"), key=lambda p: p.stat().st_mtime)
    assert debs, "packaging/build-deb.sh made no .deb"
    return debs[-1]


def install_deb(root: Path, deb: Path) -> subprocess.CompletedProcess[str]:
    shutil.copy(deb, root / "root" / deb.name)
    return chroot(root, "dpkg", "-i", f"/root/{deb.name}", check=False)


@pytest.fixture(scope="module")
def installed(base_rootfs: Path, deb_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("installed") / "root"
    root.mkdir()
    copy_tree(base_rootfs, root)
    result = install_deb(root, deb_file)
    assert result.returncode == 0, result.stdout + result.stderr
    shutil.copy(build_wasm("hello"), root / "root" / "hello.wasm")
    return root


@contextmanager
def boot(root: Path, name: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Machine]:
    """`root` booted under systemd-nspawn; its bacedge journal is kept next to the console log."""
    log = tmp_path_factory.mktemp("boot") / "console.log"
    box = Machine(root, name, log)
    try:
        box.boot()
        yield box
    finally:
        if box.leader:
            journal = box.run(
                "journalctl", "--no-pager", "-n", "200", "-u", "bacedge-*", check=False
            )
            (log.parent / "journal.txt").write_text(journal.stdout)
        box.poweroff()


@pytest.fixture(scope="module")
def machine(installed: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Machine]:
    with boot(installed, "bacedge-test", tmp_path_factory) as box:
        yield box


@dataclass
class Build:
    out: Path
    name: str
    log: str

    def path(self, suffix: str) -> Path:
        return self.out / f"{self.name}{suffix}"


@pytest.fixture(scope="session")
def appliance(tmp_path_factory: pytest.TempPathFactory) -> Build:
    """One x86_64 build per run; images/build.sh caches the base rootfs (keyed by its
    package lists) and the .deb (keyed by the source) in /var/cache/bacedge-images."""
    out = tmp_path_factory.mktemp("appliance")
    done = subprocess.run(
        ["bash", str(REPO / "images/build.sh"), "--arch", "x86_64", "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    manifests = list(out.glob("*.manifest.json"))
    assert len(manifests) == 1, done.stderr[-2000:]
    return Build(out, manifests[0].name.removesuffix(".manifest.json"), done.stderr)
