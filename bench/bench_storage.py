"""Storage benchmark: moving data through jobs vs the minio SDK doing it directly.

Run: .venv/bin/python bench/bench_storage.py [--mb 100] [--reps 3] [--small-jobs 30]

One single-node cluster with its local store (`serve --orchestrator --compute --store`,
SeaweedFS), one run, same store for every figure:
- a 100 MB object downloaded as a job's s3 input vs `fget_object` directly (target >= 0.9x);
- a 100 MB result published by a job's s3 publisher (plain and gzip) vs `fput_object`
  directly (target >= 0.9x for the same transfer, plain);
- a job with 1 KB in and out through the store vs the same job with no storage
  (target <= +15 ms at p50);
- the store's RSS when idle.
Job-side download time is a job's submit->Completed time minus the same job without the
input, so engine and scheduling costs cancel out; publish time is the execution's time in
Publishing, from its history (the task before it copies 100 MB and costs what it costs).
The input cache is off so every job downloads.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import cluster, describe, percentile

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from edge import s3
from edge.config import load_config
from tests.wasm_build import build_wasm, s3_source, wasm_job_spec

JOBS = "/api/v1/orchestrator/jobs"


def job(
    module: bytes, inputs: list[dict[str, Any]], publisher: dict[str, Any], args: list[str]
) -> dict[str, Any]:
    return {"Job": wasm_job_spec(module, args, inputs, publisher)}


def run_job(http: httpx.Client, spec: dict[str, Any]) -> float:
    """Seconds from submission to Completed (fails loudly on anything else)."""
    return submit_and_wait(http, spec)[1]


def submit_and_wait(http: httpx.Client, spec: dict[str, Any]) -> tuple[str, float]:
    start = time.perf_counter()
    job_id = http.put(JOBS, json=spec).json()["JobID"]
    while True:
        body = http.get(f"{JOBS}/{job_id}").json()
        state = body["Job"]["State"]["StateType"]
        if state == "Completed":
            return job_id, time.perf_counter() - start
        if state in ("Failed", "Stopped"):
            raise RuntimeError(f"job {job_id} {state}: {body['Job']['State']['Message']}")
        time.sleep(0.002)


def publish_seconds(http: httpx.Client, spec: dict[str, Any]) -> float:
    """How long the execution spent in Publishing (7 -> 9), from the job's history: the
    upload alone, whatever the task before it cost."""
    job_id, _ = submit_and_wait(http, spec)
    times: dict[int, datetime] = {}
    for item in http.get(f"{JOBS}/{job_id}/history").json()["Items"]:
        change = item.get("ExecutionState") or {}
        if change.get("New") in (7, 9):
            times[int(change["New"])] = datetime.fromisoformat(item["Time"].replace("Z", "+00:00"))
    return (times[9] - times[7]).total_seconds()


def s3_input(key: str) -> dict[str, Any]:
    return s3_source("bench", key)


def inline_input(data: bytes, name: str) -> dict[str, Any]:
    uri = "data:;base64," + base64.b64encode(data).decode()
    return {"Source": {"Type": "inline", "Params": {"URL": uri}}, "Target": f"/inputs/{name}"}


def store_rss(serve_pid: int) -> float:
    for child in psutil.Process(serve_pid).children(recursive=True):
        if "weed" in child.name() or "minio" in child.name():
            total = child.memory_info().rss
            for grandchild in child.children(recursive=True):
                total += grandchild.memory_info().rss
            return total / 2**20
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=100)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--small-jobs", type=int, default=30)
    args = parser.parse_args()
    size = args.mb << 20
    io_module = build_wasm("copy").read_bytes()  # prints nothing: the data path alone
    hello = build_wasm("hello").read_bytes()
    env = {"BACEDGE_COMPUTE_INPUT_CACHE_BYTES": "0"}
    with cluster(1, "wasm,noop", extra=("--store", "--store-port", "0"), env=env) as c:
        config = load_config(overrides={"node.data_dir": str(c.root / "single")}, environ={})
        c.wait(lambda: s3.local_store(config) is not None)
        endpoint = s3.local_store(config)
        assert endpoint is not None
        client = endpoint.client()
        c.wait(lambda: client.list_buckets() is not None)
        for bucket in ("bench", "direct", "results"):
            if not client.bucket_exists(bucket):
                client.make_bucket(bucket)
        time.sleep(3)
        idle_rss = store_rss(c.procs[0].pid)
        with tempfile.TemporaryDirectory() as tmp:
            big = Path(tmp) / "big.bin"
            big.write_bytes(os.urandom(size))
            client.fput_object("bench", "big.bin", str(big))
            client.put_object("bench", "small.bin", io.BytesIO(os.urandom(1024)), 1024)

            # Direct transfers with the minio SDK.
            get_direct, put_direct = [], []
            for i in range(args.reps):
                t = time.perf_counter()
                client.fget_object("bench", "big.bin", str(Path(tmp) / f"down{i}"))
                get_direct.append(time.perf_counter() - t)
                t = time.perf_counter()
                client.fput_object("direct", f"up{i}.bin", str(big))
                put_direct.append(time.perf_counter() - t)

            with httpx.Client(base_url=c.api, timeout=300) as http:
                # Download: an s3 input the task does not read, vs no input.
                base = job(hello, [], {"Type": "noop"}, [])
                with_input = job(hello, [s3_input("big.bin")], {"Type": "noop"}, [])
                run_job(http, base)
                no_input = [run_job(http, base) for _ in range(args.reps)]
                downloaded = [run_job(http, with_input) for _ in range(args.reps)]
                # Publish: the task copies 100 MB to its results; noop vs s3 publishers.
                copy = ["/inputs/big.bin", "/outputs/big.bin"]
                src = [s3_input("big.bin")]
                plain_pub = {
                    "Type": "s3",
                    "Params": {"Bucket": "results", "Key": "{jobID}", "Encoding": "plain"},
                }
                gzip_pub = {"Type": "s3", "Params": {"Bucket": "results", "Key": "{jobID}"}}
                plain = [
                    publish_seconds(http, job(io_module, src, plain_pub, copy))
                    for _ in range(args.reps)
                ]
                gzipped = [
                    publish_seconds(http, job(io_module, src, gzip_pub, copy))
                    for _ in range(args.reps)
                ]
                # Small data: 1 KB in and out through the store vs inline data, no publishing.
                small_in = [s3_input("small.bin")]
                small_copy = ["/inputs/small.bin", "/outputs/small.bin"]
                kb = os.urandom(1024)
                local_only = job(
                    io_module, [inline_input(kb, "small.bin")], {"Type": "noop"}, small_copy
                )
                through_store = job(
                    io_module,
                    small_in,
                    {"Type": "s3", "Params": {"Bucket": "results", "Key": "{jobID}"}},
                    small_copy,
                )
                run_job(http, local_only)
                plain_small = [run_job(http, local_only) for _ in range(args.small_jobs)]
                store_small = [run_job(http, through_store) for _ in range(args.small_jobs)]

    def mbps(seconds: float) -> float:
        return args.mb / seconds

    d_direct = statistics.median(get_direct)
    d_job = statistics.median(downloaded) - statistics.median(no_input)
    p_direct = statistics.median(put_direct)
    p_plain = statistics.median(plain)
    p_gzip = statistics.median(gzipped)
    overhead = (percentile(store_small, 50) - percentile(plain_small, 50)) * 1000
    figures = {
        "download_direct_MBps": round(mbps(d_direct), 1),
        "download_job_MBps": round(mbps(d_job), 1),
        "download_ratio": round(d_direct / d_job, 3),
        "publish_direct_MBps": round(mbps(p_direct), 1),
        "publish_plain_job_MBps": round(mbps(p_plain), 1),
        "publish_plain_ratio": round(p_direct / p_plain, 3),
        "publish_gzip_job_MBps": round(mbps(p_gzip), 1),
        "small_job_overhead_ms_p50": round(overhead, 2),
        "store_idle_rss_MiB": round(idle_rss, 1),
    }
    print(f"{args.mb} MB object, median of {args.reps}; same store (SeaweedFS), same run")
    print(
        f"  download: direct {figures['download_direct_MBps']} MB/s, as a job input "
        f"{figures['download_job_MBps']} MB/s -> {figures['download_ratio']}x (target >= 0.9x)"
    )
    print(
        f"  publish:  direct {figures['publish_direct_MBps']} MB/s, s3 publisher plain "
        f"{figures['publish_plain_job_MBps']} MB/s -> {figures['publish_plain_ratio']}x "
        f"(target >= 0.9x); gzip {figures['publish_gzip_job_MBps']} MB/s (incompressible data)"
    )
    print(
        f"  1 KB in+out through the store vs none: {describe(store_small)} vs "
        f"{describe(plain_small)} -> +{overhead:.2f} ms at p50 (target <= +15 ms)"
    )
    print(f"  store RSS idle: {figures['store_idle_rss_MiB']} MiB")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
