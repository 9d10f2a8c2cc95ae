"""Real bacedge processes for integration tests: orchestrator, compute nodes, NATS."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

BACEDGE = [sys.executable, "-m", "edge.cli.main"]


def noop_job(seconds: float = 0.0, count: int = 1) -> dict[str, Any]:
    """A batch job of `count` noop tasks that each take `seconds`."""
    params: dict[str, Any] = {"SleepSeconds": seconds} if seconds else {}
    return {
        "Type": "batch",
        "Count": count,
        "Tasks": [{"Name": "main", "Engine": {"Type": "noop", "Params": params}}],
    }


_GIVEN: set[int] = set()
_LOWEST = 10_000


def _ephemeral_low() -> int:
    """The lowest port the kernel hands to outgoing connections (32768 unless set)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A port nothing is bound to, below the kernel's ephemeral range and never handed out
    twice in a run: a port from `bind(0)` is an ephemeral one, which another test's
    outgoing connection could take before the server meant for it binds it."""
    high = _ephemeral_low() - 1
    rng = random.Random()
    for _ in range(500 if high > _LOWEST else 0):
        port = rng.randint(_LOWEST, high)
        if port in _GIVEN:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("0.0.0.0", port))  # taken on any address is taken
            except OSError:
                continue
        _GIVEN.add(port)
        return port
    with socket.socket() as sock:  # an unusual range: the kernel's choice
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: Any, timeout: float = 30.0, what: str = "condition") -> Any:
    """Poll `check` until it returns a truthy value; fail with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (httpx.HTTPError, OSError) as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


@dataclass
class Proc:
    name: str
    args: list[str]
    log: Path
    env: dict[str, str]
    popen: subprocess.Popen[bytes] | None = None
    prefix: list[str] = field(default_factory=list)  # e.g. `ip netns exec NS`: it execs

    def start(self) -> Proc:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        handle = self.log.open("ab")
        self.popen = subprocess.Popen(
            [*self.prefix, *BACEDGE, *self.args],
            stdout=handle,
            stderr=subprocess.STDOUT,
            env=self.env,
            start_new_session=True,
        )
        return self

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        self.popen.send_signal(sig)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()

    def kill(self) -> None:
        """SIGKILL: a crash, with no chance to clean up."""
        if self.popen is not None and self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait()

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@dataclass
class Cluster:
    root: Path
    api_port: int = field(default_factory=free_port)
    nats_port: int = field(default_factory=free_port)
    store_port: int = field(default_factory=free_port)  # orchestrator(store=True)
    procs: list[Proc] = field(default_factory=list)
    heartbeat: float = 1.0
    disconnect_grace: float = 0.0  # tests of failover need it at once; grace tests set it
    # Tests restart nodes and cut links far faster than any real node flaps: no back-off,
    # except in the tests of it, which set it.
    flap_limit: int = 0

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def nats(self) -> str:
        return f"nats://127.0.0.1:{self.nats_port}"

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BACEDGE_")}
        env.update(
            {
                "HOME": str(self.root / "home"),
                "BACEDGE_API": self.api,
                "BACEDGE_LOG_FORMAT": "text",
                "BACEDGE_PUBLISHERS_LOCAL_PORT": "0",  # many nodes on one machine
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(extra)
        return env

    def orchestrator(
        self, compute: bool = False, *extra: str, store: bool = False, **env: str
    ) -> Proc:
        """`serve --orchestrator` (with `--compute`, and the local S3 store with `store`)."""
        args = [
            "serve",
            "--orchestrator",
            "--data-dir",
            str(self.root / "orchestrator"),
            "--api-port",
            str(self.api_port),
            "--nats-port",
            str(self.nats_port),
            "--heartbeat-interval",
            str(self.heartbeat),
            *extra,
        ]
        if compute:
            args.insert(2, "--compute")
        if store:  # its data and credentials under root/orchestrator/store
            args += ["--store", "--store-port", str(self.store_port)]
        proc = Proc(
            "orchestrator",
            args,
            self.root / "logs" / "orchestrator.log",
            self.env(
                BACEDGE_ORCHESTRATOR_NODE_HEARTBEAT_TIMEOUT=str(self.heartbeat * 4),
                BACEDGE_ORCHESTRATOR_DISCONNECT_GRACE=str(self.disconnect_grace),
                BACEDGE_ORCHESTRATOR_FLAP_LIMIT=str(self.flap_limit),
                **env,
            ),
        ).start()
        self.procs.append(proc)
        self.wait_api(proc)
        return proc

    def compute(self, name: str, *extra: str, prefix: list[str] | None = None, **env: str) -> Proc:
        args = [
            "serve",
            "--compute",
            "--data-dir",
            str(self.root / name),
            "--orchestrators",
            self.nats,
            "--name",
            name,
            "--heartbeat-interval",
            str(self.heartbeat),
            *extra,
        ]
        log = self.root / "logs" / f"{name}.log"
        proc = Proc(name, args, log, self.env(**env), prefix=prefix or []).start()
        self.procs.append(proc)
        return proc

    def wait_api(self, proc: Proc, timeout: float = 30.0) -> None:
        def up() -> bool:
            if not proc.alive():
                raise AssertionError(f"{proc.name} exited:\n{proc.output()[-3000:]}")
            return httpx.get(f"{self.api}/api/v1/agent/alive", timeout=1).status_code == 200

        wait_until(up, timeout, "the orchestrator API")

    def nodes(self) -> list[dict[str, Any]]:
        body = httpx.get(f"{self.api}/api/v1/orchestrator/nodes", timeout=5).json()
        return list(body["Nodes"])

    def node_name(self, node_id: str) -> str:
        """The `--name` a node was started with (its `name` label)."""
        return next(
            str(n["Info"]["Labels"]["name"]) for n in self.nodes() if n["Info"]["NodeID"] == node_id
        )

    def wait_nodes(self, count: int, timeout: float = 30.0) -> list[dict[str, Any]]:
        def connected() -> list[dict[str, Any]]:
            nodes = [n for n in self.nodes() if n["ConnectionState"]["Status"] == "CONNECTED"]
            return nodes if len(nodes) >= count else []

        return list(wait_until(connected, timeout, f"{count} connected node(s)"))

    def submit(self, job: dict[str, Any]) -> str:
        response = httpx.put(f"{self.api}/api/v1/orchestrator/jobs", json={"Job": job}, timeout=10)
        assert response.status_code == 200, response.text
        return str(response.json()["JobID"])

    def job(self, job_id: str, include: str = "executions") -> dict[str, Any]:
        response = httpx.get(
            f"{self.api}/api/v1/orchestrator/jobs/{job_id}", params={"include": include}, timeout=5
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    def executions(self, job_id: str) -> list[dict[str, Any]]:
        """The job's executions (GET /jobs/{id} nests them as `{Items, NextToken}`)."""
        return list(self.job(job_id)["Executions"]["Items"])

    def wait_state(self, job_id: str, *states: str, timeout: float = 60.0) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            body = self.job(job_id)
            return body if body["Job"]["State"]["StateType"] in states else None

        return dict(wait_until(reached, timeout, f"job {job_id} to reach {states}"))

    def cli(
        self,
        *args: str,
        input: str | None = None,
        timeout: float = 60.0,
        check: bool = False,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [*BACEDGE, *args],
            capture_output=True,
            text=True,
            input=input,
            env=self.env(**(env or {})),
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"bacedge {' '.join(args)} failed: {result.stderr}")
        return result

    def close(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.output()[-4000:]}" for p in self.procs)
