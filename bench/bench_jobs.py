"""Core benchmark (issue 13, scale and speed), every figure next to its target:

  latency   noop job submit -> Completed via the API, one at a time, single-node cluster
            (orchestrator + compute in one process, engines noop)   target p50 <= 5 ms
  wasm      hello-world wasm job the same way, and wasmer-sdk direct in the same run
                                          target p50 <= 10 ms and <= 3x the direct p50
  throughput noop jobs submitted 64 at a time, completed per second  target >= 300 jobs/s
  rss       a compute-only `serve --compute` process (wasm, plus docker when Podman
            answers) joined to an orchestrator, idle ~5 s after it connected: its own RSS
                                                                     target <= 60 MB
  cli       wall time of a fresh `bacedge --version` and `bacedge job list --api URL`
            against a running cluster, p50 of 10 runs      target <= 150 ms / <= 250 ms
  storm     a submission storm far beyond the pool (one node with 2 CPUs, jobs needing
            1 CPU for 60 s): submission p50/p99, the API's read p50/p99 while it lasts
            next to the same reads idle, and that every job is kept (queued, with its
            reason, or running)                                    (issue 13: measure)

Run: .venv/bin/python bench/bench_jobs.py [--wasm-jobs 200] [--noop-jobs 3000]
     [--only latency,wasm,throughput,rss,cli,storm] [--storm-jobs 3000]
It only prints: no figure makes it fail.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import aiohttp
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))
from common import cluster, describe, percentile, rss_mb, split_cluster  # noqa: E402

JOBS = "/api/v1/orchestrator/jobs"
BACEDGE_BIN = ROOT / ".venv" / "bin" / "bacedge"
SECTIONS = ("latency", "wasm", "throughput", "rss", "cli", "storm")
NOOP_JOB = {"Job": {"Type": "batch", "Tasks": [{"Name": "main", "Engine": {"Type": "noop"}}]}}


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


class JobEnds:
    """Follows `GET /api/v1/orchestrator/events` (job.state) on a thread of its own: when
    each job reached a final state, without polling the API (which loads what it measures)."""

    def __init__(self, api: str) -> None:
        self.ended: dict[str, tuple[str, float]] = {}
        self._cond = threading.Condition()
        self._ready = threading.Event()
        self._api = api
        threading.Thread(target=self._follow, daemon=True).start()
        if not self._ready.wait(10):
            raise SystemExit("the event stream did not open")

    def _follow(self) -> None:
        # The cluster stopping ends the stream mid-chunk: that is this thread's end too.
        with contextlib.suppress(httpx.TransportError):
            self._read()

    def _read(self) -> None:
        url = f"{self._api}/api/v1/orchestrator/events"
        with httpx.stream("GET", url, params={"types": "job.state"}, timeout=None) as response:
            response.raise_for_status()
            self._ready.set()
            for line in response.iter_lines():
                if not line.startswith("data:"):
                    continue
                event = json.loads(line[5:])
                if event.get("State") in ("Completed", "Failed", "Stopped"):
                    with self._cond:
                        self.ended[event["JobID"]] = (event["State"], time.perf_counter())
                        self._cond.notify_all()

    def wait(self, job_id: str, timeout: float = 30) -> tuple[str, float]:
        with self._cond:
            if not self._cond.wait_for(lambda: job_id in self.ended, timeout):
                raise SystemExit(f"job {job_id} did not end within {timeout} s")
            return self.ended.pop(job_id)


def bench_api(api: str, body: dict[str, object], count: int, events: bool = False) -> list[float]:
    """Submit -> Completed of `body`, one job at a time, after 10 warm-up jobs: the end
    seen by polling the job every 1 ms, or (`events`) on the API's event stream."""
    out = []
    ends = JobEnds(api) if events else None
    with httpx.Client(base_url=api, timeout=30) as client:
        for i in range(count + 10):  # 10 warm-up jobs: module cache, connections
            start = time.perf_counter()
            job_id = client.put(JOBS, json=body).json()["JobID"]
            if ends is not None:
                state, end = ends.wait(job_id)
            else:
                state, end = wait_done(client, job_id), time.perf_counter()
            if i >= 10:
                out.append(end - start)
            if state != "Completed":
                raise SystemExit(f"job {job_id} ended {state}")
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
    body = NOOP_JOB

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


def podman_socket() -> tuple[str | None, str]:
    """A Podman socket that answers (as bench_podman finds it), else None and why not."""
    try:
        from edge.executors.podman import connect
        from tests.podman_image import podman_socket as find_socket

        socket = find_socket()
        if socket is None:
            return None, "no Podman socket (not root and BACEDGE_TEST_PODMAN_SOCKET unset)"
        connect(socket).close()
    except Exception as exc:  # no podman, setup failed, socket silent: wasm only
        return None, f"Podman unavailable: {' '.join(str(exc).split())[:200]}"
    return socket, f"Podman socket {socket}"


def cli_wall(argv: list[str], runs: int) -> tuple[list[float], str]:
    """Wall time of `runs` fresh processes of `argv` (after one untimed run), and the
    first output line."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACEDGE_")}
    # As installed: the untimed run writes bytecode the timed ones read (with this set,
    # every run compiled bacedge's modules from source: ~90 ms of `job list` here).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    out = []
    first = ""
    for i in range(runs + 1):
        start = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
        elapsed = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} exited {done.returncode}: {done.stderr[-500:]}")
        if i == 0:
            first = (done.stdout.splitlines() or [""])[0]
        else:
            out.append(elapsed)
    return out, first


def ms(value_s: float) -> str:
    return f"{value_s * 1000:.2f} ms"


def section_latency(args: argparse.Namespace) -> None:
    print(
        f"== (latency) noop job, submit -> Completed via the API, one at a time, "
        f"single-node cluster (one process, engines noop), {args.latency_jobs} jobs"
    )
    with cluster(1, engines="noop") as c:
        polled = bench_api(c.api, NOOP_JOB, args.latency_jobs)
        followed = bench_api(c.api, NOOP_JOB, args.latency_jobs, events=True)
    print(f"  end seen polling the job every 1 ms : {describe(polled)}")
    print(f"  end seen on the API's event stream  : {describe(followed)}")
    for how, times in (("polling", polled), ("event stream", followed)):
        print(
            f"  {how}: p50 {ms(percentile(times, 50))}   target p50 <= 5 ms   "
            f"(p99 {ms(percentile(times, 99))}, no target)"
        )


def section_wasm(args: argparse.Namespace) -> None:
    print(
        f"== (wasm) hello-world wasm job, submit -> Completed, single-node cluster, "
        f"{args.wasm_jobs} jobs"
    )
    module = build_hello()
    with cluster(1) as c:
        polled = bench_api(c.api, wasm_job(module), args.wasm_jobs)
        followed = bench_api(c.api, wasm_job(module), args.wasm_jobs, events=True)
        rss = rss_mb(c.procs[0].pid)
    direct = asyncio.run(bench_wasm_direct(module, args.wasm_jobs))
    print(f"  API, polling every 1 ms  : {describe(polled)}")
    print(f"  API, event stream        : {describe(followed)}")
    print(f"  wasmer-sdk direct        : {describe(direct)}")
    for how, api in (("polling", polled), ("event stream", followed)):
        p50 = percentile(api, 50)
        ratio = p50 / percentile(direct, 50)
        print(
            f"  {how}: API p50 {ms(p50)}   target p50 <= 10 ms; ratio to direct "
            f"{ratio:.2f}x   target <= 3x"
        )
    print(f"  single-node process RSS after the run (with nats-server): {rss:.0f} MiB")


def section_throughput(args: argparse.Namespace) -> None:
    print("== (throughput) noop jobs, submitted and Completed per second")
    for computes in [int(n) for n in args.computes.split(",")]:
        with cluster(computes, engines="noop") as c:
            rate, submit_rate = bench_noop(c.api, args.noop_jobs)
            total_rss = sum(rss_mb(p.pid) for p in c.procs)
        print(
            f"  {computes:2d} compute node(s): {rate:7.1f} jobs/s completed "
            f"(submission alone {submit_rate:.0f}/s), {args.noop_jobs} jobs, "
            f"all processes RSS {total_rss:.0f} MiB   target >= 300 jobs/s"
        )


def section_rss(args: argparse.Namespace) -> None:
    socket, why = podman_socket()
    engines, extra = ("wasm,docker", ("--podman-socket", socket)) if socket else ("wasm", ())
    print(
        f"== (rss) compute-only `serve --compute --engines {engines}` joined to an "
        f"orchestrator, idle {args.idle_seconds:g} s after it connected ({why})"
    )
    with split_cluster(engines, extra) as c:
        time.sleep(args.idle_seconds)
        own = rss_mb(c.procs[1].pid, children=False)
        with_children = rss_mb(c.procs[1].pid)
        orchestrator = rss_mb(c.procs[0].pid)
    children = f", with its children {with_children:.1f} MiB" if with_children != own else ""
    print(
        f"  compute process RSS: {own:.1f} MiB = {own * 2**20 / 1e6:.1f} MB{children}   "
        f"target <= 60 MB   (engines {engines})"
    )
    print(f"  (orchestrator process with nats-server, not counted: {orchestrator:.0f} MiB)")


def section_cli(args: argparse.Namespace) -> None:
    print(
        f"== (cli) cold start, wall time of a fresh process, {args.cli_runs} runs "
        "(after one untimed run)"
    )
    version, line = cli_wall([str(BACEDGE_BIN), "--version"], args.cli_runs)
    print(f"  bacedge --version : {describe(version)}   target p50 <= 150 ms   ({line})")
    with cluster(1, engines="noop") as c:
        bench_api(c.api, NOOP_JOB, 0)  # the 10 warm-up jobs give the list rows
        listing, _ = cli_wall([str(BACEDGE_BIN), "job", "list", "--api", c.api], args.cli_runs)
    print(f"  bacedge job list  : {describe(listing)}   target p50 <= 250 ms")


STORM_JOB = {
    "Job": {
        "Type": "batch",
        "Tasks": [
            {
                "Name": "main",
                "Engine": {"Type": "noop", "Params": {"SleepSeconds": 60}},
                "Resources": {"CPU": "1"},
            }
        ],
    }
}
READS = ("/api/v1/orchestrator/nodes", f"{JOBS}?limit=20", "/api/v1/agent/alive")


async def read_latencies(session: aiohttp.ClientSession, until: asyncio.Event) -> list[float]:
    """Reads a client makes while watching the cluster, one after another, timed."""
    out = []
    while not until.is_set():
        for path in READS:
            start = time.perf_counter()
            async with session.get(path) as response:
                response.raise_for_status()
                await response.read()
            out.append(time.perf_counter() - start)
    return out


async def storm(api: str, count: int, concurrency: int) -> tuple[list[float], list[float]]:
    """(each submission's latency, the reads made meanwhile)."""
    async with aiohttp.ClientSession(
        api, connector=aiohttp.TCPConnector(limit=concurrency + 1)
    ) as session:
        remaining = iter(range(count))
        submits: list[float] = []

        async def worker() -> None:
            for _ in remaining:
                start = time.perf_counter()
                async with session.put(JOBS, json=STORM_JOB) as response:
                    response.raise_for_status()
                    await response.read()
                submits.append(time.perf_counter() - start)

        over = asyncio.Event()
        reader = asyncio.create_task(read_latencies(session, over))
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        over.set()
        return submits, await reader


async def idle_reads(api: str, seconds: float) -> list[float]:
    async with aiohttp.ClientSession(api) as session:
        over = asyncio.Event()
        asyncio.get_running_loop().call_later(seconds, over.set)
        return await read_latencies(session, over)


def count_jobs(client: httpx.Client) -> tuple[dict[str, int], str]:
    """Jobs per state (every page), and one queued job's message."""
    states: dict[str, int] = {}
    message, token = "", ""
    while True:
        params = {"limit": 1000, **({"next_token": token} if token else {})}
        page = client.get(JOBS, params=params).json()
        for job in page["Items"]:
            state = job["State"]["StateType"]
            states[state] = states.get(state, 0) + 1
            if state == "Queued" and not message:
                message = job["State"]["Message"]
        token = page.get("NextToken") or ""
        if not token:
            return states, message


def section_storm(args: argparse.Namespace) -> None:
    print(
        f"== (storm) {args.storm_jobs} jobs needing 1 CPU for 60 s each, submitted 64 at a "
        "time to one node with 2 CPUs; reads of nodes, jobs and alive meanwhile"
    )
    env = {"BACEDGE_COMPUTE_CPU": "2"}
    with cluster(1, engines="noop", env=env) as c:
        idle = asyncio.run(idle_reads(c.api, 3.0))
        start = time.perf_counter()
        submits, busy = asyncio.run(storm(c.api, args.storm_jobs, 64))
        took = time.perf_counter() - start
        with httpx.Client(base_url=c.api, timeout=60) as client:
            time.sleep(2.0)  # the last evaluations
            states, message = count_jobs(client)
        rss = rss_mb(c.procs[0].pid)
    kept = sum(states.values())
    print(f"  submissions        : {describe(submits)}   ({args.storm_jobs / took:.0f}/s)")
    print(f"  API reads, idle    : {describe(idle)}")
    print(f"  API reads, storm   : {describe(busy)}")
    print(
        f"  read p99 storm/idle: {percentile(busy, 99) / percentile(idle, 99):.1f}x   "
        f"(p50 {percentile(busy, 50) / percentile(idle, 50):.1f}x)"
    )
    print(
        f"  jobs kept {kept}/{args.storm_jobs} "
        f"({', '.join(f'{k} {v}' for k, v in sorted(states.items()))}); "
        f"process RSS {rss:.0f} MiB"
    )
    print(f"  a queued job says: {message!r}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--latency-jobs", type=int, default=300, help="noop latency jobs")
    parser.add_argument("--wasm-jobs", type=int, default=200)
    parser.add_argument("--noop-jobs", type=int, default=3000, help="noop throughput jobs")
    parser.add_argument("--computes", default="1,10", help="throughput cluster sizes")
    parser.add_argument("--idle-seconds", type=float, default=5.0, help="rss: idle time")
    parser.add_argument("--cli-runs", type=int, default=10, help="cli: timed runs each")
    parser.add_argument("--storm-jobs", type=int, default=3000, help="storm: jobs submitted")
    parser.add_argument(
        "--only", default=",".join(SECTIONS), help=f"comma list of: {', '.join(SECTIONS)}"
    )
    args = parser.parse_args()
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}: choose from {', '.join(SECTIONS)}")
    runners = {
        "latency": section_latency,
        "wasm": section_wasm,
        "throughput": section_throughput,
        "rss": section_rss,
        "cli": section_cli,
        "storm": section_storm,
    }
    for name in SECTIONS:
        if name in chosen:
            runners[name](args)


if __name__ == "__main__":
    main()
