"""A real orchestrator and real compute node processes over a real nats-server."""

from __future__ import annotations

import httpx

from .cluster import Cluster, wait_until

API = "/api/v1/orchestrator"


def noop_job(name: str = "noop", count: int = 1, **params: object) -> dict[str, object]:
    return {
        "Name": name,
        "Type": "batch",
        "Count": count,
        "Tasks": [{"Name": "main", "Engine": {"Type": "noop", "Params": params}}],
    }


def test_jobs_spread_over_two_compute_nodes_and_complete(cluster: Cluster) -> None:
    cluster.orchestrator()
    cluster.compute("edge-a", "--engines", "noop")
    cluster.compute("edge-b", "--engines", "noop")
    nodes = cluster.wait_nodes(2)
    assert {n["Info"]["Labels"]["name"] for n in nodes} == {"edge-a", "edge-b"}

    job_id = cluster.submit(noop_job(count=4, Stdout="hello\n"))
    body = cluster.wait_state(job_id, "Completed")
    executions = body["Executions"]["Items"]
    assert len(executions) == 4
    assert sorted(e["PartitionIndex"] for e in executions) == [0, 1, 2, 3]
    assert {e["ComputeState"]["StateType"] for e in executions} == {9}
    assert all(e["RunOutput"]["Stdout"] == "hello\n" for e in executions)
    assert len({e["NodeID"] for e in executions}) == 2  # placed on both nodes

    history = httpx.get(f"{cluster.api}{API}/jobs/{job_id}/history").json()["Items"]
    topics = [h["Event"]["Topic"] for h in history]
    assert topics[0] == "Submission"
    assert history[-1]["JobState"]["New"] == "Completed"

    # Finished: the nodes read logs from the executions' files (no live log is kept), and
    # an execution that printed nothing has an empty log.
    assert cluster.cli("job", "logs", job_id, check=True).stdout == "hello\n"
    quiet = cluster.submit(noop_job("quiet"))
    cluster.wait_state(quiet, "Completed")
    assert cluster.cli("job", "logs", quiet, check=True).stdout == ""


def test_a_long_log_comes_whole_in_frames_and_its_last_lines_alone(cluster: Cluster) -> None:
    """1,500 lines of 600 bytes: several frames (each acknowledged by the orchestrator as
    the API client takes it), whole and in order; `--lines 3`, the last three read from
    the end of the node's file; `--tail` (Bacalhau's: from the end on) of a finished job,
    nothing; a negative or junk tail, or a junk follow, a 400 (before the WebSocket)."""
    cluster.orchestrator()
    cluster.compute("edge-a", "--engines", "noop")
    cluster.wait_nodes(1)
    printed = [f"{i:05d} " + "x" * 594 for i in range(1500)]
    job_id = cluster.submit(noop_job("long", Stdout="".join(f"{line}\n" for line in printed)))
    cluster.wait_state(job_id, "Completed")
    assert cluster.cli("job", "logs", job_id, check=True).stdout.splitlines() == printed
    last = cluster.cli("job", "logs", "--lines", "3", job_id, check=True).stdout
    assert last.splitlines() == printed[-3:]
    assert cluster.cli("job", "logs", "--tail", job_id, check=True).stdout == ""
    both = cluster.cli("job", "logs", "--tail", "-n", "3", job_id)
    assert both.returncode == 2 and "use one" in both.stderr
    for name, junk in (("tail", "-5"), ("tail", "lots"), ("tail", "1" * 40), ("follow", "maybe")):
        answer = httpx.get(f"{cluster.api}{API}/jobs/{job_id}/logs", params={name: junk})
        assert answer.status_code == 400 and f"invalid {name}" in answer.json()["Message"], junk


def test_failed_execution_is_retried_on_another_node(cluster: Cluster) -> None:
    cluster.orchestrator()
    cluster.compute("edge-a", "--engines", "noop")
    cluster.compute("edge-b", "--engines", "noop")
    cluster.wait_nodes(2)
    job_id = cluster.submit(noop_job(ExitCode=2))
    body = cluster.wait_state(job_id, "Failed")
    executions = body["Executions"]["Items"]
    assert len(executions) == 2, executions
    assert len({e["NodeID"] for e in executions}) == 2
    assert all(e["RunOutput"]["ExitCode"] == 2 for e in executions)
    assert "exited with code 2" in body["Job"]["State"]["Message"]


def test_stop_cancels_a_running_execution(cluster: Cluster) -> None:
    cluster.orchestrator(True, "--engines", "noop")
    cluster.wait_nodes(1)
    job_id = cluster.submit(noop_job(SleepSeconds=600))

    def running() -> bool:
        executions = cluster.executions(job_id)
        return bool(executions) and executions[0]["ComputeState"]["StateType"] == 6

    wait_until(running, 30, "the execution to run")
    response = httpx.delete(f"{cluster.api}{API}/jobs/{job_id}", params={"reason": "enough"})
    assert response.status_code == 200
    body = cluster.wait_state(job_id, "Stopped")
    assert body["Executions"]["Items"][0]["ComputeState"]["StateType"] == 11
    assert body["Executions"]["Items"][0]["DesiredState"]["StateType"] == 2


def test_compute_crash_mid_execution_does_not_leave_job_running(cluster: Cluster) -> None:
    cluster.orchestrator()
    edge = cluster.compute("edge-a", "--engines", "noop")
    cluster.wait_nodes(1)
    job_id = cluster.submit(noop_job(SleepSeconds=600))

    def running() -> bool:
        executions = cluster.executions(job_id)
        return bool(executions) and executions[0]["ComputeState"]["StateType"] == 6

    wait_until(running, 30, "the execution to run")
    edge.kill()
    body = cluster.wait_state(job_id, "Failed", timeout=60)
    message = body["Executions"]["Items"][0]["ComputeState"]["Message"]
    assert "lost contact" in message


def test_restarted_node_keeps_its_id_and_reports_interrupted_work(cluster: Cluster) -> None:
    cluster.orchestrator()
    edge = cluster.compute("edge-a", "--engines", "noop")
    first = cluster.wait_nodes(1)[0]["Info"]["NodeID"]
    job_id = cluster.submit(noop_job(SleepSeconds=600))
    wait_until(lambda: cluster.executions(job_id), 30, "placement")
    edge.kill()
    cluster.compute("edge-a", "--engines", "noop")
    nodes = cluster.wait_nodes(1)
    assert [n["Info"]["NodeID"] for n in nodes] == [first]

    # The interrupted execution fails as lost, and the work goes back to the same node.
    def retried() -> list[dict[str, object]]:
        executions = cluster.executions(job_id)
        return executions if len(executions) >= 2 else []

    first_run, second_run = wait_until(retried, 60, "the retry")[:2]
    assert "restarted" in first_run["ComputeState"]["Message"]
    assert first_run["ComputeState"]["Details"]["Lost"] == "node restarted"
    assert second_run["NodeID"] == first
    httpx.delete(f"{cluster.api}{API}/jobs/{job_id}")


def test_orchestrator_restart_keeps_jobs_and_history(cluster: Cluster) -> None:
    orchestrator = cluster.orchestrator(True, "--engines", "noop")
    cluster.wait_nodes(1)
    job_id = cluster.submit(noop_job(name="durable"))
    cluster.wait_state(job_id, "Completed")
    orchestrator.stop()
    cluster.orchestrator(True, "--engines", "noop")
    body = cluster.job(job_id, include="history,executions")
    assert body["Job"]["Name"] == "durable"
    assert body["Job"]["State"]["StateType"] == "Completed"
    assert body["History"]["Items"] and body["History"]["NextToken"] == ""
    assert {h["JobVersion"] for h in body["History"]["Items"]} == {1}
    by_name = cluster.job("durable")
    assert by_name["Job"]["ID"] == job_id


def test_finished_jobs_past_their_retention_are_forgotten_and_the_rest_kept(
    cluster: Cluster,
) -> None:
    """`[orchestrator] job_retention`: a finished job last changed longer ago is gone from
    the store (checked at start, then hourly): 404, not listed, no rows left; a recent
    one and a job still at work stay."""
    import sqlite3

    orchestrator = cluster.orchestrator(True, "--engines", "noop")
    cluster.wait_nodes(1)
    old, recent = (cluster.submit(noop_job(name=name)) for name in ("old", "recent"))
    for job_id in (old, recent):
        cluster.wait_state(job_id, "Completed")
    running = cluster.submit(noop_job(name="at-work", SleepSeconds=600))
    wait_until(lambda: cluster.executions(running), 30, "placement")
    orchestrator.stop()
    db = cluster.root / "orchestrator" / "orchestrator" / "state.db"
    two_days_ns = 2 * 86400 * 10**9
    with sqlite3.connect(db) as conn:  # as if they had finished (or last changed) 2 days ago
        for job_id in (old, running):
            conn.execute(
                "UPDATE jobs SET modify_time = modify_time - ? WHERE id=?", (two_days_ns, job_id)
            )
    cluster.orchestrator(True, "--engines", "noop", BACEDGE_ORCHESTRATOR_JOB_RETENTION=str(86400))
    wait_until(  # the first prune runs as the orchestrator starts
        lambda: httpx.get(f"{cluster.api}{API}/jobs/{old}", timeout=5).status_code == 404,
        30,
        "the old job to be forgotten",
    )
    listed = {j["ID"] for j in httpx.get(f"{cluster.api}{API}/jobs", timeout=5).json()["Items"]}
    assert old not in listed and {recent, running} <= listed
    assert cluster.job(recent)["Job"]["State"]["StateType"] == "Completed"
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        for table in ("history", "executions", "evaluations", "job_versions"):
            count = conn.execute(f"SELECT COUNT(*) FROM {table} WHERE job_id=?", (old,))
            assert count.fetchone()[0] == 0, table
    httpx.delete(f"{cluster.api}{API}/jobs/{running}", timeout=5)


def test_work_finished_during_an_outage_is_reported_when_the_link_heals(
    cluster: Cluster,
) -> None:
    orchestrator = cluster.orchestrator()
    cluster.compute("edge-a", "--engines", "noop")
    cluster.wait_nodes(1)
    job_id = cluster.submit(noop_job(SleepSeconds=2, Stdout="done offline\n"))

    def running() -> bool:
        executions = cluster.executions(job_id)
        return bool(executions) and executions[0]["ComputeState"]["StateType"] == 6

    wait_until(running, 30, "the execution to run")
    orchestrator.stop()  # the hub and its NATS are gone: the node is cut off
    ledger = cluster.root / "edge-a" / "compute" / "ledger.db"

    def finished_offline() -> bool:
        import sqlite3

        with sqlite3.connect(ledger) as db:
            return bool(db.execute("SELECT COUNT(*) FROM executions WHERE state=9").fetchone()[0])

    wait_until(finished_offline, 30, "the node to finish the task while cut off")
    cluster.orchestrator()  # the link heals
    body = cluster.wait_state(job_id, "Completed", timeout=60)
    assert body["Executions"]["Items"][0]["RunOutput"]["Stdout"] == "done offline\n"
    assert len(body["Executions"]["Items"]) == 1  # not failed over, not rerun


def test_orchestrator_restart_fails_work_of_nodes_that_never_return(cluster: Cluster) -> None:
    orchestrator = cluster.orchestrator()
    edge = cluster.compute("edge-a", "--engines", "noop")
    cluster.wait_nodes(1)
    job_id = cluster.submit(noop_job(SleepSeconds=600))
    wait_until(lambda: cluster.job(job_id)["Job"]["State"]["StateType"] == "Running", 30, "running")
    orchestrator.stop()
    edge.kill()
    cluster.orchestrator()
    body = cluster.wait_state(job_id, "Failed", timeout=60)
    assert "did not reconnect" in body["Executions"]["Items"][0]["ComputeState"]["Message"]
