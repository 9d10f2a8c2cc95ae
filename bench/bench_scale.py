"""Scale benchmark (issue 13): the orchestrator against thousands of simulated nodes.

- placements/s: batch noop jobs placed on 1,000 and 10,000 simulated nodes, counted when
  the node accepted them (offered -> accepted) and when the jobs are Completed;
- heartbeat load: 20,000 nodes heartbeating every 15 s, the orchestrator's CPU (% of one
  core) and RSS;
- restart: time until the API answers, with 100,000 jobs in the store.

The orchestrator (`bacedge serve --orchestrator`, embedded NATS) and the nodes (`bacedge
devstack --simulated --orchestrators ...`) run as separate processes, so the orchestrator's
CPU is its own. Each figure is printed with its target; nothing is asserted on time. On a
machine shared with other work the rates move with its load (printed with each run); the
CPU time per placement does not, and says what one free core would allow.
`--profile DIR` runs the orchestrator under cProfile (bench/profiled.py): one file per run;
`--orchestrator-tree DIR` runs it from another checkout, for before/after figures.

Run: .venv/bin/python bench/bench_scale.py [--only placements,heartbeats,restart]
     [--nodes 1000,10000] [--jobs 20] [--count 500] [--heartbeat-nodes 20000]
     [--stored-jobs 100000] [--cold] [--profile DIR] [--orchestrator-tree DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from contextlib import suppress
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BenchCluster

ROOT = Path(__file__).resolve().parents[1]
JOBS = "/api/v1/orchestrator/jobs"
BID_ACCEPTED = 5  # ComputeState.StateType
FAILED = 'bacedge_jobs_finished_total{state="Failed"}'
CONNECTED = 'bacedge_nodes{connection="CONNECTED",membership="APPROVED"}'
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$")


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} / {five:.1f} on {os.cpu_count()} cores"


class Scale(BenchCluster):
    """An orchestrator process and a simulator process (`devstack --simulated`)."""

    profile: Path | None = None  # cProfile the orchestrator into this directory
    settings: dict[str, str] = {}  # BACEDGE_* for the orchestrator only (--set)
    tree: Path | None = None  # run the orchestrator from this checkout (before/after)

    def start_orchestrator(self, data_dir: Path, tag: str = "") -> psutil.Process:
        args = [
            "serve",
            "--orchestrator",
            "--data-dir",
            str(data_dir),
            "--api-port",
            str(self.api_port),
            "--nats-port",
            str(self.nats_port),
        ]
        command = [sys.executable, "-m", "edge.cli.main"]
        if self.profile is not None:
            self.profile.mkdir(parents=True, exist_ok=True)
            out = self.profile / f"orchestrator-{tag or len(self.procs)}.prof"
            command = [sys.executable, str(ROOT / "bench" / "profiled.py"), str(out)]
        env = self.env
        self.env = {**env, **self.settings}
        if self.tree is not None:  # its `edge` first on the path (-P: not the cwd's)
            self.env["PYTHONPATH"] = str(self.tree)
            command.insert(1, "-P")
        try:
            proc = self._spawn(*args, command=command)
        finally:
            self.env = env
        self.wait(lambda: httpx.get(f"{self.api}/api/v1/agent/alive").status_code == 200, 120)
        return psutil.Process(proc.pid)

    def simulate(self, nodes: int, heartbeat: float = 15.0) -> psutil.Process:
        log = self.root / f"proc{len(self.procs)}.log"  # where _spawn writes its output
        proc = self._spawn(
            "devstack",
            "--simulated",
            "--computes",
            str(nodes),
            "--orchestrators",
            f"nats://127.0.0.1:{self.nats_port}",
            "--data-dir",
            str(self.root / f"sim{len(self.procs)}"),
            "--heartbeat-interval",
            str(heartbeat),
        )
        start = time.perf_counter()
        self.wait(lambda: self.connected() >= nodes, 120 + nodes / 20)
        print(f"    {nodes:,} simulated nodes connected in {time.perf_counter() - start:.1f} s")
        # Started, not only connected: its start-up ends with a full garbage collection
        # (10,000 nodes' objects, about a second) that must not land in what is measured.
        self.wait(lambda: b"devstack is running" in log.read_bytes(), 120)
        return psutil.Process(proc.pid)

    def metrics(self) -> dict[str, float]:
        """Each metric summed over its labels, plus `name{labels}` for labelled samples."""
        out: dict[str, float] = {}
        text = httpx.get(f"{self.api}/metrics", timeout=300).text  # a busy loop answers late
        for line in text.splitlines():
            match = _SAMPLE.match(line)
            if match is None:
                continue
            name, labels, value = match.groups()
            out[name] = out.get(name, 0.0) + float(value)
            if labels:
                out[name + labels] = float(value)
        return out

    def connected(self) -> int:
        return int(
            self.metrics().get('bacedge_nodes{connection="CONNECTED",membership="APPROVED"}', 0)
        )


def cpu_seconds(proc: psutil.Process, children: bool = False) -> float:
    times = proc.cpu_times()
    total = times.user + times.system
    if children:
        for child in proc.children(recursive=True):
            with suppress(psutil.NoSuchProcess):
                child_times = child.cpu_times()
                total += child_times.user + child_times.system
    return total


def rss(proc: psutil.Process) -> float:
    return proc.memory_info().rss / 2**20


def nats_child(proc: psutil.Process) -> psutil.Process | None:
    return next((c for c in proc.children(recursive=True) if "nats" in c.name()), None)


def noop_job(count: int) -> dict[str, Any]:
    return {
        "Job": {
            "Type": "batch",
            "Count": count,
            "Tasks": [{"Name": "main", "Engine": {"Type": "noop"}}],
        }
    }


async def submit(api: str, jobs: int, count: int) -> list[str]:
    body = noop_job(count)
    async with aiohttp.ClientSession(api, connector=aiohttp.TCPConnector(limit=16)) as session:

        async def one() -> str:
            async with session.put(JOBS, json=body) as response:
                response.raise_for_status()
                return str((await response.json())["JobID"])

        return list(await asyncio.gather(*(one() for _ in range(jobs))))


def times(api: str, job_ids: list[str]) -> tuple[float, float]:
    """When the last execution of the jobs was accepted by its node, and when the last job
    reached its final state (unix seconds; the server's clock is this machine's), read from
    the jobs' own history afterwards rather than by polling fast during the run."""
    accepted, done = 0.0, 0.0
    with httpx.Client(base_url=api, timeout=60) as client:
        for job_id in job_ids:
            done = max(done, client.get(f"{JOBS}/{job_id}").json()["Job"]["ModifyTime"] / 1e9)
            history = client.get(
                f"{JOBS}/{job_id}/history", params={"event_type": "execution"}
            ).json()["Items"]
            for event in history:
                change = event.get("ExecutionState") or {}
                if change.get("New") == BID_ACCEPTED:
                    when = datetime.fromisoformat(event["Time"].replace("Z", "+00:00"))
                    accepted = max(accepted, when.timestamp())
    return accepted, done


def stuck(client: httpx.Client, jobs: list[dict[str, Any]]) -> str:
    """What holds a job that does not finish: its executions' states and messages."""
    job_id = jobs[0]["ID"]
    found = client.get(f"{JOBS}/{job_id}/executions", params={"limit": 1000}).json()["Items"]
    seen: dict[str, int] = {}
    for execution in found:
        state = execution["ComputeState"]
        key = f"{state['StateType']} {state.get('Message', '')[:120]!r}"
        seen[key] = seen.get(key, 0) + 1
    return f"job {job_id} executions by state: {seen}"


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise SystemExit(f"timed out waiting for {what}")


# -- placements ----------------------------------------------------------------------------


def bench_placements(args: argparse.Namespace, nodes: int) -> None:
    target = 3750 if nodes <= 1000 else 2000
    print(f"== placements/s on {nodes:,} simulated nodes ({load()})")
    with tempfile.TemporaryDirectory(prefix="bacedge-scale-") as tmp:
        scale = Scale(Path(tmp))
        scale.profile, scale.tree, scale.settings = args.profile, args.orchestrator_tree, args.set
        try:
            orch = scale.start_orchestrator(Path(tmp) / "orch", f"placements-{nodes}")
            sim = scale.simulate(nodes)
            asyncio.run(submit(scale.api, 2, 50))  # warm-up: imports, caches, connections
            wait_for(lambda: _finished(scale) >= 2, 120, "the warm-up jobs")
            total = args.jobs * args.count
            failed0 = scale.metrics().get(FAILED, 0.0)
            cpu0, sim0 = cpu_seconds(orch), cpu_seconds(sim)
            nats = nats_child(orch)
            nats0 = cpu_seconds(nats) if nats else 0.0
            start = time.time()
            job_ids = asyncio.run(submit(scale.api, args.jobs, args.count))
            submitted = time.time()
            # Done when no job is active: an indexed query, polled 4 times a second (a
            # metrics scrape walks every active execution and would load what it measures).
            deadline = time.monotonic() + 120 + total / 100
            with httpx.Client(base_url=scale.api, timeout=300) as client:
                active = {"state": "Pending,Queued,Running", "limit": 1}
                while items := client.get(JOBS, params=active).json()["Items"]:
                    if time.monotonic() > deadline:
                        raise SystemExit(f"timed out waiting for the jobs: {stuck(client, items)}")
                    time.sleep(0.25)
            cpu1, sim1, polled = cpu_seconds(orch), cpu_seconds(sim), time.time()
            nats1 = cpu_seconds(nats) if nats else 0.0
            accepted_at, done_at = times(scale.api, job_ids)
            elapsed = done_at - start
            cpu = (cpu1 - cpu0) / (polled - start) * 100
            sim_cpu = (sim1 - sim0) / (polled - start) * 100
            now = scale.metrics()
            failed = now.get(FAILED, 0.0) - failed0
            accepted_rate = total / (accepted_at - start)
            print(
                f"  {args.jobs} jobs x Count {args.count} = {total:,} executions "
                f"(submitted in {submitted - start:.2f} s)"
            )
            print(f"  offered -> accepted : {accepted_rate:8.0f} placements/s")
            rate = total / elapsed
            print(f"  offered -> Completed: {rate:8.0f} placements/s   target >= {target:,}")
            print(
                f"  orchestrator CPU {cpu:.0f}% of one core, RSS {rss(orch):.0f} MiB; "
                f"simulator CPU {sim_cpu:.0f}%, RSS {rss(sim):.0f} MiB; failed jobs {failed:.0f}"
            )
            # CPU time per placement does not depend on what else the machine runs: the
            # rate one free core would allow, for the orchestrator and for the nodes.
            orch_ms = (cpu1 - cpu0) * 1000 / total
            sim_ms = (sim1 - sim0) * 1000 / total
            nats_ms = (nats1 - nats0) * 1000 / total
            print(
                f"  CPU per placement: orchestrator {orch_ms:.3f} ms (one free core: "
                f"{1000 / orch_ms:,.0f}/s), simulated nodes {sim_ms:.3f} ms "
                f"({1000 / sim_ms:,.0f}/s), nats-server {nats_ms:.3f} ms; the three on "
                f"{os.cpu_count()} cores allow at most "
                f"{1000 * (os.cpu_count() or 1) / (orch_ms + sim_ms + nats_ms):,.0f}/s"
            )
        finally:
            scale.stop()


def _finished(scale: Scale, metrics: dict[str, float] | None = None) -> float:
    return (metrics or scale.metrics()).get("bacedge_jobs_finished_total", 0.0)


# -- heartbeats ----------------------------------------------------------------------------


def bench_heartbeats(args: argparse.Namespace) -> None:
    nodes, interval, window = args.heartbeat_nodes, 15.0, args.window
    print(f"== heartbeat load: {nodes:,} nodes every {interval:g} s ({load()})")
    with tempfile.TemporaryDirectory(prefix="bacedge-scale-") as tmp:
        scale = Scale(Path(tmp))
        scale.profile, scale.tree, scale.settings = args.profile, args.orchestrator_tree, args.set
        try:
            orch = scale.start_orchestrator(Path(tmp) / "orch", "heartbeats")
            sim = scale.simulate(nodes, interval)
            time.sleep(interval)  # every node heartbeats on its own period from now on
            beats0 = scale.metrics()["bacedge_heartbeats_total"]
            cpu0, sim0 = cpu_seconds(orch), cpu_seconds(sim)
            nats = nats_child(orch)
            nats0 = cpu_seconds(nats) if nats else 0.0
            start = time.perf_counter()
            time.sleep(window)
            elapsed = time.perf_counter() - start
            cpu = (cpu_seconds(orch) - cpu0) / elapsed * 100
            sim_cpu = (cpu_seconds(sim) - sim0) / elapsed * 100
            nats_cpu = (cpu_seconds(nats) - nats0) / elapsed * 100 if nats else 0.0
            now = scale.metrics()
            beats = (now["bacedge_heartbeats_total"] - beats0) / elapsed
            still = int(now.get(CONNECTED, 0))
            print(
                f"  {beats:.0f} heartbeats/s over {elapsed:.0f} s "
                f"(expected {nodes / interval:.0f}/s); {still:,} nodes still CONNECTED"
            )
            print(f"  orchestrator CPU {cpu:5.1f}% of one core   target <= 25%")
            print(
                f"  orchestrator RSS {rss(orch):.0f} MiB (nats-server "
                f"{rss(nats) if nats else 0:.0f} MiB, CPU {nats_cpu:.1f}%); "
                f"simulator CPU {sim_cpu:.0f}%, RSS {rss(sim):.0f} MiB"
            )
        finally:
            scale.stop()


# -- restart with many stored jobs --------------------------------------------------------


def fill_store(path: Path, jobs: int) -> None:
    """`jobs` Completed batch noop jobs, each with one execution and its history, written
    as the orchestrator writes them (rows from the store's own serialisation)."""
    from edge.jobspec import assign_identity, load_job
    from edge.models import (
        ComputeState,
        ComputeStateType,
        DesiredState,
        DesiredStateType,
        Evaluation,
        Execution,
        JobState,
        JobStateType,
        now_ns,
    )
    from edge.orchestrator.history import execution_event, job_event
    from edge.orchestrator.store import Batch, Store, _write_rows

    async def schema() -> None:
        store = Store(path)
        await store.open()
        await store.close()

    asyncio.run(schema())
    job = assign_identity(load_job(noop_job(1)["Job"]))
    job.ID = job.Name = "j-TEMPLATE"
    job.Version = 1
    job.Revision = 3
    job.CreateTime = job.ModifyTime = now_ns()
    job.State = JobState(StateType=JobStateType.COMPLETED)
    execution = Execution(
        ID="e-TEMPLATE",
        JobID=job.ID,
        NodeID="sim-00001",
        JobVersion=1,
        ComputeState=ComputeState(StateType=ComputeStateType.COMPLETED),
        DesiredState=DesiredState(StateType=DesiredStateType.STOPPED),
        CreateTime=job.CreateTime,
        ModifyTime=job.CreateTime,
    )
    batch = Batch(
        jobs={job.ID: job},
        new_versions=[job],
        executions={execution.ID: execution},
        evaluations=[Evaluation(ID="ev-TEMPLATE", JobID=job.ID, Type="batch")],
        events=[
            job_event(job.ID, "Submission", "Job submitted", None, JobStateType.PENDING, 1),
            execution_event(
                job.ID,
                execution.ID,
                "Scheduling",
                "Requested execution on sim-00001",
                ComputeStateType.NEW,
                ComputeStateType.ASK_FOR_BID,
            ),
            execution_event(
                job.ID,
                execution.ID,
                "ExecutionState",
                "Bid accepted",
                ComputeStateType.ASK_FOR_BID,
                ComputeStateType.BID_ACCEPTED,
            ),
            job_event(job.ID, "JobState", "Running", JobStateType.PENDING, JobStateType.RUNNING, 2),
            execution_event(
                job.ID,
                execution.ID,
                "ExecutionState",
                "Running",
                ComputeStateType.BID_ACCEPTED,
                ComputeStateType.RUNNING,
            ),
            execution_event(
                job.ID,
                execution.ID,
                "ExecutionState",
                "execution completed",
                ComputeStateType.RUNNING,
                ComputeStateType.COMPLETED,
            ),
            job_event(
                job.ID, "JobState", "Completed", JobStateType.RUNNING, JobStateType.COMPLETED, 3
            ),
        ],
    )
    template = Store._rows(batch)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")  # a fixture, not the orchestrator's own writes
    step = 5000
    for first in range(0, jobs, step):
        rows: dict[str, list[tuple[Any, ...]]] = {name: [] for name in template}
        for i in range(first, min(jobs, first + step)):
            ids = {
                "j-TEMPLATE": f"j-{uuid.uuid4()}",
                "e-TEMPLATE": f"e-{uuid.uuid4()}",
                "ev-TEMPLATE": f"ev-{uuid.uuid4()}",
            }
            for name, table in template.items():
                for row in table:
                    rows[name].append(tuple(_swap(value, ids, i) for value in row))
        db.execute("BEGIN")
        _write_rows(db, rows)
        db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


def _swap(value: Any, ids: dict[str, str], i: int) -> Any:
    if isinstance(value, str):
        for old, new in ids.items():
            value = value.replace(old, new)
        return value
    if isinstance(value, int) and value > 10**18:  # a time in ns: spread the jobs out
        return value - (10**9) * i
    return value


def bench_restart(args: argparse.Namespace) -> None:
    stored = args.stored_jobs
    print(f"== orchestrator restart with {stored:,} stored jobs ({load()})")
    with tempfile.TemporaryDirectory(prefix="bacedge-scale-") as tmp:
        data = Path(tmp) / "orch"
        start = time.perf_counter()
        fill_store(data / "orchestrator" / "state.db", stored)
        size = (data / "orchestrator" / "state.db").stat().st_size / 2**20
        print(
            f"  store of {stored:,} Completed jobs written in {time.perf_counter() - start:.0f} s"
            f" ({size:.0f} MiB)"
        )
        runs = [("empty store", Path(tmp) / "empty", False), (f"{stored:,} jobs", data, False)]
        if args.cold:
            runs.append((f"{stored:,}, cold", data, True))
        for label, where, cold in runs:
            for attempt in range(args.restarts):
                if cold and not drop_caches():
                    print("  (cannot drop the page cache here: no cold figures)")
                    return
                alive, listed = _boot(Path(tmp), where, args, f"restart-{attempt}")
                print(
                    f"  {label:>14}: API answers {alive:5.2f} s after start, "
                    f"GET /jobs {listed:5.2f} s   target <= 2 s"
                )


def drop_caches() -> bool:
    """A cold start: the store's pages out of the page cache (needs root)."""
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("1\n")
    except OSError:
        return False
    return True


def _boot(tmp: Path, data: Path, args: argparse.Namespace, tag: str) -> tuple[float, float]:
    scale = Scale(tmp)
    scale.profile, scale.tree, scale.settings = args.profile, args.orchestrator_tree, args.set
    try:
        start = time.perf_counter()
        scale.start_orchestrator(data, tag)
        alive = time.perf_counter() - start
        httpx.get(f"{scale.api}{JOBS}", params={"limit": 1}, timeout=30).raise_for_status()
        listed = time.perf_counter() - start
        return alive, listed
    finally:
        scale.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--only", default="placements,heartbeats,restart")
    parser.add_argument("--nodes", default="1000,10000", help="placement runs, nodes each")
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--count", type=int, default=500, help="Count of each batch job")
    parser.add_argument("--heartbeat-nodes", type=int, default=20_000)
    parser.add_argument("--window", type=float, default=60.0, help="heartbeat CPU window, s")
    parser.add_argument("--stored-jobs", type=int, default=100_000)
    parser.add_argument("--restarts", type=int, default=3)
    parser.add_argument(
        "--cold", action="store_true", help="restart also with the page cache dropped (root)"
    )
    parser.add_argument("--profile", type=Path, help="cProfile the orchestrator into DIR")
    parser.add_argument(
        "--orchestrator-tree",
        type=Path,
        help="run the orchestrator from this checkout (e.g. `git worktree add /tmp/before "
        "HEAD~3`), the simulated nodes from this one: before/after figures",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an orchestrator setting as its environment variable, e.g. "
        "BACEDGE_ORCHESTRATOR_PLAN_BATCH=500 (repeatable): figures for another configuration",
    )
    args = parser.parse_args()
    args.set = dict(item.split("=", 1) for item in args.set)
    only = {part.strip() for part in args.only.split(",")}
    if "placements" in only:
        for nodes in [int(n) for n in args.nodes.split(",") if n]:
            bench_placements(args, nodes)
    if "heartbeats" in only:
        bench_heartbeats(args)
    if "restart" in only:
        bench_restart(args)


if __name__ == "__main__":
    main()
