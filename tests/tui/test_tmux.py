"""`bacedge tui` in a real terminal (tmux) against a real single-node cluster."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.cluster import Cluster

from .conftest import noop_job, unique

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


class Tmux:
    """One tmux server of our own (-L), so a test never touches anyone else's sessions."""

    def __init__(self) -> None:
        self.socket = f"bacedge-test-{uuid.uuid4().hex[:8]}"

    def run(self, *args: str) -> str:
        result = subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=10
        )
        return result.stdout

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", "tui")

    def key(self, key: str) -> None:
        self.run("send-keys", "-t", "tui", key)

    def wait_for(self, *texts: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if all(t in screen for t in texts):
                return screen
            time.sleep(0.1)
        raise AssertionError(f"{texts} not on the screen after {timeout}s:\n{screen}")

    def close(self) -> None:
        self.run("kill-server")


@pytest.fixture
def tmux() -> Iterator[Tmux]:
    t = Tmux()
    yield t
    t.close()


def test_bacedge_tui_in_a_real_terminal(own_cluster: Cluster, tmux: Tmux, tmp_path: Path) -> None:
    c = own_cluster
    c.orchestrator(True)
    c.wait_nodes(1)
    name = unique("tmux")
    job_id = c.submit(noop_job(name))
    c.wait_state(job_id, "Completed")
    status = tmp_path / "exit-status"
    env = " ".join(
        f"{k}={shlex.quote(v)}"
        for k, v in {
            "TEXTUAL_ANIMATIONS": "none",
            "TERM": "xterm-256color",
            "HOME": str(tmp_path),
        }.items()
    )
    tui = f"{shlex.quote(sys.executable)} -m edge.cli.main tui --api {c.api} --refresh 0.5"
    command = f"env {env} {tui}; echo $? > {shlex.quote(str(status))}"
    tmux.run("new-session", "-d", "-s", "tui", "-x", "120", "-y", "35", command)
    tmux.run("set-option", "-s", "escape-time", "0")  # Escape is Escape, not a meta prefix

    screen = tmux.wait_for("Overview", "nodes 1/1", "live")
    assert f"127.0.0.1:{c.api_port}" in screen, "the header names the cluster"
    tmux.key("2")
    screen = tmux.wait_for("▸ Jobs", name, "Completed")
    assert "1 jobs" in screen
    tmux.key("5")
    tmux.wait_for("▸ Nodes", "CONNECTED", "APPROVED")
    tmux.key("?")
    tmux.wait_for("Keys", "Refresh", "everywhere")
    tmux.key("Escape")
    screen = tmux.wait_for("▸ Nodes", "CONNECTED")
    assert "everywhere" not in screen
    tmux.key("2")
    tmux.wait_for("▸ Jobs", name)
    tmux.key("Enter")
    tmux.wait_for("Summary", "Spec", "History", job_id)
    tmux.key("q")
    deadline = time.monotonic() + 20
    while not status.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert status.exists(), f"the TUI did not quit:\n{tmux.screen()}"
    assert status.read_text().strip() == "0", "it quit cleanly"
