"""The README's first-run commands, verbatim, against a running single-node cluster."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from .cluster import BACEDGE, Cluster

ROOT = Path(__file__).resolve().parents[2]


def readme_commands(start: str) -> list[list[str]]:
    """The README lines that start with `start`, as argv (their # comments dropped)."""
    lines = [
        line for line in (ROOT / "README.md").read_text().splitlines() if line.startswith(start)
    ]
    assert lines, f"README has no line starting {start!r}"
    commands = [shlex.split(line, comments=True) for line in lines]
    assert all(argv[0] == "bacedge" for argv in commands)
    return [argv[1:] for argv in commands]


def readme_command(start: str) -> list[str]:
    """The one README line that starts with `start`."""
    (argv,) = readme_commands(start)
    return argv


def run(cluster: Cluster, argv: list[str]) -> subprocess.CompletedProcess[str]:
    """As a user types it, from a clone of the repository."""
    return subprocess.run(
        [*BACEDGE, *argv], cwd=ROOT, env=cluster.env(), capture_output=True, text=True, timeout=120
    )


def test_readme_wasm_and_job_spec_examples_run(cluster: Cluster) -> None:
    cluster.orchestrator(True, "--engines", "wasm,noop")
    cluster.wait_nodes(1)
    hello = run(cluster, readme_command("bacedge wasm run examples/hello.wasm"))
    assert hello.returncode == 0, hello.stderr
    assert hello.stdout == "Hello from WebAssembly on bacedge!\narg1\narg2\n"
    everywhere = run(cluster, readme_command("bacedge wasm run --target all"))
    assert everywhere.returncode == 0, everywhere.stderr
    assert everywhere.stdout == "Hello from WebAssembly on bacedge!\n"
    spec = run(cluster, readme_command("bacedge job run examples/job.yaml"))
    assert spec.returncode == 0, spec.stderr
    assert spec.stdout.startswith("Hello from WebAssembly on bacedge!\nfrom\na\njob\nspec\n")


@pytest.fixture
def root() -> Iterator[Path]:
    """A cluster dir the Podman service user can traverse (pytest's tmp dirs are 0700)."""
    path = Path(tempfile.mkdtemp(prefix="bacedge-readme-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_readme_docker_example_runs_with_the_busybox_image(root: Path, socket: str) -> None:
    cluster = Cluster(root)
    try:
        cluster.orchestrator(True, "--podman-socket", socket)
        cluster.wait_nodes(1)
        for argv in readme_commands("bacedge docker run localhost/busybox:latest"):
            done = run(cluster, argv)
            assert done.returncode == 0, done.stderr
            assert done.stdout == "hi\n"
    finally:
        cluster.close()
