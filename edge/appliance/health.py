"""The appliance's boot health check: one console line that says whether the device works.

`bacedge-appliance: ready node=<node id> wasm=ok docker=ok store=ok`, or
`bacedge-appliance: degraded node=... wasm=fail ... (wasm: why; provision: file line N: why)`.
It checks what an operator needs after flashing: the API answers, this node is connected,
the local store answers, a wasm job and a docker job (the preloaded busybox image,
publishing to the local store) run. It drives the real CLI as a user would, so what it
proves is what the operator gets.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import httpx

from edge.appliance import status as appliance_status
from edge.config import ConfigError, load_config

BACEDGE = "/opt/bacedge/bin/bacedge"
DATA = Path("/var/lib/bacedge")
IMAGES = Path("/usr/share/bacedge/images")
SELFTEST_WASM = Path("/usr/share/bacedge/selftest/hello.wasm")
BUSYBOX = "localhost/busybox:latest"


@dataclass
class Report:
    node: str = "unknown"
    parts: dict[str, str] = field(default_factory=dict)  # part -> "ok" | "fail" | "skip"
    reasons: dict[str, str] = field(default_factory=dict)

    def set(self, part: str, ok: bool, reason: str = "") -> None:
        self.parts[part] = "ok" if ok else "fail"
        if not ok:
            self.reasons[part] = (
                reason.strip().splitlines()[-1][:200] if reason.strip() else "failed"
            )

    def line(self) -> str:
        ready = not self.reasons
        shown = " ".join(f"{p}={self.parts.get(p, 'skip')}" for p in ("wasm", "docker", "store"))
        head = f"bacedge-appliance: {'ready' if ready else 'degraded'} node={self.node} {shown}"
        if ready:
            return head
        return head + " (" + "; ".join(f"{p}: {r}" for p, r in self.reasons.items()) + ")"


def _cli(*args: str, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            [BACEDGE, *args], capture_output=True, text=True, env=env, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(args, 124, "", f"timed out after {timeout:.0f}s")


def _wait(check: Callable[[], str | None], timeout: float) -> str | None:
    """Polls `check` (None means fine) until it passes or `timeout`; the last problem."""
    deadline = time.monotonic() + timeout
    problem = check()
    while problem is not None and time.monotonic() < deadline:
        time.sleep(2)
        problem = check()
    return problem


def configured_api(path: Path | None = None) -> str:
    """The API the device's CLI uses: its own on a standalone device, the hub's (provisioned
    `[orchestrator] api`) on a compute device. A broken config falls back to the local one;
    provisioning reports the broken file."""
    try:
        return load_config(path).client.api
    except (ConfigError, OSError, ValueError):
        return "http://127.0.0.1:1234"


def check(timeout: float = 900.0, role: str = "standalone") -> Report:
    report = Report()
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "LC_ALL": "C.UTF-8"}
    token = Path("/etc/bacedge/credentials/api-token")
    if token.exists():
        env["BACEDGE_API_KEY"] = token.read_text().strip()
    api = os.environ.get("BACEDGE_API") or configured_api()
    headers = {"Authorization": f"Bearer {env.get('BACEDGE_API_KEY', '')}"}
    start = time.monotonic()

    def left() -> float:
        return max(10.0, timeout - (time.monotonic() - start))

    provision = Path("/run/bacedge-appliance/provision.json")
    if provision.exists():
        status = json.loads(provision.read_text())
        if not status.get("ok"):
            report.reasons["provision"] = status.get("problem", "failed")

    store = _cli("store", "status", "--output", "json", env=env, timeout=60)

    def store_alive() -> str | None:
        nonlocal store
        store = _cli("store", "status", "--output", "json", env=env, timeout=60)
        return None if store.returncode == 0 else (store.stderr or store.stdout or "no answer")

    report.set("store", (problem := _wait(store_alive, min(left(), 300))) is None, problem or "")

    if role == "orchestrator":
        report.node = os.uname().nodename
    else:
        node_file = DATA / "compute" / "node_id"
        missing = _wait(lambda: None if node_file.exists() else "no node ID yet", min(left(), 300))
        report.node = node_file.read_text().strip() if missing is None else "unknown"

    def alive() -> str | None:
        try:
            httpx.get(f"{api}/api/v1/agent/alive", timeout=5).raise_for_status()
            return None
        except httpx.HTTPError as exc:
            return f"API at {api} does not answer ({exc.__class__.__name__})"

    if (problem := _wait(alive, min(left(), 300))) is not None:
        report.reasons["api"] = problem
        return report
    if role == "orchestrator":
        return report

    def connected() -> str | None:
        try:
            got = httpx.get(
                f"{api}/api/v1/orchestrator/nodes/{report.node}", headers=headers, timeout=5
            )
            if got.status_code == 404:
                return f"node {report.node} is not known to the orchestrator"
            got.raise_for_status()
            state = got.json()["Node"]["ConnectionState"]["Status"]
            return None if state == "CONNECTED" else f"node {report.node} is {state}"
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            return f"cannot read node {report.node} ({exc.__class__.__name__})"

    if (problem := _wait(connected, min(left(), 300))) is not None:
        report.reasons["node"] = problem

    wasm = _cli("wasm", "run", str(SELFTEST_WASM), "--", "appliance-selftest", env=env)
    out = wasm.stdout.splitlines()
    report.set("wasm", wasm.returncode == 0 and out[:1] == ["appliance-selftest"], wasm.stderr)

    docker_ok, why = _docker(env)
    report.set("docker", docker_ok, why)
    return report


def _docker(env: dict[str, str]) -> tuple[bool, str]:
    """Load the preloaded archives (idempotent), run busybox, find its result in the store."""
    for archive in sorted(IMAGES.glob("*.tar")):
        loaded = _cli("image", "load", "--user", "bacedge", str(archive), env=env, timeout=300)
        if loaded.returncode != 0:
            return False, f"image {archive.name}: {loaded.stderr}"
    run = _cli(
        "docker",
        "run",
        "--id-only",
        "-p",
        "s3://results/appliance-selftest/{jobID}/",
        BUSYBOX,
        "--",
        "sh",
        "-c",
        "echo appliance-selftest",
        env=env,
    )
    job = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else ""
    if run.returncode != 0 or not job:
        return False, run.stderr or f"docker job exited {run.returncode}"
    listed = _cli("store", "ls", f"s3://results/appliance-selftest/{job}/", env=env, timeout=60)
    if listed.returncode != 0 or ".tar.gz" not in listed.stdout:
        return False, f"no result of {job} in s3://results/appliance-selftest/ {listed.stderr}"
    return True, ""


def main(timeout: float = 900.0) -> int:
    role_file = Path("/etc/bacedge/appliance-role")
    role = role_file.read_text().strip() if role_file.exists() else "standalone"
    report = check(timeout, role)
    line = report.line()
    print(line, flush=True)
    status = {
        "ready": not report.reasons,
        "node": report.node,
        **report.parts,
        "reasons": report.reasons,
        "line": line,
        "checked": datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
    }
    out = appliance_status.STATUS
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_suffix(".partial")
    partial.write_text(json.dumps(status) + "\n")
    partial.chmod(0o644)  # the API (the service user) reports it in agent/alive
    partial.replace(out)
    return 0 if not report.reasons else 1
