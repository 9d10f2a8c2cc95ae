"""The user's story on the command line: real CLI processes, a real cluster, real wasm."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.wasm_build import build_wasm

from .cluster import BACEDGE, Cluster, wait_until


@pytest.fixture
def single(cluster: Cluster, tmp_path: Path) -> Iterator[Cluster]:
    data = tmp_path / "data"
    data.mkdir()
    (data / "input.txt").write_text("edge data\n")
    cluster.orchestrator(True, "--allowed-local-paths", str(data))
    cluster.wait_nodes(1)
    yield cluster


def test_wasm_run_prints_stdout_and_exits_with_the_task_code(single: Cluster) -> None:
    result = single.cli("wasm", "run", str(build_wasm("hello")), "--", "arg1", "arg2")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:2] == ["arg1", "arg2"]
    assert any(line.startswith("BACALHAU_PARTITION_INDEX=0") for line in lines)
    failed = single.cli("wasm", "run", str(build_wasm("exit3")))
    assert failed.returncode == 3
    assert "exited with code 3" in failed.stderr


def test_wasm_job_with_local_input_and_results(single: Cluster, tmp_path: Path) -> None:
    data = tmp_path / "data"
    result = single.cli(
        "wasm",
        "run",
        "--id-only",
        "--no-wait",
        "-i",
        f"{data},dst=/inputs",
        "-o",
        "outputs:/outputs",
        str(build_wasm("io")),
        "--",
        "/inputs/input.txt",
        "/outputs/copy.txt",
    )
    assert result.returncode == 0, result.stderr
    job_id = result.stdout.strip()
    assert job_id.startswith("j-")
    body = single.wait_state(job_id, "Completed", "Failed")
    execution = body["Executions"]["Items"][0]
    assert body["Job"]["State"]["StateType"] == "Completed", execution
    published = execution["PublishedResult"]
    # Bacalhau's local publisher shape: the node serves <execution>.tar.gz over HTTP.
    assert published["Type"] == "urlDownload"
    assert published["Params"]["URL"].endswith(f"/{execution['ID']}.tar.gz")
    # The node's results server started with its first archive and serves it directly.
    direct = httpx.get(published["Params"]["URL"], timeout=30)
    assert direct.status_code == 200 and direct.content[:2] == b"\x1f\x8b", direct.status_code
    assert execution["RunOutput"]["Stdout"] == "edge data\n"
    results = single.cli("job", "describe", job_id, check=True).stdout
    assert "edge data" in results
    # `job get` fetches it through the orchestrator, in Bacalhau's layout.
    out = tmp_path / "results"
    got = single.cli("job", "get", job_id, "--output-dir", str(out))
    assert got.returncode == 0, got.stderr
    assert (out / "outputs" / "copy.txt").read_text() == "edge data\n"
    assert (out / "stdout").read_text() == "edge data\n"
    assert (out / "exitCode").read_text().strip() == "0"
    again = single.cli("job", "get", job_id, "--output-dir", str(out))
    assert again.returncode == 1 and "--force" in again.stderr
    assert single.cli("job", "get", job_id, "--output-dir", str(out), "--force").returncode == 0


def test_local_path_outside_the_allow_list_is_refused(single: Cluster) -> None:
    result = single.cli("wasm", "run", "-i", "/etc,dst=/inputs", str(build_wasm("hello")))
    assert result.returncode != 0
    assert "not allowed" in result.stderr and "allowed_local_paths" in result.stderr


def test_invalid_wasm_fails_with_a_clear_message(single: Cluster, tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.wasm"
    bogus.write_bytes(b"definitely not wasm")
    result = single.cli("wasm", "run", str(bogus))
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "wasm" in result.stderr.lower()


def test_timeout_fails_the_job(single: Cluster) -> None:
    result = single.cli("wasm", "run", "--timeout", "1", str(build_wasm("loop")))
    assert result.returncode != 0
    assert "timed out" in result.stderr


def test_job_run_yaml_list_describe_history_and_validate(single: Cluster, tmp_path: Path) -> None:
    module = build_wasm("hello")
    spec = {
        "name": "yaml-job",
        "type": "batch",
        "count": 2,
        "tasks": [
            {
                "name": "main",
                "engine": {
                    "type": "wasm",
                    "params": {"EntryModule": "main.wasm", "Parameters": ["from-yaml"]},
                },
                "inputSources": [
                    {
                        "source": {"type": "localDirectory", "params": {"SourcePath": str(module)}},
                        "target": "/main.wasm",
                    }
                ],
            }
        ],
    }
    file = tmp_path / "job.yaml"
    file.write_text(yaml.safe_dump(spec))
    bad = single.cli("job", "validate", str(file))
    assert bad.returncode == 0, bad.stdout + bad.stderr

    run = single.cli("job", "run", str(file))
    assert run.returncode != 0  # the module's directory is not allow-listed
    allowed_root = module.parent
    single.close()
    single.procs.clear()
    single.orchestrator(True, "--allowed-local-paths", str(allowed_root))
    single.wait_nodes(1)
    run = single.cli("job", "run", str(file))
    assert run.returncode == 0, run.stderr
    assert run.stdout.count("from-yaml") == 2  # both partitions' output

    listed = json.loads(single.cli("job", "list", "--output", "json", check=True).stdout)
    job = next(j for j in listed if j["Name"] == "yaml-job")
    assert job["State"]["StateType"] == "Completed"
    table = single.cli("job", "list", check=True).stdout
    assert "yaml-job" in table and "Completed" in table
    describe = single.cli("job", "describe", "yaml-job", check=True).stdout
    assert job["ID"] in describe and "from-yaml" in describe
    executions = single.cli("job", "executions", "yaml-job", "--output", "yaml", check=True)
    latest = [e for e in yaml.safe_load(executions.stdout) if e["JobVersion"] == 2]
    assert len(latest) == 2 and {e["ComputeState"]["StateType"] for e in latest} == {9}
    history = single.cli("job", "history", job["ID"][:10], check=True).stdout
    assert "Job submitted" in history
    logs = single.cli("job", "logs", "yaml-job", check=True).stdout
    assert "from-yaml" in logs


def test_job_logs_follow_streams_while_running(single: Cluster, tmp_path: Path) -> None:
    spec = {
        "Name": "slow",
        "Tasks": [
            {"Engine": {"Type": "noop", "Params": {"Stdout": "first line\n", "SleepSeconds": 2}}}
        ],
    }
    file = tmp_path / "slow.json"
    file.write_text(json.dumps(spec))
    job_id = single.cli(
        "job", "run", "--id-only", "--wait=false", str(file), check=True
    ).stdout.strip()
    wait_until(lambda: single.job(job_id)["Job"]["State"]["StateType"] == "Running", 30, "running")
    started = time.monotonic()
    follow = subprocess.run(
        [*BACEDGE, "job", "logs", "-f", job_id],
        capture_output=True,
        text=True,
        env=single.env(),
        timeout=60,
    )
    assert follow.returncode == 0, follow.stderr
    assert "first line" in follow.stdout
    assert time.monotonic() - started > 0.5  # it followed until the task ended
    assert single.job(job_id)["Job"]["State"]["StateType"] == "Completed"


def test_stop_node_and_agent_commands(single: Cluster, tmp_path: Path) -> None:
    file = tmp_path / "sleep.yaml"
    file.write_text(
        "Name: sleeper\nTasks:\n  - Engine:\n      Type: noop\n      Params:\n"
        "        SleepSeconds: 600\n"
    )
    job_id = single.cli(
        "job", "run", "--id-only", "--no-wait", str(file), check=True
    ).stdout.strip()
    wait_until(lambda: single.job(job_id)["Job"]["State"]["StateType"] == "Running", 30, "running")
    stopped = single.cli("job", "stop", job_id, check=True)
    assert job_id[:10] in stopped.stdout + stopped.stderr
    assert single.job(job_id)["Job"]["State"]["StateType"] == "Stopped"
    nodes = single.cli("node", "list", check=True).stdout
    assert "CONNECTED" in nodes and "APPROVED" in nodes
    node_id = single.nodes()[0]["Info"]["NodeID"]
    assert node_id in single.cli("node", "describe", node_id[:10], check=True).stdout
    assert "OK" in single.cli("agent", "alive", check=True).stdout
    assert "bacedge" in single.cli("agent", "version", check=True).stdout


def test_errors_are_one_line_without_traceback(single: Cluster, tmp_path: Path) -> None:
    missing = single.cli("job", "describe", "j-nope")
    assert missing.returncode == 1
    assert missing.stderr.strip().startswith("Error: job 'j-nope' not found")
    broken = tmp_path / "broken.yaml"
    broken.write_text("Name: [oops\n")
    for args in (["job", "run", str(broken)], ["job", "validate", str(broken)]):
        result = single.cli(*args)
        assert result.returncode != 0 and "Traceback" not in result.stderr
        assert "invalid YAML at line" in result.stderr
    bad_engine = tmp_path / "bad.yaml"
    bad_engine.write_text("Name: x\nTasks:\n  - Engine:\n      Type: kvm\n")
    result = single.cli("job", "run", str(bad_engine))
    assert result.returncode != 0 and "Tasks[0].Engine.Type: unknown engine 'kvm'" in result.stderr
    validate = single.cli("job", "validate", str(bad_engine))
    assert validate.returncode != 0 and "Tasks[0].Engine.Type" in validate.stdout + validate.stderr
    single.close()
    down = single.cli("job", "list")
    assert down.returncode == 1 and "Traceback" not in down.stderr
    assert "cannot reach the orchestrator" in down.stderr


def test_a_task_flooding_its_output_keeps_a_capped_log(cluster: Cluster) -> None:
    """flood.wasm writes 1 MiB to stdout and 1 MiB to stderr without a newline: `job logs`
    gets what fits in max_log_bytes, in pieces, and says where it was cut; the job ends."""
    cluster.orchestrator(True, BACEDGE_COMPUTE_MAX_LOG_BYTES="200000")
    cluster.wait_nodes(1)
    job_id = cluster.cli(
        "wasm", "run", "--id-only", "--no-wait", str(build_wasm("flood")), check=True
    ).stdout.strip()
    assert cluster.wait_state(job_id, "Completed", "Failed")["Job"]["State"]["StateType"] == (
        "Completed"
    )
    logs = cluster.cli("job", "logs", job_id, check=True)
    kept = logs.stdout.replace("\n", "")
    assert 100_000 < len(kept) <= 200_000 and set(kept) == {"x"}
    assert max(len(line) for line in logs.stdout.splitlines()) == 64 * 1024
    assert "log cut after" in logs.stdout + logs.stderr
