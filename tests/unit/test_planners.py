"""The planners per job type, as pure functions: no NATS, no store, no service."""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import Any

import pytest

from edge.models import (
    LOST_DETAIL,
    ComputeState,
    ComputeStateType,
    Execution,
    GPUInfo,
    Job,
    JobStateType,
    NodeConnection,
    NodeScheduling,
    NodeState,
    Resources,
    SchedulingState,
)
from edge.orchestrator.history import rfc3339
from edge.orchestrator.nodes import LiveNode
from edge.orchestrator.planners import Plan, PlanContext, plan, queue_order
from edge.orchestrator.scheduler import Unfit, select_node, waiting_helps

S = 1_000_000_000  # ns per second
NOW = 1_700_000_000 * S


def node(
    node_id: str,
    labels: dict[str, str] | None = None,
    cpu: float = 4,
    engines: Iterable[str] = ("noop",),
    scheduling: NodeScheduling = NodeScheduling.ELIGIBLE,
    deadline: int | None = None,
) -> LiveNode:
    state = NodeState.model_validate(
        {
            "Info": {
                "NodeID": node_id,
                "Labels": labels or {},
                "ComputeNodeInfo": {
                    "ExecutionEngines": list(engines),
                    "MaxCapacity": {"CPU": cpu, "Memory": 8 << 30, "Disk": 1 << 40},
                },
            },
            "ConnectionState": {"Status": "CONNECTED"},
        }
    )
    state.Scheduling = SchedulingState(
        Status=scheduling, DrainDeadline=rfc3339(deadline) if deadline is not None else ""
    )
    return LiveNode(state=state)


def job(kind: str = "batch", count: int = 1, version: int = 1, **spec: Any) -> Job:
    tasks = [{"Engine": {"Type": "noop"}, **spec.pop("task", {})}]
    return Job.model_validate(
        {"ID": "j-1", "Type": kind, "Count": count, "Version": version, "Tasks": tasks, **spec}
    )


_ids = iter(range(1, 1_000_000))


def execution(
    node_id: str,
    state: ComputeStateType = ComputeStateType.RUNNING,
    partition: int = 0,
    version: int = 1,
    count: int = 0,
    ran: float = 1.0,
    ended: int = NOW,
    **details: str,
) -> Execution:
    return Execution(
        ID=f"e-{next(_ids)}",
        JobID="j-1",
        NodeID=node_id,
        JobVersion=version,
        PartitionIndex=partition,
        PartitionCount=count,
        ComputeState=ComputeState(StateType=state, Details=details),
        CreateTime=ended - int(ran * S),
        ModifyTime=ended,
    )


def ctx(**overrides: Any) -> PlanContext:
    return PlanContext(**{"now": NOW, "rng": random.Random(7), **overrides})


def placed(step: Plan) -> list[tuple[str, int, int]]:
    return [(c.node_id, c.partition, c.partitions) for c in step.create]


# -- batch -----------------------------------------------------------------------------------


def test_batch_places_count_partitions_spread_and_leaves_the_nodes_untouched() -> None:
    nodes = [node("n-1"), node("n-2")]
    step = plan(job(count=4, task={"Resources": {"CPU": "1"}}), [], nodes, ctx())
    assert sorted(p for _, p, _ in placed(step)) == [0, 1, 2, 3]
    assert {n for n, _, _ in placed(step)} == {"n-1", "n-2"}
    assert all(total == 4 for _, _, total in placed(step))
    assert all(not n.active and n.allocated == Resources() for n in nodes)  # pure


def test_batch_completes_when_every_partition_did() -> None:
    done = [execution("n-1", ComputeStateType.COMPLETED, p) for p in range(2)]
    step = plan(job(count=2), done, [node("n-1")], ctx())
    assert step.state == JobStateType.COMPLETED and not step.create


def test_batch_retries_a_failed_partition_on_another_node_then_fails() -> None:
    failed = execution("n-1", ComputeStateType.FAILED)
    step = plan(job(), [failed], [node("n-1"), node("n-2")], ctx())
    assert placed(step) == [("n-2", 0, 1)]
    # Lost with its node: that node may take it again.
    lost = execution("n-1", ComputeStateType.FAILED, **{LOST_DETAIL: "node lost contact"})
    assert placed(plan(job(), [lost], [node("n-1")], ctx())) == [("n-1", 0, 1)]
    # No other node: the job fails with the task's error.
    step = plan(job(), [failed], [node("n-1")], ctx())
    assert step.state == JobStateType.FAILED and "no other node to retry on" in step.message
    three = [execution(f"n-{i}", ComputeStateType.FAILED) for i in range(3)]
    step = plan(job(), three, [node("n-9")], ctx(max_attempts=3))
    assert step.state == JobStateType.FAILED and "failed 3 time(s)" in step.message


def test_batch_retry_waits_while_a_node_is_busy_and_fails_only_when_none_can_wait() -> None:
    """Work lost with a node (an orchestrator restart, an outage) waits Queued while the
    node is back but busy, never Failed; a task that failed waits for another node only
    when one could take it later. Work lost with the only node, gone, fails with it."""
    lost = execution("n-1", ComputeStateType.FAILED, **{LOST_DETAIL: "node lost contact"})
    away = node("n-1")
    away.state.ConnectionState.Status = NodeConnection.DISCONNECTED
    step = plan(job(), [lost], [away], ctx())
    assert step.state == JobStateType.FAILED and "no other node to retry on" in step.message
    full = node("n-1", cpu=1)
    full.allocated = Resources(CPU=1)
    step = plan(job(task={"Resources": {"CPU": "1"}}), [lost], [full], ctx())
    assert step.state == JobStateType.QUEUED and "free capacity" in step.message
    # Failed on n-1 itself; n-2 busy: waits for n-2.
    failed = execution("n-1", ComputeStateType.FAILED)
    busy = node("n-2", cpu=1)
    busy.allocated = Resources(CPU=1)
    step = plan(job(task={"Resources": {"CPU": "1"}}), [failed], [node("n-1"), busy], ctx())
    assert step.state == JobStateType.QUEUED and not step.create
    # ... and n-2 too small for ever: fails with the task's error.
    small = node("n-2", cpu=0.5)
    step = plan(job(task={"Resources": {"CPU": "1"}}), [failed], [node("n-1"), small], ctx())
    assert step.state == JobStateType.FAILED and "no other node to retry on" in step.message


def test_batch_queues_when_nodes_are_only_busy_and_fails_when_none_can_run_it() -> None:
    busy = node("n-1", cpu=1)
    busy.allocated = Resources(CPU=1)
    step = plan(job(task={"Resources": {"CPU": "1"}}), [], [busy], ctx())
    assert step.state == JobStateType.QUEUED and "free capacity" in step.message
    step = plan(job(task={"Resources": {"CPU": "8"}}), [], [node("n-1")], ctx())
    assert step.state == JobStateType.FAILED and "too small" in step.message
    waits = job(task={"Resources": {"CPU": "8"}, "Timeouts": {"QueueTimeout": 60}})
    assert plan(waits, [], [node("n-1")], ctx()).state == JobStateType.QUEUED
    assert plan(job(), [], [], ctx()).state == JobStateType.QUEUED  # no node yet


def test_a_refused_bid_is_not_asked_again_and_explains_the_failure() -> None:
    refused = execution("n-1", ComputeStateType.BID_REJECTED)
    refused.ComputeState.Message = "image absent"
    step = plan(job(), [refused], [node("n-1")], ctx())
    assert step.state == JobStateType.FAILED and "refused the job (image absent)" in step.message


def test_batch_places_at_most_plan_batch_per_step() -> None:
    step = plan(job(count=10), [], [node("n-1")], ctx(plan_batch=3))
    assert len(step.create) == 3 and step.more


def test_batch_is_settled_only_when_every_partition_is_done_or_at_work() -> None:
    """`Plan.settled` lets the orchestrator skip re-planning on a Completed: only when no
    partition waits for a node, none is left for the next step, and nothing is stopped."""
    one_cpu = {"Resources": {"CPU": "1"}}
    step = plan(job(count=2), [], [node("n-1"), node("n-2")], ctx())
    assert len(step.create) == 2 and step.settled  # all placed in this step
    running = [execution("n-1", partition=0), execution("n-2", partition=1)]
    assert plan(job(count=2), running, [node("n-1"), node("n-2")], ctx()).settled
    # Three partitions, room for two: the third waits for a slot, so not settled.
    step = plan(job(count=3, task=one_cpu), [], [node("n-1", cpu=2)], ctx())
    assert len(step.create) == 2 and not step.settled
    # More than plan_batch: the rest come in the next step.
    assert not plan(job(count=10), [], [node("n-1")], ctx(plan_batch=3)).settled
    # Completed and failed jobs, and one that waits with nothing placed, are not settled.
    done = [execution("n-1", ComputeStateType.COMPLETED, p) for p in range(2)]
    assert not plan(job(count=2), done, [node("n-1")], ctx()).settled
    assert not plan(job(), [], [], ctx()).settled


# -- ops -------------------------------------------------------------------------------------


def test_ops_runs_once_on_each_matching_node_with_the_count_fixed_at_the_first_plan() -> None:
    spec = job("ops", count=0, Constraints=[{"Key": "site", "Operator": "=", "Values": ["a"]}])
    nodes = [node("n-1", {"site": "a"}), node("n-2", {"site": "a"}), node("n-3", {"site": "b"})]
    step = plan(spec, [], nodes, ctx())
    assert sorted(placed(step)) == [("n-1", 0, 2), ("n-2", 1, 2)]
    # A matching node joining later does not change a running ops job's partitions.
    running = [execution(n, partition=p, count=2) for n, p, _ in placed(step)]
    step = plan(spec, running, [*nodes, node("n-4", {"site": "a"})], ctx())
    assert not step.create and step.state is None


def test_ops_failure_on_one_node_lets_the_others_finish_then_fails_the_job() -> None:
    spec = job("ops", count=0)
    failed = execution("n-1", ComputeStateType.FAILED, 0, count=2)
    failed.ComputeState.Message = "task exited with code 3"
    running = execution("n-2", partition=1, count=2)
    nodes = [node("n-1"), node("n-2")]
    step = plan(spec, [failed, running], nodes, ctx())
    assert step.state is None and not step.create and not step.stop  # not retried elsewhere
    running.ComputeState = ComputeState(StateType=ComputeStateType.COMPLETED)
    step = plan(spec, [failed, running], nodes, ctx())
    assert step.state == JobStateType.FAILED
    assert step.message == "1 of 2 execution(s) failed: task exited with code 3"


def test_ops_with_no_matching_node_fails_or_waits_for_a_connected_one() -> None:
    spec = job("ops", count=0, Constraints=[{"Key": "site", "Operator": "=", "Values": ["z"]}])
    step = plan(spec, [], [node("n-1", {"site": "a"})], ctx())
    assert step.state == JobStateType.FAILED and "labels that do not match" in step.message
    assert plan(spec, [], [], ctx()).state == JobStateType.QUEUED


# -- daemon ----------------------------------------------------------------------------------


def test_daemon_runs_on_every_matching_node_including_ones_that_join_later() -> None:
    spec = job("daemon", Constraints=[{"Key": "role", "Operator": "=", "Values": ["edge"]}])
    nodes = [node("n-1", {"role": "edge"}), node("n-2", {"role": "hub"})]
    step = plan(spec, [], nodes, ctx())
    assert placed(step) == [("n-1", 0, 1)]
    first = execution("n-1")
    step = plan(spec, [first], [*nodes, node("n-3", {"role": "edge"})], ctx())
    assert placed(step) == [("n-3", 0, 1)]
    assert step.state is None


def test_daemon_restarts_an_exited_execution_after_a_growing_delay() -> None:
    spec = job("daemon")
    nodes = [node("n-1")]
    exited = execution("n-1", ComputeStateType.COMPLETED, ended=NOW - S // 2)
    step = plan(spec, [exited], nodes, ctx(restart_delay=1.0))
    assert not step.create and step.retry_in == pytest.approx(0.5)
    step = plan(spec, [exited], nodes, ctx(restart_delay=1.0, now=NOW + S))
    assert placed(step) == [("n-1", 0, 1)]
    # Three quick exits in a row: 4 s.
    crashes = [execution("n-1", ComputeStateType.FAILED, ended=NOW - i * S) for i in range(3)]
    step = plan(spec, crashes, nodes, ctx(restart_delay=1.0))
    assert step.retry_in == pytest.approx(4.0)
    # One that ran long resets the count; lost with its node: at once.
    long_run = execution("n-1", ComputeStateType.FAILED, ran=3600)
    assert plan(spec, [long_run], nodes, ctx()).create
    lost = execution("n-1", ComputeStateType.FAILED, **{LOST_DETAIL: "node lost contact"})
    assert placed(plan(spec, [lost], nodes, ctx())) == [("n-1", 0, 1)]


def test_daemon_new_version_replaces_each_node_and_a_draining_node_is_left() -> None:
    spec = job("daemon", version=2)
    old = execution("n-1", version=1)
    step = plan(spec, [old], [node("n-1")], ctx())
    assert [s.execution_id for s in step.stop] == [old.ID]
    assert placed(step) == [("n-1", 0, 1)]
    current = execution("n-1", version=2)
    draining = node("n-1", scheduling=NodeScheduling.DRAINING)
    step = plan(spec, [current], [draining, node("n-2")], ctx())
    assert [s.execution_id for s in step.stop] == [current.ID]
    assert placed(step) == [("n-2", 0, 1)]


def test_daemon_without_matching_nodes_waits_and_never_fails() -> None:
    spec = job("daemon", Constraints=[{"Key": "gpu", "Operator": "exists"}])
    step = plan(spec, [], [node("n-1")], ctx())
    assert step.state == JobStateType.QUEUED
    assert "starts on each matching node as it joins" in step.message


# -- service ---------------------------------------------------------------------------------


def test_service_keeps_count_replicas_and_replaces_one_that_exited() -> None:
    spec = job("service", count=2)
    nodes = [node("n-1"), node("n-2")]
    step = plan(spec, [], nodes, ctx())
    assert sorted(p for _, p, _ in placed(step)) == [0, 1]
    running = execution("n-1", partition=0)
    exited = execution("n-2", ComputeStateType.COMPLETED, partition=1, ended=NOW - 5 * S)
    step = plan(spec, [running, exited], nodes, ctx())
    assert [p for _, p, _ in placed(step)] == [1]
    assert step.state is None  # a service never completes


def test_service_rolls_to_a_new_version_one_replica_at_a_time() -> None:
    nodes = [node("n-1"), node("n-2"), node("n-3")]
    old = [execution(f"n-{p + 1}", partition=p, version=1) for p in range(2)]
    spec = job("service", count=2, version=2)
    step = plan(spec, old, nodes, ctx())
    assert [p for _, p, _ in placed(step)] == [0] and not step.stop  # surge one, keep serving
    starting = execution("n-3", ComputeStateType.BID_ACCEPTED, partition=0, version=2)
    step = plan(spec, [*old, starting], nodes, ctx())
    assert not step.create and not step.stop  # wait until it runs
    starting.ComputeState = ComputeState(StateType=ComputeStateType.RUNNING)
    step = plan(spec, [*old, starting], nodes, ctx())
    assert [s.execution_id for s in step.stop] == [old[0].ID]
    assert [p for _, p, _ in placed(step)] == [1]


def test_service_scaled_down_stops_the_extra_replicas() -> None:
    replicas = [execution("n-1", partition=p) for p in range(3)]
    step = plan(job("service", count=1), replicas, [node("n-1")], ctx())
    assert {s.execution_id for s in step.stop} == {replicas[1].ID, replicas[2].ID}


def test_service_on_a_draining_node_moves_once_its_replacement_runs_or_at_the_deadline() -> None:
    spec = job("service")
    replica = execution("n-1")
    draining = node("n-1", scheduling=NodeScheduling.DRAINING)
    step = plan(spec, [replica], [draining, node("n-2")], ctx())
    assert placed(step) == [("n-2", 0, 1)] and not step.stop
    moved = execution("n-2")
    step = plan(spec, [replica, moved], [draining, node("n-2")], ctx())
    assert [s.execution_id for s in step.stop] == [replica.ID]
    # Nowhere to go: it keeps running until the deadline, then stops.
    late = node("n-1", scheduling=NodeScheduling.DRAINING, deadline=NOW - S)
    step = plan(spec, [replica], [late], ctx())
    assert [s.execution_id for s in step.stop] == [replica.ID]


def test_service_replaces_a_replica_whose_node_cannot_be_reached() -> None:
    spec = job("service")
    away = node("n-1")
    away.state.ConnectionState.Status = NodeConnection.DISCONNECTED
    replica = execution("n-1")  # still its own within the disconnect grace
    step = plan(spec, [replica], [away, node("n-2")], ctx())
    assert placed(step) == [("n-2", 0, 1)] and not step.stop
    replacement = execution("n-2", ended=NOW + S)
    step = plan(spec, [replica, replacement], [away, node("n-2")], ctx())
    assert [s.reason for s in step.stop] == ["node n-1 is unreachable: replaced on n-2"]
    # The node came back before that: the replica that served first stays.
    back = node("n-1")
    step = plan(spec, [replica, replacement], [back, node("n-2")], ctx())
    assert [s.execution_id for s in step.stop] == [replacement.ID]


def test_batch_work_on_a_draining_node_finishes_unless_the_deadline_passed() -> None:
    spec = job()
    work = execution("n-1")
    patient = node("n-1", scheduling=NodeScheduling.DRAINING)
    assert not plan(spec, [work], [patient, node("n-2")], ctx()).stop
    late = node("n-1", scheduling=NodeScheduling.DRAINING, deadline=NOW - S)
    step = plan(spec, [work], [late, node("n-2")], ctx())
    assert [s.execution_id for s in step.stop] == [work.ID]
    assert placed(step) == [("n-2", 0, 1)]


def test_cordoned_nodes_get_no_new_work_and_the_job_waits_for_them() -> None:
    cordoned = node("n-1", scheduling=NodeScheduling.CORDONED)
    step = plan(job(), [], [cordoned], ctx())
    assert not step.create and step.state == JobStateType.QUEUED
    assert "1 node(s) are cordoned" in step.message


# -- GPUs ------------------------------------------------------------------------------------


def gpu_node(node_id: str, count: int) -> LiveNode:
    live = node(node_id)
    gpus = [
        GPUInfo(Index=i, Name="Tesla T4", UUID=f"GPU-{node_id}-{i}", Memory=15360)
        for i in range(count)
    ]
    capacity = live.state.Info.ComputeNodeInfo.MaxCapacity
    capacity.GPU, capacity.GPUs = count, gpus
    return live


def test_each_execution_gets_its_own_gpus_and_none_is_shared() -> None:
    spec = job(count=3, task={"Resources": {"GPU": "1"}})
    two = gpu_node("n-1", 2)
    step = plan(spec, [], [two], ctx())
    assert [[g.UUID for g in c.gpus] for c in step.create] == [["GPU-n-1-0"], ["GPU-n-1-1"]]
    assert step.state is None  # the third waits for a GPU (batch: queued once nothing runs)
    # One GPU held by a running execution: the next one gets the other.
    two.allocated = Resources(GPU=1)
    two.gpus_used = frozenset({"GPU-n-1-0"})
    step = plan(job(task={"Resources": {"GPU": "1"}}), [], [two], ctx())
    assert [g.UUID for g in step.create[0].gpus] == ["GPU-n-1-1"]
    both = plan(job(task={"Resources": {"GPU": "2"}}), [], [gpu_node("n-2", 2)], ctx())
    assert [g.Index for g in both.create[0].gpus] == [0, 1]
    assert not plan(job(), [], [gpu_node("n-3", 1)], ctx()).create[0].gpus  # asked for none


# -- ranking and the queue -------------------------------------------------------------------


def test_favour_constraints_rank_instead_of_filtering() -> None:
    spec = job(Constraints=[{"Key": "favour_zone", "Operator": "=", "Values": ["north"]}])
    need = spec.task.Resources.parse()
    south, north = node("n-1", {"zone": "south"}), node("n-2", {"zone": "north"})
    assert select_node(spec, need, [south, north]).node is north
    assert select_node(spec, need, [south]).node is south  # not a filter


def test_capacity_ranks_before_load_and_a_random_draw_breaks_ties() -> None:
    spec = job(task={"Resources": {"CPU": "1"}})
    need = spec.task.Resources.parse()
    small, big = node("n-1", cpu=2), node("n-2", cpu=16)
    assert select_node(spec, need, [small, big]).node is big
    rng = random.Random(1)
    twins = [node("n-1"), node("n-2")]
    chosen = {select_node(spec, need, twins, rng).node.node_id for _ in range(20)}  # type: ignore[union-attr]
    assert chosen == {"n-1", "n-2"}


def test_placement_reasons_are_values() -> None:
    busy = node("n-1", cpu=1)
    busy.allocated = Resources(CPU=1)
    spec = job(task={"Resources": {"CPU": "1"}})
    reasons = select_node(spec, spec.task.Resources.parse(), [busy, node("n-2", cpu=0.5)]).reasons
    assert {r.kind for r in reasons.values()} == {Unfit.BUSY, Unfit.TOO_SMALL}
    assert waiting_helps(reasons)
    assert not waiting_helps({"n-2": reasons["n-2"]})


def test_queue_order_is_priority_then_arrival() -> None:
    priority = {"a": 0, "b": 5, "c": 0, "d": 5}
    assert queue_order(["a", "b", "c", "d"], priority.__getitem__, 3) == ["b", "d", "a"]
