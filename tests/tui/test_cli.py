"""`--profile` on every client command, `bacedge tui` options, `bacedge devstack`, and the
job commands against a Bacalhau older than 1.6."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from edge.cli.main import cli
from tests.integration.cluster import BACEDGE, Cluster, free_port, wait_until

from .conftest import noop_job
from .fake_api import BACALHAU_JOB_ID


@pytest.fixture
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A config file in the default place (root or not), with no BACEDGE_* around."""
    path = tmp_path / "config.toml"
    monkeypatch.setattr("edge.config.default_config_path", lambda: path)
    for name in ("BACEDGE_API", "BACEDGE_API_KEY", "BACEDGE_CLIENT_PROFILE", "BACEDGE_CLIENT_API"):
        monkeypatch.delenv(name, raising=False)
    return path


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.output


def test_profile_selects_the_cluster_for_any_command(cluster: Cluster, config_file: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    config_file.write_text(
        f'[profiles.site-a]\napi = "{cluster.api}"\n\n[profiles.site-b]\napi = "{dead}"\n'
    )
    code, out = run("node", "list", "--profile", "site-a", "--output", "json")
    assert code == 0 and '"CONNECTED"' in out

    code, out = run("node", "list", "--profile", "site-b")
    assert code == 1 and dead in out, "the profile's address is the one used"

    code, out = run("node", "list", "--profile", "site-b", "--api", cluster.api)
    assert code == 0, "a flag given on the command line still wins over the profile"

    code, out = run("job", "list", "--profile", "nope")
    assert code == 1 and "unknown profile 'nope'" in out and "site-a, site-b" in out


def test_client_section_picks_the_default_profile(cluster: Cluster, config_file: Path) -> None:
    config_file.write_text(
        f'[client]\nprofile = "home"\n\n[profiles.home]\napi = "{cluster.api}"\n'
    )
    code, out = run("agent", "alive")
    assert code == 0, out


def test_environment_api_beats_the_file(cluster: Cluster, config_file: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    config_file.write_text(f'[client]\napi = "{dead}"\n')
    code, out = run("agent", "alive")
    assert code == 1 and dead in out, "[client] api is used when nothing else says"
    result = CliRunner().invoke(cli, ["agent", "alive"], env={"BACEDGE_API": cluster.api})
    assert result.exit_code == 0, result.output


def test_tui_refuses_a_bad_config_and_an_unknown_profile(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[tui]\nrefresh_interval = -1\n")
    code, out = run("tui", "--config", str(bad))
    assert code == 1 and "tui.refresh_interval" in out
    good = tmp_path / "good.toml"
    good.write_text('[profiles.lab]\napi = "http://127.0.0.1:9"\n')
    code, out = run("tui", "--config", str(good), "--profile", "other")
    assert code == 1 and "unknown profile 'other'" in out and "lab" in out


def test_devstack_runs_n_compute_nodes_in_one_process(tmp_path: Path) -> None:
    api_port, nats_port = free_port(), free_port()
    api = f"http://127.0.0.1:{api_port}"
    log = (tmp_path / "devstack.log").open("wb")
    proc = subprocess.Popen(
        [
            *BACEDGE,
            "devstack",
            "--computes",
            "5",
            "--api-port",
            str(api_port),
            "--nats-port",
            str(nats_port),
            "--heartbeat-interval",
            "1",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:

        def connected() -> list[dict[str, object]]:
            nodes = httpx.get(f"{api}/api/v1/orchestrator/nodes", timeout=2).json()["Nodes"]
            up = [n for n in nodes if n["ConnectionState"]["Status"] == "CONNECTED"]
            return up if len(up) == 5 else []

        nodes = wait_until(connected, 60, "5 devstack nodes")
        names = sorted(n["Info"]["Labels"]["name"] for n in nodes)  # type: ignore[index]
        assert names == [f"devstack-{i:03d}" for i in range(5)]
        body = httpx.put(f"{api}/api/v1/orchestrator/jobs", json={"Job": noop_job("ds")}, timeout=5)
        job_id = body.json()["JobID"]

        def finished() -> bool:
            job = httpx.get(f"{api}/api/v1/orchestrator/jobs/{job_id}", timeout=2).json()
            return bool(job["Job"]["State"]["StateType"] == "Completed")

        wait_until(finished, 30, "the noop job")
        output = (tmp_path / "devstack.log").read_text()
        assert "5 compute node(s)" in output and api in output
        root = output.split("data in ", 1)[1].split()[0]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    assert not Path(root).exists(), "the temporary data dir is removed on exit"


async def test_job_commands_read_an_old_bacalhau_by_its_version(
    bacalhau_151: str, tmp_path: Path
) -> None:
    """Bacalhau v1.5.1 numbers execution states without Running and Publishing (its 7 is
    Completed, today's Publishing): the CLI asks the server's version and shows what it
    meant, and `job get` finds the completed execution."""
    meant = ["Completed", "Failed", "BidRejected", "Cancelled", "BidAccepted"]
    api = ("--api", bacalhau_151)
    code, out = await asyncio.to_thread(run, "job", "executions", BACALHAU_JOB_ID, *api)
    assert code == 0, out
    assert [line.split()[5] for line in out.splitlines()[1:]] == meant
    code, out = await asyncio.to_thread(run, "job", "history", BACALHAU_JOB_ID, *api)
    assert code == 0, out
    assert [line.split("→ ")[1].split()[0] for line in out.splitlines()[1:]] == meant
    code, out = await asyncio.to_thread(run, "job", "describe", BACALHAU_JOB_ID, *api)
    assert code == 0, out
    summary = out.split("Summary\n")[1].split("\n\n")[0].splitlines()
    assert sorted(line.split("=")[0].strip() for line in summary) == sorted(meant)
    assert "Publishing" not in out
    target = tmp_path / "results"
    code, out = await asyncio.to_thread(
        run, "job", "get", BACALHAU_JOB_ID, "--output-dir", str(target), *api
    )
    assert code == 0, out
    assert (target / "stdout").read_text() == "hi\n"
