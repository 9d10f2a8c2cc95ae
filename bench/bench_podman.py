"""Podman benchmark: a busybox `true` docker job through bacedge vs podman-py direct.

Run (as root, or with BACEDGE_TEST_PODMAN_SOCKET set to a rootless Podman socket):
    .venv/bin/python bench/bench_podman.py [--jobs 50]

(a) end to end: API submit -> Completed, one job at a time, orchestrator plus one compute
    node (separate processes) with the docker engine;
(b) direct: podman-py create/start/wait/remove of the same image, in the same run, once
    with podman-py's defaults and once with the wait poll interval bacedge uses;
(c) the compute agent's RSS idle and with 4 containers running.
The target is bacedge p50 <= 1.25x the direct run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from podman import PodmanClient

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))
from common import BenchCluster, describe, percentile, rss_mb  # noqa: E402

from tests.podman_image import TAG, load_busybox, podman_socket  # noqa: E402

JOBS = "/api/v1/orchestrator/jobs"


@contextmanager
def split_cluster(socket: str) -> Iterator[BenchCluster]:
    """An orchestrator and, in its own process (so its RSS is its own), a docker node."""
    with tempfile.TemporaryDirectory(prefix="bacedge-bench-podman-") as tmp:
        root = Path(tmp)
        root.chmod(0o755)  # the Podman service user must reach result dirs under it
        c = BenchCluster(root)
        try:
            c._spawn(
                "serve",
                "--orchestrator",
                "--data-dir",
                str(root / "orch"),
                "--api-port",
                str(c.api_port),
                "--nats-port",
                str(c.nats_port),
                "--engines",
                "noop",
            )
            c.wait(lambda: httpx.get(f"{c.api}/api/v1/agent/alive").status_code == 200)
            c._spawn(
                "serve",
                "--compute",
                "--data-dir",
                str(root / "node"),
                "--orchestrators",
                f"nats://127.0.0.1:{c.nats_port}",
                "--engines",
                "docker,noop",
                "--podman-socket",
                socket,
            )

            def connected() -> bool:
                nodes = httpx.get(f"{c.api}/api/v1/orchestrator/nodes").json()["Nodes"]
                return any(
                    "docker" in n["Info"]["ComputeNodeInfo"]["ExecutionEngines"]
                    and n["ConnectionState"]["Status"] == "CONNECTED"
                    for n in nodes
                )

            c.wait(connected)
            yield c
        finally:
            c.stop()


def docker_job(*command: str) -> dict[str, object]:
    return {
        "Job": {
            "Type": "batch",
            "Tasks": [
                {
                    "Name": "main",
                    "Engine": {"Type": "docker", "Params": {"Image": TAG, "Parameters": command}},
                }
            ],
        }
    }


def wait_state(client: httpx.Client, job_id: str, *states: str) -> str:
    while True:
        state = client.get(f"{JOBS}/{job_id}").json()["Job"]["State"]["StateType"]
        if state in states:
            return str(state)
        time.sleep(0.002)


def api_once(client: httpx.Client, body: dict[str, object]) -> float:
    start = time.perf_counter()
    job_id = client.put(JOBS, json=body).json()["JobID"]
    state = wait_state(client, job_id, "Completed", "Failed", "Stopped")
    if state != "Completed":
        raise SystemExit(f"job {job_id} ended {state}")
    return time.perf_counter() - start


def direct_once(podman: PodmanClient, interval: str | None) -> float:
    start = time.perf_counter()
    container = podman.containers.create(TAG, command=["true"], network_mode="none")
    container.start()
    code = container.wait(interval=interval) if interval else container.wait()
    container.remove(force=True)
    if code != 0:
        raise SystemExit(f"direct run exited {code}")
    return time.perf_counter() - start


def bench_interleaved(api: str, socket: str, count: int, warmup: int = 5) -> dict[str, list[float]]:
    """Each round runs every variant once, so load from elsewhere on the machine hits them
    alike and the ratios stay fair."""
    runs: dict[str, list[float]] = {"api": [], "noop": [], "default": [], "tuned": []}
    docker, noop = (
        docker_job("true"),
        {"Job": {"Type": "batch", "Tasks": [{"Name": "main", "Engine": {"Type": "noop"}}]}},
    )
    with (
        httpx.Client(base_url=api, timeout=60) as client,
        PodmanClient(base_url=f"unix://{socket}") as podman,
    ):
        for i in range(warmup + count):
            timings = {
                "api": api_once(client, docker),
                "noop": api_once(client, noop),
                "default": direct_once(podman, None),
                "tuned": direct_once(podman, "50ms"),
            }
            if i >= warmup:
                for key, value in timings.items():
                    runs[key].append(value)
    return runs


def rss_with_running(api: str, agent_pid: int, socket: str, running: int) -> float:
    """The agent's RSS while `running` sleeping containers are supervised."""
    with httpx.Client(base_url=api, timeout=60) as client:
        ids = [
            client.put(JOBS, json=docker_job("sleep", "300")).json()["JobID"]
            for _ in range(running)
        ]
        with PodmanClient(base_url=f"unix://{socket}") as podman:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                live = [c for c in podman.containers.list() if c.name.startswith("bacedge-")]
                if len(live) >= running:
                    break
                time.sleep(0.2)
            else:
                raise SystemExit("the containers did not all start")
        time.sleep(2)  # let log followers and waits settle
        rss = rss_mb(agent_pid)
        for job_id in ids:
            client.delete(f"{JOBS}/{job_id}")
        for job_id in ids:
            wait_state(client, job_id, "Stopped", "Failed", "Completed")
    return rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--podman-socket", help="default: BACEDGE_TEST_PODMAN_SOCKET or setup")
    args = parser.parse_args()
    socket = args.podman_socket or podman_socket()
    if socket is None:
        raise SystemExit("no Podman socket: run as root or set BACEDGE_TEST_PODMAN_SOCKET")
    load_busybox(socket)

    print(f"== podman job, busybox `true`, {args.jobs} jobs one at a time (socket {socket})")
    with split_cluster(socket) as c:
        agent = c.procs[-1].pid
        runs = bench_interleaved(c.api, socket, args.jobs)
        api, direct_default, direct_tuned = runs["api"], runs["default"], runs["tuned"]
        time.sleep(3)
        idle = rss_mb(agent)
        busy = rss_with_running(c.api, agent, socket, 4)
    print(f"  bacedge API end-to-end          : {describe(api)}")
    print(f"  podman-py direct (defaults)     : {describe(direct_default)}")
    print(f"  podman-py direct (wait 50ms)    : {describe(direct_tuned)}")
    print(f"  noop job end-to-end (floor)     : {describe(runs['noop'])}")
    for label, direct in (("defaults", direct_default), ("wait 50ms", direct_tuned)):
        ratio = percentile(api, 50) / percentile(direct, 50)
        print(f"  ratio p50 bacedge / direct ({label}): {ratio:.2f}x   target <= 1.25x")
    print(f"  compute agent RSS: idle {idle:.0f} MiB, with 4 running containers {busy:.0f} MiB")


if __name__ == "__main__":
    main()
