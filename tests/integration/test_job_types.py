"""Bacalhau's job types on a fleet of real compute node processes: ops, daemon, service."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from .cluster import Cluster, wait_until

API = "/api/v1/orchestrator"
RUNNING, COMPLETED, CANCELLED = 6, 9, 11


def noop(name: str, kind: str, count: int = 1, **spec: Any) -> dict[str, Any]:
    params = spec.pop("params", {"SleepSeconds": 600})
    return {
        "Name": name,
        "Type": kind,
        "Count": count,
        "Tasks": [{"Name": "main", "Engine": {"Type": "noop", "Params": params}}],
        **spec,
    }


def fleet(cluster: Cluster, *labels: str, **env: str) -> dict[str, str]:
    """An orchestrator and one noop node per `name=role` label; node names by ID."""
    cluster.orchestrator(False, BACEDGE_ORCHESTRATOR_RESTART_DELAY="0.2", **env)
    for spec in labels:
        name, role = spec.split("=")
        cluster.compute(name, "--engines", "noop", "--labels", f"role={role}")
    nodes = cluster.wait_nodes(len(labels))
    return {n["Info"]["NodeID"]: n["Info"]["Labels"]["name"] for n in nodes}


def running_on(cluster: Cluster, job_id: str, names: dict[str, str]) -> list[str]:
    """Names of the nodes where the job runs now, sorted."""
    return sorted(
        names.get(e["NodeID"], e["NodeID"])
        for e in cluster.executions(job_id)
        if e["ComputeState"]["StateType"] == RUNNING
    )


def test_daemon_runs_on_every_matching_node_joins_later_ones_and_restarts(
    cluster: Cluster,
) -> None:
    names = fleet(cluster, "edge-a=edge", "edge-b=edge", "hub=hub")
    role = [{"Key": "role", "Operator": "=", "Values": ["edge"]}]
    job_id = cluster.submit(noop("watch", "daemon", Constraints=role))
    wait_until(lambda: running_on(cluster, job_id, names) == ["edge-a", "edge-b"], 30, "daemons")
    assert cluster.job(job_id)["Job"]["State"]["StateType"] == "Running"

    # A matching node that joins later gets one too; a node that is not matching does not.
    late = cluster.compute("edge-c", "--engines", "noop", "--labels", "role=edge")
    names.update({n["Info"]["NodeID"]: n["Info"]["Labels"]["name"] for n in cluster.wait_nodes(4)})
    want = ["edge-a", "edge-b", "edge-c"]
    wait_until(lambda: running_on(cluster, job_id, names) == want, 30, "the late node's daemon")

    # A node that crashes and comes back runs it again.
    late.kill()
    wait_until(lambda: running_on(cluster, job_id, names) == want[:2], 30, "the loss")
    cluster.compute("edge-c", "--engines", "noop", "--labels", "role=edge")
    wait_until(lambda: running_on(cluster, job_id, names) == want, 60, "the restart")
    executions = cluster.executions(job_id)
    assert all(e["PartitionIndex"] == 0 and e["PartitionCount"] == 1 for e in executions)
    httpx.delete(f"{cluster.api}{API}/jobs/{job_id}")

    # A daemon whose task exits is started again on its node.
    quick = cluster.submit(noop("blink", "daemon", Constraints=role, params={"SleepSeconds": 0.2}))

    def restarted() -> bool:
        runs = [e["NodeID"] for e in cluster.executions(quick)]
        return any(runs.count(node) >= 3 for node in set(runs))

    wait_until(restarted, 60, "restarts of an exiting daemon")
    assert cluster.job(quick)["Job"]["State"]["StateType"] == "Running"


def test_daemon_and_service_have_no_default_execution_timeout(cluster: Cluster) -> None:
    cluster.orchestrator()
    for name in ("edge-a", "edge-b", "edge-c"):
        cluster.compute(name, "--engines", "noop", BACEDGE_COMPUTE_DEFAULT_EXECUTION_TIMEOUT="1")
    cluster.wait_nodes(3)
    daemon = cluster.submit(noop("d", "daemon"))
    service = cluster.submit(noop("s", "service"))
    wait_until(lambda: len(running_on(cluster, daemon, {})) == 3, 30, "daemons")
    wait_until(lambda: len(running_on(cluster, service, {})) == 1, 30, "the service")
    # A batch job placed after them hits the node's default timeout ...
    batch = cluster.submit(noop("b", "batch"))
    body = cluster.wait_state(batch, "Failed", timeout=60)
    assert "timed out after 1s" in body["Job"]["State"]["Message"]
    # ... while they still run.
    assert len(running_on(cluster, daemon, {})) == 3
    assert len(running_on(cluster, service, {})) == 1


def test_service_keeps_count_replicas_replaces_lost_ones_and_rolls_updates(
    cluster: Cluster,
) -> None:
    names = fleet(cluster, "edge-a=edge", "edge-b=edge", "edge-c=edge")
    spec = noop("web", "service", count=2)
    job_id = cluster.submit(spec)
    wait_until(lambda: len(running_on(cluster, job_id, names)) == 2, 30, "two replicas")
    assert cluster.job(job_id)["Job"]["State"]["StateType"] == "Running"

    # The node of one replica dies: the replica is replaced elsewhere.
    victim_id = next(e["NodeID"] for e in cluster.executions(job_id))
    victim = next(p for p in cluster.procs if p.name == names[victim_id])
    victim.kill()

    def replaced() -> bool:
        live = running_on(cluster, job_id, names)
        return len(live) == 2 and names[victim_id] not in live

    wait_until(replaced, 60, "a replacement replica")

    # A new spec rolls out: new replicas start, then the old ones stop.
    spec["Meta"] = {"release": "2"}
    cluster.submit(spec)

    def rolled() -> bool:
        executions = cluster.executions(job_id)
        new = [e for e in executions if e["JobVersion"] == 2]
        old_live = [
            e for e in executions if e["JobVersion"] == 1 and e["ComputeState"]["StateType"] < 8
        ]
        return (
            len([e for e in new if e["ComputeState"]["StateType"] == RUNNING]) == 2 and not old_live
        )

    wait_until(rolled, 60, "the rollout to version 2")
    executions = cluster.executions(job_id)
    replaced_old = [
        e for e in executions if "replaced by job version 2" in e["ComputeState"]["Message"]
    ]
    assert len(replaced_old) == 2 and all(
        e["ComputeState"]["StateType"] == CANCELLED for e in replaced_old
    )
    body = cluster.job(job_id)
    assert body["Job"]["State"] == {"StateType": "Running", "Message": "", "Details": {}}
    assert body["Job"]["Version"] == 2

    # A replica whose task exits is replaced too.
    blink = cluster.submit(noop("blink", "service", params={"SleepSeconds": 0.2}))
    wait_until(lambda: len(cluster.executions(blink)) >= 3, 60, "replacement replicas")
    assert cluster.job(blink)["Job"]["State"]["StateType"] == "Running"


BAD = [
    ({"Type": "cron"}, "Type", "unknown job type 'cron'"),
    ({"Type": "ops", "Count": 3}, "Count", "makes no sense for an ops job"),
    ({"Type": "daemon", "Count": 2}, "Count", "makes no sense for a daemon job"),
    (
        {"Constraints": [{"Key": "role", "Operator": "like", "Values": ["x"]}]},
        "Constraints[0].Operator",
        "unknown operator 'like'",
    ),
]


def test_bad_job_types_counts_and_operators_get_one_line_400s(cluster: Cluster) -> None:
    cluster.orchestrator()
    for change, field, words in BAD:
        job = {**noop("bad", "batch"), **change}
        response = httpx.put(f"{cluster.api}{API}/jobs", json={"Job": job}, timeout=10)
        assert response.status_code == 400, response.text
        body = response.json()
        assert "\n" not in body["Message"] and words in body["Message"], body
        assert body["Details"] == [body["Details"][0]] and body["Details"][0].startswith(
            f"{field}: "
        )
    assert httpx.get(f"{cluster.api}{API}/jobs").json()["Items"] == []


HELLO = str(Path(__file__).resolve().parents[2] / "examples" / "hello.wasm")


def test_cli_target_all_with_constraints_node_details_and_versions(cluster: Cluster) -> None:
    cluster.orchestrator()
    for name, role in (("edge-a", "edge"), ("edge-b", "edge"), ("hub", "hub")):
        cluster.compute(name, "--engines", "wasm", "--labels", f"role={role}")
    cluster.wait_nodes(3)
    first = cluster.cli(
        "wasm", "run", "--name", "census", "--target", "all", "--constraints", "role=edge",
        "--node-details", HELLO,
    )  # fmt: skip
    assert first.returncode == 0, first.stderr
    assert first.stdout.count("Hello from WebAssembly on bacedge!") == 2
    table = first.stderr[first.stderr.index("NODE") :].splitlines()
    assert sorted(line.split()[1] for line in table[1:]) == ["edge-a", "edge-b"]
    assert all("Completed" in line for line in table[1:])
    second = cluster.cli("wasm", "run", "--name", "census", "--target", "all", HELLO, "--", "v2")
    assert second.returncode == 0, second.stderr
    assert second.stdout.count("v2") == 3  # no constraint this time: every node
    versions = cluster.cli("job", "versions", "census", check=True).stdout.splitlines()
    assert versions[0].split()[:2] == ["VERSION", "UPDATED"]
    assert [line.split()[0] for line in versions[1:]] == ["1", "2"]
    assert all(" ops " in line for line in versions[1:])


def test_higher_priority_jobs_take_freed_capacity_first(cluster: Cluster) -> None:
    cluster.orchestrator()
    cluster.compute("edge-a", "--engines", "noop", BACEDGE_COMPUTE_CPU="1")
    cluster.wait_nodes(1)
    whole = {"Resources": {"CPU": "1"}, "Timeouts": {"QueueTimeout": 600}}

    def job(name: str, priority: int) -> dict[str, Any]:
        spec = noop(name, "batch", Priority=priority)
        spec["Tasks"][0].update(whole)
        return spec

    blocker = cluster.submit(job("blocker", 0))
    wait_until(lambda: running_on(cluster, blocker, {}), 30, "the blocker to run")
    low = cluster.submit(job("low", 1))
    high = cluster.submit(job("high", 9))
    cluster.wait_state(low, "Queued")
    cluster.wait_state(high, "Queued")
    httpx.delete(f"{cluster.api}{API}/jobs/{blocker}")
    cluster.wait_state(high, "Running")
    assert cluster.job(low)["Job"]["State"]["StateType"] == "Queued"
