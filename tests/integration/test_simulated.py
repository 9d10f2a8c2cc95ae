"""Simulated nodes (`bacedge devstack --simulated`): fifty real agents in one process, one
NATS connection and one ledger file between them, against a real orchestrator."""

from __future__ import annotations

from pathlib import Path

import httpx

from .cluster import Cluster, Proc, wait_until

API = "/api/v1/orchestrator"
NODES = [f"sim-{i:05d}" for i in range(1, 51)]


def simulator(cluster: Cluster, data: Path) -> Proc:
    args = [
        "devstack",
        "--simulated",
        "--computes",
        str(len(NODES)),
        "--orchestrators",
        cluster.nats,
        "--data-dir",
        str(data),
        "--heartbeat-interval",
        str(cluster.heartbeat),
    ]
    proc = Proc("simulator", args, cluster.root / "logs" / "simulator.log", cluster.env()).start()
    cluster.procs.append(proc)
    return proc


def noop(kind: str, count: int = 0) -> dict[str, object]:
    job: dict[str, object] = {"Type": kind, "Tasks": [{"Engine": {"Type": "noop"}}]}
    return {**job, "Count": count} if count else job


def test_simulated_nodes_join_run_jobs_and_keep_their_ids(cluster: Cluster) -> None:
    cluster.orchestrator()
    data = cluster.root / "sim"
    sim = simulator(cluster, data)
    nodes = cluster.wait_nodes(len(NODES), timeout=60)
    assert sorted(n["Info"]["NodeID"] for n in nodes) == NODES
    assert all(n["Info"]["Labels"]["sim"] == "true" for n in nodes)
    assert all(n["Info"]["ComputeNodeInfo"]["ExecutionEngines"] == ["noop"] for n in nodes)
    assert sorted(p.name for p in data.glob("computes/ledger.db*"))[0] == "ledger.db"

    batch = cluster.submit(noop("batch", count=20))
    ops = cluster.submit(noop("ops"))
    done = cluster.wait_state(batch, "Completed")["Executions"]["Items"]
    assert len(done) == 20 and {e["ComputeState"]["StateType"] for e in done} == {9}
    assert len({e["NodeID"] for e in done}) == 20  # least loaded first: one node each
    ran = cluster.wait_state(ops, "Completed")["Executions"]["Items"]
    assert sorted(e["NodeID"] for e in ran) == NODES  # once on every node
    # Fifty nodes reported at once: each execution's states still arrived in order.
    history = httpx.get(f"{cluster.api}{API}/jobs/{batch}/history", timeout=10).json()["Items"]
    states: dict[str, list[int]] = {}
    for event in history:
        if event.get("ExecutionState"):
            states.setdefault(event["ExecutionID"], []).append(event["ExecutionState"]["New"])
    assert len(states) == 20
    assert all(s == sorted(s) and s[-1] == 9 for s in states.values()), states

    # Stopped until the orchestrator saw them go, restarted with their data: the same
    # fifty nodes come back, none new.
    sim.stop()

    def connected() -> int:
        return sum(n["ConnectionState"]["Status"] == "CONNECTED" for n in cluster.nodes())

    wait_until(lambda: connected() == 0, 30, "the stopped nodes to be disconnected")
    sim = simulator(cluster, data)
    wait_until(lambda: connected() == len(NODES), 60, "the simulated nodes to reconnect")
    assert sorted(n["Info"]["NodeID"] for n in cluster.nodes()) == NODES
    again = cluster.submit(noop("batch", count=5))
    assert cluster.wait_state(again, "Completed")["Job"]["State"]["StateType"] == "Completed"
