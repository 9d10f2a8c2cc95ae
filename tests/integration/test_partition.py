"""The disconnect grace window: a node that goes silent keeps its work for
`[orchestrator] disconnect_grace`; within it nothing runs twice, after it the work fails
over and the node's late result is recorded, not applied. Silence is made by freezing the
compute process (SIGSTOP): it sends nothing, as a node behind a dead link."""

from __future__ import annotations

import os
import signal
from typing import Any

import httpx
import pytest

from .cluster import Cluster, Proc, noop_job, wait_until

pytestmark = pytest.mark.integration

API = "/api/v1/orchestrator"


def freeze(proc: Proc) -> None:
    assert proc.popen is not None
    os.killpg(proc.popen.pid, signal.SIGSTOP)


def thaw(proc: Proc) -> None:
    assert proc.popen is not None
    os.killpg(proc.popen.pid, signal.SIGCONT)


def start(cluster: Cluster, grace: float) -> dict[str, Proc]:
    cluster.disconnect_grace = grace
    cluster.orchestrator()
    procs = {name: cluster.compute(name, "--engines", "noop") for name in ("east", "west")}
    cluster.wait_nodes(2)
    return procs


def running_on(
    cluster: Cluster, procs: dict[str, Proc], job_id: str
) -> tuple[dict[str, Any], Proc]:
    """The job's running execution and the process of the node that runs it."""
    running = wait_until(
        lambda: [e for e in cluster.executions(job_id) if e["ComputeState"]["StateType"] == 6],
        30,
        "the execution to run",
    )[0]
    return running, procs[cluster.node_name(running["NodeID"])]


def test_a_node_back_within_the_grace_window_finishes_its_work(cluster: Cluster) -> None:
    procs = start(cluster, grace=60)
    job_id = cluster.submit(noop_job(8))
    running, holder = running_on(cluster, procs, job_id)
    freeze(holder)
    try:
        wait_until(
            lambda: any(n["ConnectionState"]["Status"] == "DISCONNECTED" for n in cluster.nodes()),
            30,
            "the silent node to be marked disconnected",
        )
        # Disconnected, yet its execution is still its own and nothing was started elsewhere.
        executions = cluster.executions(job_id)
        assert len(executions) == 1 and executions[0]["ComputeState"]["StateType"] == 6
    finally:
        thaw(holder)
    body = cluster.wait_state(job_id, "Completed", "Failed", timeout=60)
    assert body["Job"]["State"]["StateType"] == "Completed", body["Job"]["State"]
    executions = cluster.executions(job_id)
    assert len(executions) == 1, "the partition ran twice"
    assert executions[0]["NodeID"] == running["NodeID"]


def test_after_the_grace_window_work_fails_over_and_late_results_are_kept_apart(
    cluster: Cluster,
) -> None:
    procs = start(cluster, grace=3)
    job_id = cluster.submit(noop_job(30))
    _running, holder = running_on(cluster, procs, job_id)
    freeze(holder)
    try:

        def failed_over() -> list[dict[str, Any]]:
            found = cluster.executions(job_id)
            return found if len(found) >= 2 else []

        executions = wait_until(failed_over, 60, "the work to fail over")
        first, second = executions[0], executions[1]
        assert first["ComputeState"]["StateType"] == 10  # failed: lost contact
        assert "disconnect grace" in first["ComputeState"]["Message"]
        assert first["ComputeState"]["Details"]["Lost"]
        assert second["NodeID"] != first["NodeID"]
    finally:
        thaw(holder)
    # Back after the window: the node learns its execution was closed and stops it; the
    # replacement is what counts.
    httpx.delete(f"{cluster.api}{API}/jobs/{job_id}", timeout=5)
    body = cluster.job(job_id, include="executions")
    assert body["Executions"]["Items"][0]["ComputeState"]["StateType"] == 10
