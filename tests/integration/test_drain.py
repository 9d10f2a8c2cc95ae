"""Cordon, uncordon and drain on a fleet of real compute node processes."""

from __future__ import annotations

from typing import Any

import httpx

from .cluster import Cluster, wait_until

API = "/api/v1/orchestrator"
RUNNING, COMPLETED, CANCELLED = 6, 9, 11


def noop(name: str, kind: str, sleep: float = 600, **spec: Any) -> dict[str, Any]:
    engine = {"Type": "noop", "Params": {"SleepSeconds": sleep}}
    return {"Name": name, "Type": kind, "Tasks": [{"Name": "main", "Engine": engine}], **spec}


def test_cordon_and_drain_move_work_off_a_node(cluster: Cluster) -> None:
    cluster.orchestrator(False, BACEDGE_ORCHESTRATOR_RESTART_DELAY="0.2")
    for name in ("edge-a", "edge-b", "edge-c"):
        cluster.compute(name, "--engines", "noop")
    ids = {n["Info"]["Labels"]["name"]: n["Info"]["NodeID"] for n in cluster.wait_nodes(3)}
    names = {v: k for k, v in ids.items()}

    def on(job_id: str, state: int = RUNNING) -> list[str]:
        return sorted(
            names[e["NodeID"]]
            for e in cluster.executions(job_id)
            if e["ComputeState"]["StateType"] == state
        )

    # Cordoned nodes get no new work; the list shows them.
    for name in ("edge-b", "edge-c"):
        done = cluster.cli("node", "cordon", ids[name], "-m", "maintenance", check=True)
        assert "cordoned" in done.stdout
    listing = cluster.cli("node", "list", "--wide", check=True).stdout
    assert listing.count("CONNECTED,CORDONED") == 2, listing
    again = cluster.cli("node", "cordon", ids["edge-b"])
    assert again.returncode != 0 and "already cordoned" in again.stderr
    long = cluster.submit(noop("long", "batch"))
    web = cluster.submit(noop("web", "service"))
    watch = cluster.submit(noop("watch", "daemon"))
    for job_id in (long, web, watch):
        wait_until(lambda j=job_id: on(j) == ["edge-a"], 30, "work on the only eligible node")

    # Uncordoned, they take work again: the daemon starts there.
    for name in ("edge-b", "edge-c"):
        cluster.cli("node", "uncordon", ids[name], check=True)
    wait_until(lambda: on(watch) == ["edge-a", "edge-b", "edge-c"], 30, "daemons everywhere")

    # Drain: the service replica moves, the daemon leaves, batch work finishes there.
    here = [{"Key": "name", "Operator": "=", "Values": ["edge-a"]}]
    short = cluster.submit(noop("short", "batch", sleep=8, Constraints=here))
    wait_until(lambda: on(short) == ["edge-a"], 30, "a short batch job on the node")
    cluster.cli("node", "drain", ids["edge-a"], check=True)
    wait_until(lambda: len(on(web)) == 1 and on(web) != ["edge-a"], 30, "the replica to move")
    wait_until(lambda: on(watch) == ["edge-b", "edge-c"], 30, "the daemon to leave")
    moved = [e for e in cluster.executions(web) if e["ComputeState"]["StateType"] == CANCELLED]
    assert [names[e["NodeID"]] for e in moved] == ["edge-a"]
    assert "draining" in moved[0]["ComputeState"]["Message"]
    assert on(long) == ["edge-a"]
    body = cluster.wait_state(short, "Completed", timeout=60)
    assert [names[e["NodeID"]] for e in body["Executions"]["Items"]] == ["edge-a"]
    node = httpx.get(f"{cluster.api}{API}/nodes/{ids['edge-a']}").json()["Node"]
    assert node["Scheduling"]["Status"] == "DRAINING"
    assert "DRAINING" in cluster.cli("node", "describe", ids["edge-a"], check=True).stdout

    # At the deadline, the batch work still there moves too; then the node is drained.
    cluster.cli("node", "drain", ids["edge-a"], "--deadline", "0s", check=True)
    wait_until(lambda: len(on(long)) == 1 and on(long) != ["edge-a"], 30, "the batch work to move")
    assert on(long, CANCELLED) == ["edge-a"]

    def drained() -> bool:
        state = httpx.get(f"{cluster.api}{API}/nodes/{ids['edge-a']}").json()["Node"]
        return bool(state["Scheduling"]["Status"] == "DRAINED")

    wait_until(drained, 30, "the node to be drained")
    cluster.cli("node", "uncordon", ids["edge-a"], check=True)
    wait_until(lambda: "edge-a" in on(watch), 30, "the daemon back on the node")


def test_drain_of_an_unknown_node_is_a_one_line_404(cluster: Cluster) -> None:
    cluster.orchestrator()
    response = httpx.put(
        f"{cluster.api}{API}/nodes/n-nope", json={"Action": "drain", "Deadline": "5m"}
    )
    assert response.status_code == 404
    assert response.json()["Message"] == "node 'n-nope' not found: check `bacedge node list`"
    result = cluster.cli("node", "drain", "n-nope")
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert "not found" in result.stderr
    bad = cluster.cli("node", "drain", "n-nope", "--deadline", "soon")
    assert bad.returncode != 0 and "not a duration" in bad.stderr
