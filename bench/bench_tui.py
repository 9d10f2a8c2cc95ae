"""TUI benchmark: the jobs screen against 10,000 jobs and 500 nodes.

Run: .venv/bin/python bench/bench_tui.py [--jobs 10000] [--nodes 500] [--api URL]

Starts an orchestrator (`bacedge serve`) and the nodes (`bacedge devstack --computes N`
joined to it), submits noop jobs and waits for them to finish, then runs the TUI headless
in a child process (so its memory is the TUI's alone) and prints:
  - time to first full paint of the jobs screen (from creating the app to the first frame
    with job rows; the rest of the list keeps loading page by page behind it),
  - time until all jobs are in the table,
  - time to apply one refresh where 1% of the rows changed (100 jobs rerun on the server;
    the TUI's clock is frozen for these, so ages ticking over do not add changed rows),
  - the TUI process's memory, and the log view at 100,000 lines.
Targets: first paint <= 2 s, refresh apply <= 150 ms. With --api it uses a running cluster.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BACEDGE, ROOT, free_port

JOBS = "/api/v1/orchestrator/jobs"
FIRST_PAINT_TARGET_S = 2.0
REFRESH_TARGET_S = 0.150


# --------------------------------------------------------------------------- cluster


def spawn(root: Path, name: str, *args: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACEDGE_")}
    env["BACEDGE_LOG_LEVEL"] = "warning"
    log = (root / f"{name}.log").open("wb")
    return subprocess.Popen(
        [*BACEDGE, *args], stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT
    )


def wait_for(check: Any, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"timed out waiting for {what}")


def connected_nodes(api: str) -> int:
    nodes = httpx.get(f"{api}/api/v1/orchestrator/nodes", timeout=10).json()["Nodes"]
    return sum(n["ConnectionState"]["Status"] == "CONNECTED" for n in nodes)


def count_jobs(api: str, state: str = "") -> int:
    total, token = 0, ""
    with httpx.Client(base_url=api, timeout=60) as client:
        while True:
            params = {"limit": "10000", "next_token": token}
            if state:
                params["state"] = state
            body = client.get(JOBS, params=params).json()
            total += len(body["Items"])
            token = body.get("NextToken") or ""
            if not token:
                return total


async def submit_jobs(api: str, count: int) -> float:
    started = time.perf_counter()
    gate = asyncio.Semaphore(64)
    async with aiohttp.ClientSession() as session:

        async def one(i: int) -> None:
            body = {
                "Job": {
                    "Name": f"bench-{i:05d}",
                    "Type": "batch",
                    "Labels": {"bench": "tui", "shard": str(i % 10)},
                    "Tasks": [{"Name": "main", "Engine": {"Type": "noop"}}],
                }
            }
            async with gate, session.put(f"{api}{JOBS}", json=body) as response:
                if response.status != 200:
                    raise SystemExit(f"submit failed: {await response.text()}")

        await asyncio.gather(*(one(i) for i in range(count)))
    return time.perf_counter() - started


# --------------------------------------------------------------------------- the TUI side


async def measure_tui(api: str, refreshes: int) -> dict[str, Any]:
    """Runs in the child process: the TUI headless against `api`."""
    from tui import BacedgeApp, ClusterTarget
    from tui.messages import DataRefreshed
    from tui.widgets import KeyedTable, LogView

    process = psutil.Process()
    rss_start = process.memory_info().rss
    out: dict[str, Any] = {}
    applied: list[DataRefreshed] = []
    app = BacedgeApp(ClusterTarget(api), start="jobs", refresh_interval=3600)

    def hook(message: object) -> None:
        if isinstance(message, DataRefreshed):
            applied.append(message)

    async def until(check: Any, timeout: float = 300.0) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise SystemExit("the TUI did not get there in time")
            await asyncio.sleep(0.005)

    async with app.run_test(size=(160, 48), message_hook=hook) as pilot:
        await until(lambda: app.timings.get("first_paint", -1) > 0)
        out["first_paint_s"] = app.timings["first_paint"]
        out["first_paint_rows"] = app.screen.query_one("#jobs-table", KeyedTable).row_count
        table = app.screen.query_one("#jobs-table", KeyedTable)
        await until(lambda: app.data.jobs_complete and table.row_count >= len(app.data.jobs))
        await pilot.pause()
        out["all_jobs_s"] = app.timings["all_jobs_at"]
        out["rows"] = table.row_count
        out["rss_loaded_mb"] = process.memory_info().rss / 2**20
        out["rss_start_mb"] = rss_start / 2**20

        frozen = time.time()
        app.clock = lambda: frozen
        await pilot.press("ctrl+r")  # settle with the frozen clock before measuring
        await until(lambda: app._poll_worker is None)
        ids = list(app.data.jobs)
        changed = max(1, len(ids) // 100)
        samples: list[dict[str, float]] = []
        async with httpx.AsyncClient(base_url=api, timeout=30) as client:
            for _ in range(refreshes):
                picked = random.sample(ids, changed)
                await asyncio.gather(*(client.put(f"{JOBS}/{j}/rerun", json={}) for j in picked))
                await asyncio.sleep(1.0)  # let the reruns run (noop jobs finish fast)
                before = len(applied)
                painted: list[float] = []
                started = time.perf_counter()
                await pilot.press("ctrl+r")
                await until(lambda: len(applied) > before)  # noqa: B023
                fetched_at = time.perf_counter()
                app.call_after_refresh(lambda: painted.append(time.perf_counter()))  # noqa: B023
                await until(lambda: bool(painted))  # noqa: B023
                message = applied[-1]
                diff = table.last_diff
                samples.append(
                    {
                        "apply_s": message.seconds,
                        "apply_paint_s": message.seconds + (painted[0] - fetched_at),
                        "poll_s": fetched_at - started - message.seconds,
                        "updated_rows": diff.updated + diff.added,
                        "changed_jobs": len(app.data.changed_jobs),
                    }
                )
        out["refresh"] = samples
        out["rss_end_mb"] = process.memory_info().rss / 2**20

        # The log view at 100,000 lines: append in stream-sized batches, filter, jump.
        await pilot.press("6")
        await pilot.pause()
        view = app.screen.query_one(LogView)
        lines = [
            (2 if i % 997 == 0 else 1, f"line {i} {'error: disk full' if i % 997 == 0 else 'ok'}\n")
            for i in range(100_000)
        ]
        started = time.perf_counter()
        worst = 0.0
        for first in range(0, len(lines), 1000):
            batch_started = time.perf_counter()
            view.append(lines[first : first + 1000])
            worst = max(worst, time.perf_counter() - batch_started)
        await pilot.pause()
        out["log_append_100k_s"] = time.perf_counter() - started
        out["log_append_batch_worst_s"] = worst
        import re

        started = time.perf_counter()
        view.set_filter(re.compile("error", re.IGNORECASE))
        await pilot.pause()
        out["log_filter_100k_s"] = time.perf_counter() - started
        out["log_filter_matches"] = view.shown
        view.set_filter(None)
        started = time.perf_counter()
        view.follow = False
        view.scroll_home(animate=False, force=True)
        for _ in range(20):
            view.next_error()
        await pilot.pause()
        out["log_next_error_x20_s"] = time.perf_counter() - started
        out["log_lines_kept"] = view.total
    return out


def run_child(api: str, refreshes: int) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, __file__, "--child", "--api", api, "--refreshes", str(refreshes)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "TEXTUAL_ANIMATIONS": "none"},
    )
    for line in result.stdout.splitlines():
        if line.startswith("{"):
            return dict(json.loads(line))
    raise SystemExit(f"the TUI child failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")


def report(figures: dict[str, Any], jobs: int, nodes: int) -> None:
    def verdict(value: float, target: float) -> str:
        return f"{'OK  ' if value <= target else 'MISS'} (target <= {target * 1000:.0f} ms)"

    refresh = figures["refresh"]
    apply = [s["apply_s"] for s in refresh]
    painted = [s["apply_paint_s"] for s in refresh]
    print(f"\nbacedge tui, {jobs:,} jobs and {nodes} nodes, jobs screen 160x48 (headless)")
    first = figures["first_paint_s"]
    mark = verdict(first, FIRST_PAINT_TARGET_S)
    print(
        f"  first full paint          {first * 1000:8.0f} ms  {mark}"
        f"  ({figures['first_paint_rows']} rows on the first page)"
    )
    print(f"  all {figures['rows']:,} rows in the table {figures['all_jobs_s'] * 1000:8.0f} ms")
    med = statistics.median(apply)
    print(
        f"  refresh apply, 1% changed {med * 1000:8.1f} ms  {verdict(med, REFRESH_TARGET_S)}"
        f"  median of {len(apply)}, max {max(apply) * 1000:.1f} ms"
    )
    print(
        f"  ... until painted         {statistics.median(painted) * 1000:8.1f} ms"
        f"  (max {max(painted) * 1000:.1f} ms); the poll itself took "
        f"{statistics.median(s['poll_s'] for s in refresh) * 1000:.0f} ms"
    )
    rows = [int(s["updated_rows"]) for s in refresh]
    median_rows = statistics.median(rows)
    print(f"  rows updated per refresh  {median_rows:8.0f}     (of {figures['rows']:,})")
    print(
        f"  TUI memory (RSS)          {figures['rss_end_mb']:8.1f} MB  "
        f"({figures['rss_start_mb']:.1f} MB before the app started)"
    )
    print(
        f"  log view 100k lines       {figures['log_append_100k_s'] * 1000:8.0f} ms to append "
        f"(worst 1000-line batch {figures['log_append_batch_worst_s'] * 1000:.1f} ms), "
        f"filter {figures['log_filter_100k_s'] * 1000:.0f} ms "
        f"({figures['log_filter_matches']} matches), 20x next error "
        f"{figures['log_next_error_x20_s'] * 1000:.0f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--nodes", type=int, default=500)
    parser.add_argument("--refreshes", type=int, default=5)
    parser.add_argument("--api", help="use this running cluster instead of starting one")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(measure_tui(args.api, args.refreshes))))
        return
    if args.api:
        figures = run_child(args.api, args.refreshes)
        report(figures, count_jobs(args.api), connected_nodes(args.api))
        return
    with tempfile.TemporaryDirectory(prefix="bacedge-bench-tui-") as tmp:
        root = Path(tmp)
        api_port, nats_port = free_port(), free_port()
        api = f"http://127.0.0.1:{api_port}"
        procs = [
            spawn(
                root,
                "orchestrator",
                "serve",
                "--orchestrator",
                "--data-dir",
                str(root / "orchestrator"),
                "--api-port",
                str(api_port),
                "--nats-port",
                str(nats_port),
            )
        ]
        try:
            wait_for(lambda: httpx.get(f"{api}/api/v1/agent/alive").status_code == 200, "the API")
            procs.append(
                spawn(
                    root,
                    "devstack",
                    "devstack",
                    "--computes",
                    str(args.nodes),
                    "--data-dir",
                    str(root / "nodes"),
                    "--orchestrators",
                    f"nats://127.0.0.1:{nats_port}",
                )
            )
            started = time.perf_counter()
            wait_for(lambda: connected_nodes(api) >= args.nodes, f"{args.nodes} nodes")
            print(f"{args.nodes} nodes connected in {time.perf_counter() - started:.1f}s")
            seconds = asyncio.run(submit_jobs(api, args.jobs))
            print(f"{args.jobs:,} jobs submitted in {seconds:.1f}s")
            wait_for(lambda: count_jobs(api, "Completed") >= args.jobs, "the jobs to finish", 900)
            figures = run_child(api, args.refreshes)
            report(figures, args.jobs, args.nodes)
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()


if __name__ == "__main__":
    main()
