"""A node that keeps reconnecting backs off from new work ([orchestrator] flap_limit):
real orchestrator, a real compute node process restarted again and again."""

from __future__ import annotations

import httpx

from .cluster import Cluster, wait_until

API = "/api/v1/orchestrator"


def test_a_node_that_keeps_reconnecting_gets_no_new_work_until_its_back_off_ends(
    cluster: Cluster,
) -> None:
    cluster.flap_limit = 2  # the third connection within the window backs off
    cluster.orchestrator(
        False, BACEDGE_ORCHESTRATOR_FLAP_WINDOW="300", BACEDGE_ORCHESTRATOR_FLAP_BACKOFF="6"
    )
    node = cluster.compute("edge-a", "--engines", "noop")
    node_id = cluster.wait_nodes(1)[0]["Info"]["NodeID"]

    def connections() -> int:
        # Counted where the orchestrator logs them: a node stopped right after connecting
        # may die before its own log line is written (CI saw 1 where there were 2).
        return cluster.procs[0].output().count("INFO node connected")

    def scheduling() -> dict[str, str]:
        body = httpx.get(f"{cluster.api}{API}/nodes/{node_id}", timeout=10).json()
        return dict(body["Node"].get("Scheduling") or {})

    for restarts in (1, 2):
        node.stop()
        node.start()
        wait_until(lambda n=restarts: connections() == n + 1, 30, f"connection {restarts + 1}")
        if restarts == 1:
            assert scheduling() == {}  # two connections: a node as any other, Bacalhau's shape

    # Third connection in the window: backing off, and the node's state says why and until when.
    state = wait_until(lambda: scheduling().get("BackOffUntil") and scheduling(), 10, "back-off")
    assert state["Status"] == "ELIGIBLE"
    assert "connected 3 times in 300s: no new work for 6s" in state["BackOffReason"]
    listing = cluster.cli("node", "list", check=True).stdout
    assert "CONNECTED,BACKOFF" in listing, listing
    described = cluster.cli("node", "describe", node_id, check=True).stdout
    assert "Back-off Reason" in described and "no new work for 6s" in described, described

    # Work submitted now waits in the queue with the reason, then runs once it is over.
    job_id = cluster.submit(
        {"Name": "after", "Type": "batch", "Tasks": [{"Name": "main", "Engine": {"Type": "noop"}}]}
    )
    queued = cluster.wait_state(job_id, "Queued", "Completed", timeout=10)
    assert queued["Job"]["State"]["StateType"] == "Queued", queued["Job"]["State"]
    assert "backing off after reconnecting too often" in queued["Job"]["State"]["Message"]
    done = cluster.wait_state(job_id, "Completed", timeout=60)
    assert [e["NodeID"] for e in done["Executions"]["Items"]] == [node_id]
    assert scheduling() == {}
    logs = cluster.procs[0].output()
    assert "node reconnects too often" in logs and "node back-off over" in logs
