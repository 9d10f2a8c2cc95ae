"""Core benchmark: wasm job latency through the API vs wasmer-sdk direct; noop throughput.

Run: .venv/bin/python bench/bench_jobs.py [--wasm-jobs 200] [--noop-jobs 3000]
Prints p50/p99 latencies, the ratio to the direct run, throughput and RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import cluster, describe, percentile, rss_mb

ROOT = Path(__file__).resolve().parents[1]
JOBS = "/api/v1/orchestrator/jobs"


def build_hello() -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "hello.wasm"
        subprocess.run(["wat2wasm", str(ROOT / "tests/wasm/hello.wat"), "-o", str(out)], check=True)
        return out.read_bytes()


def wasm_job(module: bytes) -> dict[str, object]:
    uri = "data:application/wasm;base64," + base64.b64encode(module).decode()
    return {
        "Job": {
            "Type": "batch",
            "Tasks": [
                {
                    "Name": "main",
                    "Engine": {
                        "Type": "wasm",
                        "Params": {"EntryModule": "main.wasm", "Parameters": ["bench"]},
                    },
                    "InputSources": [
                        {
                            "Source": {"Type": "inline", "Params": {"URL": uri}},
                            "Target": "/main.wasm",
                        }
                    ],
                }
            ],
        }
    }


def wait_done(client: httpx.Client, job_id: str) -> str:
    while True:
        state = client.get(f"{JOBS}/{job_id}").json()["Job"]["State"]["StateType"]
        if state in ("Completed", "Failed", "Stopped"):
            return str(state)
        time.sleep(0.001)


def bench_wasm_api(api: str, module: bytes, count: int) -> list[float]:
    body = wasm_job(module)
    out = []
    with httpx.Client(base_url=api, timeout=30) as client:
        for _ in range(10):  # warm-up: module cache, connections
            wait_done(client, client.put(JOBS, json=body).json()["JobID"])
        for _ in range(count):
            start = time.perf_counter()
            job_id = client.put(JOBS, json=body).json()["JobID"]
            state = wait_done(client, job_id)
            out.append(time.perf_counter() - start)
            if state != "Completed":
                raise SystemExit(f"wasm job {job_id} ended {state}")
    return out


async def bench_wasm_direct(module: bytes, count: int) -> list[float]:
    import wasmer_sdk

    wasmer = wasmer_sdk.Wasmer(cache_root=tempfile.mkdtemp(prefix="bench-wasmer-"))
    package = await wasmer.packages.load(module)
    out = []
    for i in range(count + 10):
        start = time.perf_counter()
        sandbox = await wasmer.sandboxes.create(packages=[package])
        try:
            result = await sandbox.command(package, ["bench"]).run(check=False)
        finally:
            await sandbox.close()
        if i >= 10:
            out.append(time.perf_counter() - start)
        assert result.exit_code == 0, result
    await wasmer.close()
    return out


def bench_noop(api: str, count: int, concurrency: int = 64) -> tuple[float, float]:
    body = {"Job": {"Type": "batch", "Tasks": [{"Name": "main", "Engine": {"Type": "noop"}}]}}

    async def submit_all() -> float:
        # aiohttp as the load generator: httpx's async client tops out near 100 req/s
        # on this machine and would measure itself, not the orchestrator.
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(api, connector=connector) as session:
            remaining = iter(range(count))

            async def worker() -> None:
                for _ in remaining:
                    async with session.put(JOBS, json=body) as response:
                        response.raise_for_status()
                        await response.read()

            start = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            return start

    start = asyncio.run(submit_all())
    submitted = time.perf_counter()
    with httpx.Client(base_url=api, timeout=30) as client:
        while True:
            items = client.get(JOBS, params={"state": "Pending,Queued,Running", "limit": 1}).json()[
                "Items"
            ]
            if not items:
                break
            time.sleep(0.02)
        done = time.perf_counter()
        failed = client.get(JOBS, params={"state": "Failed,Stopped", "limit": 1}).json()["Items"]
        if failed:
            raise SystemExit(f"noop job failed: {failed[0]['State']}")
    return count / (done - start), count / (submitted - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--wasm-jobs", type=int, default=200)
    parser.add_argument("--noop-jobs", type=int, default=3000)
    parser.add_argument("--computes", default="1,10")
    args = parser.parse_args()
    module = build_hello()

    print("== (a) hello-world wasm job, submit -> Completed, single-node cluster")
    with cluster(1) as c:
        api = bench_wasm_api(c.api, module, args.wasm_jobs)
        rss = rss_mb(c.procs[0].pid)
    direct = asyncio.run(bench_wasm_direct(module, args.wasm_jobs))
    print(f"  bacedge API end-to-end : {describe(api)}")
    print(f"  wasmer-sdk direct      : {describe(direct)}")
    ratio = percentile(api, 50) / percentile(direct, 50)
    print(f"  ratio (p50 API / p50 direct): {ratio:.2f}x   target p50 <= 25 ms")
    print(f"  single-node process RSS after the run (with nats-server): {rss:.0f} MiB")

    print("== (b) noop throughput, submitted and Completed per second")
    for computes in [int(n) for n in args.computes.split(",")]:
        with cluster(computes, engines="noop") as c:
            rate, submit_rate = bench_noop(c.api, args.noop_jobs)
            total_rss = sum(rss_mb(p.pid) for p in c.procs)
        print(
            f"  {computes:2d} compute node(s): {rate:7.1f} jobs/s completed "
            f"(submission alone {submit_rate:.0f}/s), {args.noop_jobs} jobs, "
            f"all processes RSS {total_rss:.0f} MiB   target >= 300 jobs/s"
        )


if __name__ == "__main__":
    main()
