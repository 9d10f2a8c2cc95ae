"""Shared by the benchmarks: start a real cluster, summarise timings, read RSS."""

from __future__ import annotations

import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
BACEDGE = [sys.executable, "-m", "edge.cli.main"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def describe(values_s: list[float]) -> str:
    ms = [v * 1000 for v in values_s]
    return (
        f"p50 {percentile(ms, 50):7.2f} ms  p99 {percentile(ms, 99):7.2f} ms  "
        f"mean {statistics.fmean(ms):7.2f} ms  n={len(ms)}"
    )


def rss_mb(pid: int, children: bool = True) -> float:
    """RSS in MiB of a process and (unless `children` is false) its children (nats-server is
    the orchestrator's child)."""
    proc = psutil.Process(pid)
    total = proc.memory_info().rss
    for child in proc.children(recursive=True) if children else ():
        with suppress(psutil.NoSuchProcess):
            total += child.memory_info().rss
    return total / 2**20


@dataclass
class BenchCluster:
    root: Path
    api_port: int = field(default_factory=free_port)
    nats_port: int = field(default_factory=free_port)
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    extra: tuple[str, ...] = ()  # more `serve` flags for the first process (e.g. --store)
    env: dict[str, str] = field(default_factory=dict)

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def _spawn(self, *args: str, command: list[str] | None = None) -> subprocess.Popen[bytes]:
        """`bacedge ARGS` (or `command ARGS`) in its own session, logging to the root."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("BACEDGE_")}
        env["BACEDGE_LOG_LEVEL"] = "warning"
        env["BACEDGE_PUBLISHERS_LOCAL_PORT"] = "0"
        env.update(self.env)
        log = (self.root / f"proc{len(self.procs)}.log").open("wb")
        proc = subprocess.Popen(
            [*(command or BACEDGE), *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            cwd=ROOT,
        )
        self.procs.append(proc)
        return proc

    def start(self, computes: int, engines: str) -> None:
        common = [
            "--api-port",
            str(self.api_port),
            "--nats-port",
            str(self.nats_port),
            "--engines",
            engines,
        ]
        if computes == 1:
            self._spawn(
                "serve",
                "--orchestrator",
                "--compute",
                "--data-dir",
                str(self.root / "single"),
                *common,
                *self.extra,
            )
        else:
            self._spawn(
                "serve",
                "--orchestrator",
                "--data-dir",
                str(self.root / "orch"),
                *common,
                *self.extra,
            )
        self.wait(lambda: httpx.get(f"{self.api}/api/v1/agent/alive").status_code == 200)
        for i in range(computes if computes > 1 else 0):
            self._spawn(
                "serve",
                "--compute",
                "--data-dir",
                str(self.root / f"c{i}"),
                "--orchestrators",
                f"nats://127.0.0.1:{self.nats_port}",
                "--engines",
                engines,
                "--name",
                f"c{i}",
            )

        def connected() -> bool:
            nodes = httpx.get(f"{self.api}/api/v1/orchestrator/nodes").json()["Nodes"]
            return sum(n["ConnectionState"]["Status"] == "CONNECTED" for n in nodes) >= computes

        self.wait(connected)

    @staticmethod
    def wait(check: object, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if check():  # type: ignore[operator]
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise TimeoutError("cluster did not come up")

    def start_split(self, engines: str, compute_extra: tuple[str, ...] = ()) -> None:
        """An orchestrator-only process, then one compute-only process (procs[1]) with
        `engines`, joined over NATS: the compute process's RSS is its own."""
        self._spawn(
            "serve",
            "--orchestrator",
            "--data-dir",
            str(self.root / "orch"),
            "--api-port",
            str(self.api_port),
            "--nats-port",
            str(self.nats_port),
            *self.extra,
        )
        self.wait(lambda: httpx.get(f"{self.api}/api/v1/agent/alive").status_code == 200)
        self._spawn(
            "serve",
            "--compute",
            "--data-dir",
            str(self.root / "compute"),
            "--orchestrators",
            f"nats://127.0.0.1:{self.nats_port}",
            "--engines",
            engines,
            "--name",
            "compute",
            *compute_extra,
        )
        wanted = set(engines.split(","))

        def connected() -> bool:
            if self.procs[1].poll() is not None:
                raise RuntimeError(f"the compute process exited: see {self.root}/proc1.log")
            nodes = httpx.get(f"{self.api}/api/v1/orchestrator/nodes").json()["Nodes"]
            return any(
                n["ConnectionState"]["Status"] == "CONNECTED"
                and wanted <= set(n["Info"]["ComputeNodeInfo"]["ExecutionEngines"])
                for n in nodes
            )

        self.wait(connected)

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


@contextmanager
def cluster(
    computes: int,
    engines: str = "wasm,noop",
    extra: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
) -> Iterator[BenchCluster]:
    with tempfile.TemporaryDirectory(prefix="bacedge-bench-") as tmp:
        c = BenchCluster(Path(tmp), extra=extra, env=dict(env or {}))
        try:
            c.start(computes, engines)
            yield c
        finally:
            c.stop()


@contextmanager
def split_cluster(
    engines: str, compute_extra: tuple[str, ...] = (), env: dict[str, str] | None = None
) -> Iterator[BenchCluster]:
    """An orchestrator process and a separate compute-only process (procs[1])."""
    with tempfile.TemporaryDirectory(prefix="bacedge-bench-") as tmp:
        root = Path(tmp)
        root.chmod(0o755)  # a rootless Podman service user must reach dirs under it
        c = BenchCluster(root, env=dict(env or {}))
        try:
            c.start_split(engines, compute_extra)
            yield c
        finally:
            c.stop()
