"""GET /api/v1/orchestrator/events against real processes: job, execution and node lifecycle
events as Server-Sent Events, in order with increasing Seq; filters; a subscriber that never
reads is dropped (overflow) with the server's memory bounded; the subscriber cap (503); auth."""

from __future__ import annotations

import itertools
import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from edge.client import ApiClient, ApiError

from .cluster import Cluster, wait_until

pytestmark = pytest.mark.integration

API = "/api/v1/orchestrator"
EVENTS = f"{API}/events"


def noop(name: str, count: int = 1) -> dict[str, Any]:
    return {
        "Name": name,
        "Type": "batch",
        "Count": count,
        "Tasks": [{"Name": "main", "Engine": {"Type": "noop"}}],
    }


class Follower:
    """Events collected in a thread through ApiClient.follow_events."""

    def __init__(self, api: str, **kwargs: Any) -> None:
        self.events: list[dict[str, Any]] = []
        self.error: BaseException | None = None
        self.client = ApiClient(api)
        self.kwargs = kwargs
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            for event in self.client.follow_events(**self.kwargs):
                self.events.append(event)
        except BaseException as exc:
            self.error = exc

    def of(self, kind: str, **match: str) -> list[dict[str, Any]]:
        return [
            e
            for e in list(self.events)
            if e["Type"] == kind and all(e.get(k) == v for k, v in match.items())
        ]


def _subscribers(cluster: Cluster) -> int:
    text = httpx.get(f"{cluster.api}/metrics", timeout=5).text
    found = re.search(r"^bacedge_event_subscribers (\S+)$", text, re.M)
    return int(float(found.group(1))) if found else -1


def _wait_subscribers(cluster: Cluster, count: int) -> None:
    wait_until(lambda: _subscribers(cluster) == count, 15, f"{count} event subscriber(s)")


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


@pytest.fixture
def orch(cluster: Cluster) -> Iterator[Cluster]:
    cluster.orchestrator(False)
    yield cluster


def test_lifecycle_events_in_order_and_filters(orch: Cluster) -> None:
    everything = Follower(orch.api)
    nodes_only = Follower(orch.api, types=["node"])
    _wait_subscribers(orch, 2)
    orch.compute("n1", "--engines", "noop")
    wait_until(lambda: everything.of("node.connection", Connection="CONNECTED"), 30, "node")
    joined = everything.of("node.connection")[0]
    assert joined["Previous"] == "" and joined["Membership"] == "APPROVED"
    assert joined["NodeID"] and joined["Scheduling"]

    job_id = orch.submit(noop("events-1"))
    orch.wait_state(job_id, "Completed")
    wait_until(lambda: everything.of("job.state", JobID=job_id, State="Completed"), 15, "done")

    jobs = everything.of("job.state", JobID=job_id)
    states = [e["State"] for e in jobs]
    assert states[-1] == "Completed" and "Running" in states, states
    assert states.index("Running") < states.index("Completed")
    if "Pending" in states:
        assert states.index("Pending") < states.index("Running")
    executions = everything.of("execution.state", JobID=job_id)
    labels = [e["State"] for e in executions]
    assert labels[-1] == "Completed" and "Running" in labels, labels
    assert all(e["ExecutionID"] and e["NodeID"] == joined["NodeID"] for e in executions)
    for previous, event in itertools.pairwise(executions):
        assert event["Previous"] == previous["State"]

    seqs = [e["Seq"] for e in everything.events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert all(re.match(r"\d{4}-\d\d-\d\dT", e["Time"]) for e in everything.events)

    assert nodes_only.events and all(e["Type"].startswith("node.") for e in nodes_only.events)
    only_job = Follower(orch.api, job_id=job_id)
    _wait_subscribers(orch, 3)
    other = orch.submit(noop("events-2"))
    assert httpx.put(f"{orch.api}{API}/jobs/{job_id}/rerun", timeout=10).status_code == 200
    orch.wait_state(other, "Completed")
    wait_until(lambda: only_job.of("job.state", State="Completed"), 15, "the job's own")
    assert all(e.get("JobID") == job_id for e in only_job.events)

    # node actions: membership and scheduling
    node_id = joined["NodeID"]
    orch.cli("node", "cordon", node_id)
    wait_until(lambda: everything.of("node.scheduling", Scheduling="CORDONED"), 15, "cordon")

    bad = httpx.get(f"{orch.api}{EVENTS}", params={"types": "gopher"}, timeout=5)
    assert bad.status_code == 400 and "unknown event type 'gopher'" in bad.json()["Message"]
    assert all(f.error is None for f in (everything, nodes_only, only_job))
    assert httpx.get(f"{orch.api}/api/v1/agent/alive", timeout=5).status_code == 200


def test_a_subscriber_that_never_reads_is_dropped_and_memory_stays_bounded(
    cluster: Cluster,
) -> None:
    proc = cluster.orchestrator(True, "--engines", "noop")
    cluster.wait_nodes(1)
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # and never read
    stalled.connect(("127.0.0.1", cluster.api_port))
    stalled.sendall(f"GET {EVENTS} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    reader = Follower(cluster.api, types=["job"])
    _wait_subscribers(cluster, 2)
    rss_start = _rss_kib(proc.popen.pid)  # type: ignore[union-attr]
    overflowed = False
    alive_ms: list[float] = []
    rss: list[int] = []
    with httpx.Client(base_url=cluster.api, timeout=30) as http:
        for i in range(60):
            response = http.put(f"{API}/jobs", json={"Job": noop(f"flood-{i}", count=20)})
            assert response.status_code == 200, response.text
            started = time.monotonic()
            assert http.get("/api/v1/agent/alive").status_code == 200
            alive_ms.append((time.monotonic() - started) * 1000)
            rss.append(_rss_kib(proc.popen.pid))  # type: ignore[union-attr]
            if _subscribers(cluster) == 1:
                overflowed = True
                break
    if not overflowed:
        wait_until(lambda: _subscribers(cluster) == 1, 60, "the stalled subscriber dropped")
    metrics = httpx.get(f"{cluster.api}/metrics", timeout=5).text
    assert re.search(r"^bacedge_event_overflows_total 1(\.0)?$", metrics, re.M), metrics
    # the stalled socket is cut: reading it to the end finishes (EOF or reset)
    stalled.settimeout(15)
    received = b""
    try:
        while chunk := stalled.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    stalled.close()
    assert received.startswith(b"HTTP/1.1 200")
    print(
        f"events: {reader.events[-1]['Seq'] if reader.events else 0} published; "
        f"RSS {rss_start} -> max {max(rss)} KiB over {len(rss)} submissions; "
        f"alive max {max(alive_ms):.0f} ms, median {sorted(alive_ms)[len(alive_ms) // 2]:.0f} ms"
    )
    assert reader.error is None and _subscribers(cluster) == 1  # the reader keeps up


def test_subscriber_cap_answers_503(orch: Cluster) -> None:
    clients = [httpx.Client(base_url=orch.api, timeout=10) for _ in range(65)]
    streams = []
    try:
        for client in clients[:64]:
            stream = client.stream("GET", EVENTS)
            response = stream.__enter__()
            assert response.status_code == 200
            streams.append(stream)
        _wait_subscribers(orch, 64)
        refused = clients[64].get(EVENTS)
        assert refused.status_code == 503
        assert "64 event subscribers already" in refused.json()["Message"]
        with pytest.raises(ApiError) as raised, ApiClient(orch.api) as api:
            next(iter(api.follow_events()))
        assert raised.value.status == 503
    finally:
        for stream in streams:
            stream.__exit__(None, None, None)
        for client in clients:
            client.close()
    _wait_subscribers(orch, 0)
    assert httpx.get(f"{orch.api}{EVENTS}", timeout=5, params={"types": "x"}).status_code == 400


def test_auth_rules_apply(cluster: Cluster, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        "\n".join(
            [
                "[[api.auth.users]]",
                'alias = "reader"',
                'api_key = "jr-0123456789abcdef"',
                'capabilities = [{ actions = ["read:job"] }]',
                "",
                "[[api.auth.users]]",
                'alias = "noder"',
                'api_key = "nr-0123456789abcdef"',
                'capabilities = [{ actions = ["read:node"] }]',
                "",
            ]
        )
    )
    cluster.orchestrator(False, "--config", str(config))
    url = f"{cluster.api}{EVENTS}"
    assert httpx.get(url, timeout=5).status_code == 401
    wrong = {"Authorization": "Bearer wrong-0123456789"}
    assert httpx.get(url, headers=wrong, timeout=5).status_code == 401
    refused = httpx.get(url, headers={"Authorization": "Bearer nr-0123456789abcdef"}, timeout=5)
    assert refused.status_code == 403 and "read:job" in refused.json()["Message"]
    headers = {"Authorization": "Bearer jr-0123456789abcdef"}
    with httpx.stream("GET", url, headers=headers, timeout=5) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        first = next(response.iter_lines())
        assert first.startswith(":")
    assert json.loads(httpx.get(f"{cluster.api}/api/v1/agent/alive").text)["Status"] == "OK"
