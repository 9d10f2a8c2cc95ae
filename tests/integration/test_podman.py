"""Docker jobs through the whole stack: real CLI, orchestrator, compute node and rootless
Podman (the `bacedge-test` user that scripts/test.sh sets up), with a busybox image built
offline from Debian's busybox-static."""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from podman import PodmanClient

from edge.executors.podman import LABEL_EXECUTION, LABEL_NODE
from tests.podman_image import TAG, build_busybox_archive

from .cluster import BACEDGE, Cluster, free_port, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def root(request: pytest.FixtureRequest) -> Iterator[Path]:
    """A cluster dir the Podman service user can traverse (pytest's tmp dirs are 0700)."""
    path = Path(tempfile.mkdtemp(prefix="bacedge-podman-"))
    path.chmod(0o755)
    data = path / "data"
    data.mkdir()
    (data / "input.txt").write_text("edge data\n")
    (path / "ctl").mkdir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _start(root: Path, socket: str, heartbeat: float = 1.0, *extra: str) -> Cluster:
    cluster = Cluster(root, heartbeat=heartbeat)
    cluster.orchestrator(
        True,
        "--engines",
        "docker,noop",
        "--podman-socket",
        socket,
        "--allowed-local-paths",
        f"{root / 'data'},{root / 'ctl'}",
        *extra,
    )
    cluster.wait_nodes(1)
    return cluster


@pytest.fixture
def single(root: Path, socket: str, request: pytest.FixtureRequest) -> Iterator[Cluster]:
    cluster = _start(root, socket)
    yield cluster
    cluster.close()
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        print(cluster.logs())


def _containers(podman: PodmanClient, **labels: str) -> list[dict[str, Any]]:
    """Containers with these labels, as Podman lists them (`State` is a word here)."""
    filters = json.dumps({"label": [f"{k}={v}" for k, v in labels.items()]})
    response = podman.api.get("/containers/json", params={"all": True, "filters": filters})
    response.raise_for_status()
    return list(response.json() or [])


def _execution(cluster: Cluster, job_id: str) -> dict[str, Any]:
    executions = cluster.executions(job_id)
    assert executions, f"job {job_id} has no execution"
    return dict(executions[-1])


def _submit_docker(cluster: Cluster, *args: str) -> str:
    result = cluster.cli("docker", "run", "--id-only", "--no-wait", *args)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_outputs_env_limits_and_cleanup(single: Cluster, podman: PodmanClient) -> None:
    result = single.cli(
        "docker",
        "run",
        "-o",
        "out:/outputs",
        "-e",
        "GREETING=hello",
        "--cpu",
        "500m",
        "--memory",
        "64Mb",
        TAG,
        "--",
        "sh",
        "-c",
        'echo "$GREETING $BACALHAU_PARTITION_INDEX"; echo result > /outputs/r.txt; '
        "touch /rootfs-write 2>/dev/null || echo root-read-only; touch /tmp/ok && echo tmp-ok",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["hello 0", "root-read-only", "tmp-ok"]

    jobs = json.loads(single.cli("job", "list", "--output", "json", check=True).stdout)
    job_id = jobs[0]["ID"]
    execution = _execution(single, job_id)
    assert execution["ComputeState"]["StateType"] == 9
    assert execution["PublishedResult"]["Type"] == "urlDownload"
    out = single.root / "got"
    single.cli("job", "get", job_id, "--output-dir", str(out), check=True)
    assert (out / "out" / "r.txt").read_text() == "result\n"
    assert (out / "stdout").read_text().splitlines()[0] == "hello 0"

    details = execution["ComputeState"]["Details"]
    assert details["Image"] == TAG
    node = single.nodes()[0]["Info"]["ComputeNodeInfo"]["Inventory"]
    assert TAG in node["Images"]
    assert set(node["Limits"]) == {"docker.cpu", "docker.memory", "docker.pids"}
    if node["Limits"]["docker.cpu"] == "enforced":
        assert "enforced: 0.5 CPU" in details["Limits"]
    else:  # rootless on cgroups v1: the history says the limits did not hold
        assert node["Limits"]["docker.cpu"].startswith("not enforced")
        assert "not enforced on this node" in details["Limits"]
        assert "0.5 CPU" in details["Limits"]
    history = single.cli("job", "history", job_id, "--output", "json", check=True).stdout
    assert any(
        "not enforced" in h["Event"]["Details"].get("Limits", "")
        or "enforced" in h["Event"]["Details"].get("Limits", "")
        for h in json.loads(history)
    )
    wait_until(
        lambda: not _containers(podman, **{LABEL_EXECUTION: execution["ID"]}),
        30,
        "the container to be removed",
    )


def test_job_spec_with_bacalhau_params_and_podman_alias(single: Cluster, root: Path) -> None:
    spec = {
        "Name": "bacalhau-params",
        "Type": "batch",
        "Tasks": [
            {
                "Name": "main",
                "Engine": {
                    "Type": "Podman",
                    "Params": {
                        "Image": "busybox",  # a short name finds localhost/busybox
                        "Entrypoint": ["/bin/sh", "-c"],
                        "Parameters": ['echo "$A $B $C"; pwd; cat /data/input.txt'],
                        "EnvironmentVariables": ["A=from-params"],
                        "WorkingDirectory": "/tmp",
                    },
                },
                "Env": {"B": "from-task-env"},
                "InputSources": [
                    {
                        "Source": {
                            "Type": "localDirectory",
                            "Params": {"SourcePath": str(root / "data")},
                        },
                        "Target": "/data",
                    }
                ],
            }
        ],
    }
    file = root / "job.yaml"
    file.write_text(yaml.safe_dump(spec))
    result = single.cli("job", "run", str(file))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[:3] == ["from-params from-task-env ", "/tmp", "edge data"]


def test_inputs_are_read_only(single: Cluster, root: Path) -> None:
    result = single.cli(
        "docker",
        "run",
        "-i",
        f"file://{root / 'data'},dst=/inputs",
        TAG,
        "--",
        "sh",
        "-c",
        "cat /inputs/input.txt; echo x > /inputs/new.txt",
    )
    assert result.returncode == 1
    assert "edge data" in result.stdout
    assert "Read-only file system" in result.stderr
    assert not (root / "data" / "new.txt").exists()


def test_nonzero_exit_fails_the_job_with_the_code(single: Cluster) -> None:
    result = single.cli("docker", "run", TAG, "--", "sh", "-c", "echo bad >&2; exit 7")
    assert result.returncode == 7
    assert "bad" in result.stderr and "exited with code 7" in result.stderr
    assert "Traceback" not in result.stderr
    jobs = json.loads(single.cli("job", "list", "--output", "json", check=True).stdout)
    assert jobs[0]["State"]["StateType"] == "Failed"
    assert _execution(single, jobs[0]["ID"])["RunOutput"]["ExitCode"] == 7


def test_timeout_fails_the_job(single: Cluster, podman: PodmanClient) -> None:
    # The task ends on SIGTERM, so the test does not wait out the kill grace period.
    result = single.cli(
        "podman",
        "run",
        "--timeout",
        "1",
        TAG,
        "--",
        "sh",
        "-c",
        "trap 'exit 143' TERM; echo started; sleep 600 & wait",
    )
    assert result.returncode != 0
    assert "timed out after 1s" in result.stderr
    assert "started" in result.stdout
    jobs = json.loads(single.cli("job", "list", "--output", "json", check=True).stdout)
    execution = _execution(single, jobs[0]["ID"])
    assert execution["ComputeState"]["StateType"] == 10
    wait_until(
        lambda: not _containers(podman, **{LABEL_EXECUTION: execution["ID"]}),
        30,
        "the container to be removed",
    )


def test_stop_a_running_sleep_job(single: Cluster, podman: PodmanClient) -> None:
    job_id = _submit_docker(single, TAG, "--", "sleep", "600")
    wait_until(lambda: single.job(job_id)["Job"]["State"]["StateType"] == "Running", 30, "run")
    execution_id = _execution(single, job_id)["ID"]
    wait_until(
        lambda: [
            c
            for c in _containers(podman, **{LABEL_EXECUTION: execution_id})
            if c["State"] == "running"
        ],
        30,
        "the container to run",
    )
    single.cli("job", "stop", job_id, check=True)
    assert single.job(job_id)["Job"]["State"]["StateType"] == "Stopped"
    # `sleep` as PID 1 ignores SIGTERM: it is killed after the grace period, then removed.
    wait_until(
        lambda: not _containers(podman, **{LABEL_EXECUTION: execution_id}),
        60,
        "the stopped container to be removed",
    )
    wait_until(
        lambda: _execution(single, job_id)["ComputeState"]["StateType"] == 11,
        30,
        "the execution to be cancelled",
    )


def test_network_is_none_by_default_and_host_is_refused(single: Cluster) -> None:
    result = single.cli(
        "docker", "run", TAG, "--", "sh", "-c", "cat /proc/net/dev; echo ---; ip -o link"
    )
    assert result.returncode == 0, result.stderr
    proc, links = result.stdout.split("---\n")
    interfaces = {line.split(":")[0].strip() for line in proc.splitlines()[2:] if ":" in line}
    assert interfaces == {"lo"}
    assert [line.split(":")[1].strip() for line in links.splitlines()] == ["lo"]

    refused = single.cli("docker", "run", "--network", "host", TAG, "--", "true")
    assert refused.returncode != 0
    assert "network type 'Host' is not allowed" in refused.stderr
    assert "allow_networking" in refused.stderr


def test_missing_image_is_refused_with_the_fix(single: Cluster) -> None:
    result = single.cli("docker", "run", "localhost/not-here:1.0", "--", "true")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "image localhost/not-here:1.0 is not on this node" in result.stderr
    assert "bacedge image load" in result.stderr


def test_logs_follow_streams_while_the_container_runs(single: Cluster, root: Path) -> None:
    go = root / "ctl" / "go"
    job_id = _submit_docker(
        single,
        "-i",
        f"{root / 'ctl'},dst=/ctl",
        TAG,
        "--",
        "sh",
        "-c",
        "echo first; while [ ! -e /ctl/go ]; do sleep 0.1; done; echo second",
    )
    wait_until(lambda: single.job(job_id)["Job"]["State"]["StateType"] == "Running", 30, "run")
    follow = subprocess.Popen(
        [*BACEDGE, "job", "logs", "-f", job_id],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=single.env(),
    )
    lines: queue.Queue[str] = queue.Queue()
    assert follow.stdout is not None
    threading.Thread(
        target=lambda: [lines.put(x) for x in follow.stdout or []], daemon=True
    ).start()
    try:
        assert lines.get(timeout=60) == "first\n"
        # The task is still waiting for us: the line came live, not from a finished log.
        assert single.job(job_id)["Job"]["State"]["StateType"] == "Running"
        go.touch()
        assert lines.get(timeout=60) == "second\n"
        assert follow.wait(timeout=60) == 0
    finally:
        if follow.poll() is None:
            follow.kill()
    single.wait_state(job_id, "Completed")


def test_image_load_is_idempotent_and_listed(socket: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACEDGE_")}
    env["HOME"] = str(tmp_path)
    archive = build_busybox_archive()
    again = subprocess.run(
        [*BACEDGE, "image", "load", "--podman-socket", socket, str(archive)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert again.returncode == 0, again.stderr
    assert f"Already loaded: {TAG}" in again.stdout
    listed = subprocess.run(
        [*BACEDGE, "image", "list", "--podman-socket", socket, "--output", "json"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert any(TAG in item["Names"] for item in json.loads(listed.stdout))
    missing = subprocess.run(
        [*BACEDGE, "image", "list", "--podman-socket", str(tmp_path / "none.sock")],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert missing.returncode == 1 and "Traceback" not in missing.stderr
    assert "not found: run `bacedge setup podman --user NAME` as root" in missing.stderr


def test_missing_socket_refuses_docker_jobs_with_the_fix(root: Path, socket: str) -> None:
    """A node whose Podman is not up (yet) still runs other engines; docker jobs are refused
    with the fix, and work once the socket appears."""
    link = root / "podman.sock"
    cluster = Cluster(root)
    cluster.orchestrator(True, "--engines", "docker,noop", "--podman-socket", str(link))
    try:
        cluster.wait_nodes(1)
        refused = cluster.cli("docker", "run", TAG, "--", "true")
        assert refused.returncode != 0 and "Traceback" not in refused.stderr
        assert f"Podman socket {link} not found" in refused.stderr
        assert "run `bacedge setup podman --user NAME` as root" in refused.stderr
        noop = cluster.submit({"Tasks": [{"Engine": {"Type": "noop"}}]})
        cluster.wait_state(noop, "Completed")
        link.symlink_to(socket)
        late = cluster.cli("docker", "run", TAG, "--", "echo", "up")
        assert late.returncode == 0, late.stderr
        assert late.stdout == "up\n"
    finally:
        cluster.close()


def _restart_cluster(root: Path, socket: str) -> tuple[Cluster, list[str]]:
    """An orchestrator and a separate compute node, with heartbeats slow enough that the
    orchestrator does not give up on the node while the test restarts it."""
    cluster = Cluster(root, heartbeat=15.0)
    cluster.orchestrator(False)
    args = [
        "--engines",
        "docker",
        "--podman-socket",
        socket,
        "--allowed-local-paths",
        str(root / "ctl"),
    ]
    cluster.compute("c1", *args)
    cluster.wait_nodes(1)
    return cluster, args


def _kill_node_mid_task(
    cluster: Cluster, root: Path, podman: PodmanClient, script: str
) -> tuple[str, str]:
    """Runs `script` (which waits for /ctl/go) as a docker job, then SIGKILLs the node while
    its container runs, leaving the container behind. Returns the job and execution IDs."""
    job_id = _submit_docker(
        cluster, "-i", f"{root / 'ctl'},dst=/ctl", TAG, "--", "sh", "-c", script
    )
    wait_until(lambda: _execution(cluster, job_id)["ComputeState"]["StateType"] == 6, 30, "run")
    execution_id = _execution(cluster, job_id)["ID"]
    # Running, not just created: a node killed between creating and starting the container
    # leaves one that never runs (CI hit that window once, under load).
    wait_until(
        lambda: any(
            c["State"] == "running" for c in _containers(podman, **{LABEL_EXECUTION: execution_id})
        ),
        30,
        "the container to run",
    )
    cluster.procs[-1].kill()
    return job_id, execution_id


def test_restart_removes_a_running_container_and_reruns_it(
    root: Path, socket: str, podman: PodmanClient
) -> None:
    """A node killed mid-task cannot supervise the container it left, so it removes it and
    marks the execution lost: the job runs again, on the same node when it is the only one."""
    cluster, args = _restart_cluster(root, socket)
    try:
        node_id = cluster.nodes()[0]["Info"]["NodeID"]
        job_id, execution_id = _kill_node_mid_task(
            cluster, root, podman, "while [ ! -e /ctl/go ]; do sleep 0.1; done; echo finished"
        )
        left = _containers(podman, **{LABEL_EXECUTION: execution_id})
        assert [c["Labels"][LABEL_NODE] for c in left] == [node_id]

        cluster.compute("c1", *args)
        wait_until(
            lambda: not _containers(podman, **{LABEL_EXECUTION: execution_id}),
            60,
            "the restarted node to remove the container",
        )

        def lost() -> dict[str, Any] | None:
            executions = {e["ID"]: e for e in cluster.executions(job_id)}
            first = executions[execution_id]
            return first if first["ComputeState"]["StateType"] == 10 else None

        execution = wait_until(lost, 60, "the execution to fail")
        assert "restarted while the task was running" in execution["ComputeState"]["Message"]
        assert "Lost" in execution["ComputeState"]["Details"]
        (root / "ctl" / "go").touch()
        body = cluster.wait_state(job_id, "Completed", "Failed")
        assert body["Job"]["State"]["StateType"] == "Completed", body
        executions = cluster.executions(job_id)
        assert len(executions) == 2 and {e["NodeID"] for e in executions} == {node_id}
        rerun = next(e for e in executions if e["ID"] != execution_id)
        assert rerun["RunOutput"]["Stdout"] == "finished\n"
    except BaseException:
        print(cluster.logs())
        raise
    finally:
        cluster.close()


def test_restart_reports_a_task_that_finished_meanwhile(
    root: Path, socket: str, podman: PodmanClient
) -> None:
    cluster, args = _restart_cluster(root, socket)
    try:
        job_id, execution_id = _kill_node_mid_task(
            cluster,
            root,
            podman,
            "echo started; while [ ! -e /ctl/go ]; do sleep 0.1; done; echo finished",
        )
        (root / "ctl" / "go").touch()
        wait_until(
            lambda: all(
                c["State"] == "exited"
                for c in _containers(podman, **{LABEL_EXECUTION: execution_id})
            ),
            30,
            "the task to finish while the node is down",
        )
        cluster.compute("c1", *args)
        body = cluster.wait_state(job_id, "Completed", "Failed")
        assert body["Job"]["State"]["StateType"] == "Completed", body
        execution = _execution(cluster, job_id)
        assert execution["RunOutput"]["Stdout"] == "started\nfinished\n"
        assert "Recovered" in execution["ComputeState"]["Details"]
        assert not _containers(podman, **{LABEL_EXECUTION: execution_id})
    except BaseException:
        print(cluster.logs())
        raise
    finally:
        cluster.close()


def test_api_reports_node_images(single: Cluster) -> None:
    node = httpx.get(f"{single.api}/api/v1/agent/node", timeout=5).json()
    assert TAG in node["ComputeNodeInfo"]["Inventory"]["Images"]


def test_limits_hold_where_the_host_enforces_them(single: Cluster) -> None:
    """Runs where rootless Podman can apply limits (cgroups v2 with delegation); on other
    hosts the node says they are not enforced, which the first test checks."""
    limits = single.nodes()[0]["Info"]["ComputeNodeInfo"]["Inventory"]["Limits"]
    if limits.get("docker.memory") != "enforced":
        pytest.skip(f"this host does not enforce container limits: {limits['docker.memory']}")
    result = single.cli(
        "docker",
        "run",
        "--memory",
        "64Mi",
        "--cpu",
        "500m",
        TAG,
        "--",
        "sh",
        "-c",
        "cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/cpu.max /sys/fs/cgroup/pids.max",
    )
    assert result.returncode == 0, result.stderr
    assert "67108864" in result.stdout.split()
    if limits["docker.cpu"] == "enforced":
        assert "50000 100000" in result.stdout
    if limits["docker.pids"] == "enforced":
        assert "1024" in result.stdout.split()
    oom = single.cli(
        "docker",
        "run",
        "--memory",
        "32Mi",
        TAG,
        "--",
        "dd",
        "if=/dev/zero",
        "of=/dev/null",
        "bs=256M",
        "count=1",
    )
    assert oom.returncode != 0
    assert "ran out of memory" in oom.stderr


def test_s3_input_and_s3_publisher_with_a_container(root: Path, socket: str) -> None:
    """Bacalhau's -i/-p syntax with a docker task: data from the device's store, results
    back into it, fetched with `job get`."""
    from minio import Minio

    from .test_s3_data import store_client

    cluster = _start(root, socket, 1.0, "--store", "--store-port", str(free_port()))
    try:
        client: Minio
        client, _ = store_client(cluster.root / "orchestrator")
        client.make_bucket("data")
        client.make_bucket("results")
        payload = b"rows from the store\n"
        import io

        client.put_object("data", "in/rows.txt", io.BytesIO(payload), len(payload))
        job_id = _submit_docker(
            cluster,
            "-i",
            "src=s3://data/in/,dst=/inputs",
            "-o",
            "outputs:/outputs",
            "-p",
            "s3://results/{jobID}/",
            TAG,
            "--",
            "sh",
            "-c",
            "wc -c < /inputs/rows.txt; cp /inputs/rows.txt /outputs/copy.txt",
        )
        body = cluster.wait_state(job_id, "Completed", "Failed", timeout=120)
        execution = _execution(cluster, job_id)
        assert body["Job"]["State"]["StateType"] == "Completed", execution["ComputeState"]
        key = execution["PublishedResult"]["Params"]["Key"]
        assert key == f"{job_id}/{execution['ID']}.tar.gz"
        assert client.stat_object("results", key).size > 0
        out = cluster.root / "got-s3"
        cluster.cli("job", "get", job_id, "--output-dir", str(out), check=True)
        assert (out / "outputs" / "copy.txt").read_bytes() == payload
        assert (out / "stdout").read_text().strip() == str(len(payload))
    finally:
        cluster.close()
