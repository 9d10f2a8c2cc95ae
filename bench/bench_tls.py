"""TLS handshake cost on a job round trip: the same noop job through the API of two
orchestrators started side by side in one run, one plain (HTTP, NATS) and one with TLS
(`bacedge setup tls`: HTTPS and NATS with TLS), each with a compute node in its process.

Round trip: PUT the job, then GET it until Completed. Two client variants per cluster:
a new connection per job (so every job pays a TCP and, with TLS, a TLS handshake) and one
kept-alive connection for all jobs. The clusters take turns job by job, so drift in the
machine's load hits both alike.

Run: .venv/bin/python bench/bench_tls.py [--jobs 200]
"""

from __future__ import annotations

import argparse
import os
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BACEDGE, describe, free_port

JOBS = "/api/v1/orchestrator/jobs"
JOB = {"Job": {"Type": "batch", "Tasks": [{"Name": "t", "Engine": {"Type": "noop"}}]}}


def start(root: Path, tls_dir: Path | None) -> tuple[subprocess.Popen[bytes], str, Any]:
    api_port, nats_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACEDGE_")}
    env.update(BACEDGE_LOG_LEVEL="warning", BACEDGE_PUBLISHERS_LOCAL_PORT="0")
    verify: Any = True
    scheme = "http"
    if tls_dir is not None:
        cert, key = str(tls_dir / "server.pem"), str(tls_dir / "server-key.pem")
        env.update(
            BACEDGE_API_TLS_CERT=cert,
            BACEDGE_API_TLS_KEY=key,
            BACEDGE_NATS_TLS_CERT=cert,
            BACEDGE_NATS_TLS_KEY=key,
        )
        verify = ssl.create_default_context(cafile=str(tls_dir / "ca.pem"))
        scheme = "https"
    args = [
        "serve",
        "--orchestrator",
        "--compute",
        "--engines",
        "noop",
        "--data-dir",
        str(root),
        "--api-port",
        str(api_port),
        "--nats-port",
        str(nats_port),
    ]
    log = (root.parent / f"{root.name}.log").open("wb")
    proc = subprocess.Popen([*BACEDGE, *args], stdout=log, stderr=subprocess.STDOUT, env=env)
    api = f"{scheme}://localhost:{api_port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            nodes = httpx.get(f"{api}/api/v1/orchestrator/nodes", verify=verify, timeout=2)
            if nodes.status_code == 200 and nodes.json()["Nodes"]:
                return proc, api, verify
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise SystemExit(f"orchestrator exited: see {log.name}")
        time.sleep(0.1)
    raise SystemExit(f"{api} did not come up with a node")


def round_trip(client: httpx.Client) -> float:
    started = time.perf_counter()
    response = client.put(JOBS, json=JOB)
    response.raise_for_status()
    job_id = response.json()["JobID"]
    while True:
        state = client.get(f"{JOBS}/{job_id}").json()["Job"]["State"]["StateType"]
        if state == "Completed":
            return time.perf_counter() - started
        if state in ("Failed", "Stopped"):
            raise SystemExit(f"job {job_id} {state}")
        time.sleep(0.002)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=200, help="Jobs per variant and cluster.")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-tls-") as tmp:
        root = Path(tmp)
        tls_dir = root / "tls"
        subprocess.run(
            [*BACEDGE, "setup", "tls", "--dir", str(tls_dir), "--name", "localhost"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        procs = []
        try:
            plain = start(root / "plain", None)
            procs.append(plain[0])
            secure = start(root / "tls-cluster", tls_dir)
            procs.append(secure[0])
            clusters = {"plain": plain[1:], "tls": secure[1:]}
            times: dict[str, list[float]] = {}
            kept = {
                name: httpx.Client(base_url=api, verify=verify, timeout=10)
                for name, (api, verify) in clusters.items()
            }
            for client in kept.values():  # warm up both paths
                for _ in range(5):
                    round_trip(client)
            for _ in range(options.jobs):
                for name, (api, verify) in clusters.items():
                    with httpx.Client(base_url=api, verify=verify, timeout=10) as fresh:
                        times.setdefault(f"{name:5} new connection per job", []).append(
                            round_trip(fresh)
                        )
                    times.setdefault(f"{name:5} kept-alive connection  ", []).append(
                        round_trip(kept[name])
                    )
            for client in kept.values():
                client.close()
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(15)
    print(f"noop job round trip (PUT, then GET until Completed), {options.jobs} jobs each:")
    for name in sorted(times):
        print(f"  {name}  {describe(times[name])}")


if __name__ == "__main__":
    main()
