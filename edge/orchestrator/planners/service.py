"""Service jobs: `Count` long-running replicas (partitions). A replica that exits is
replaced (after a delay that grows while it keeps exiting quickly), one lost with its
node at once. A new job version rolls out one replica at a time: the new one starts, and
the old one stops once the new one runs. A replica on a draining node, or on a node that
cannot be reached (within `disconnect_grace`, before its work is failed over), is replaced
the same way (at a drain's deadline, it stops whether or not its replacement runs).
Services never complete."""

from __future__ import annotations

from collections.abc import Iterable

from edge.models import ComputeStateType, Execution, Job, JobStateType

from ..nodes import LiveNode
from ..scheduler import Reason
from .base import (
    NodePool,
    Plan,
    PlanContext,
    StopExecution,
    by_partition,
    refusals,
    restart_wait,
    unplaced,
)

MAX_SURGE = 1
"""Replicas rolled to a new version at a time."""


def plan(
    job: Job, executions: Iterable[Execution], nodes: Iterable[LiveNode], ctx: PlanContext
) -> Plan:
    out = Plan()
    pool = NodePool(job, nodes)
    total = max(job.Count, 1)
    executions = list(executions)
    live = [e for e in executions if not e.terminal]
    for execution in live:
        if execution.PartitionIndex >= total:
            out.stop.append(StopExecution(execution.ID, f"job scaled to {total} replica(s)"))
    current = [e for e in executions if e.JobVersion == job.Version]
    partitions = by_partition(current)
    older = by_partition(e for e in live if e.JobVersion != job.Version)
    refused = refusals(current)
    rolling = sum(
        1
        for p, old in older.items()
        if p < total
        and old
        and any(not e.terminal for e in partitions.get(p, []))
        and not any(_serving(e, pool) for e in partitions.get(p, []))
    )
    placed = 0
    reasons: dict[str, Reason] | None = None
    for partition in range(total):
        mine = partitions.get(partition, [])
        old = older.get(partition, [])
        replicas = [e for e in mine if not e.terminal]
        moving = [(e, why) for e in replicas if (why := _leaving(e, pool))]
        staying = [e for e in replicas if not _leaving(e, pool)]
        serving = sorted(
            (e for e in staying if e.state == ComputeStateType.RUNNING), key=lambda e: e.CreateTime
        )
        if serving:
            keep = serving[0]
            for e in old:
                out.stop.append(StopExecution(e.ID, f"replaced by job version {job.Version}"))
            for e, why in moving:
                out.stop.append(StopExecution(e.ID, f"{why}: replaced on {keep.NodeID}"))
            for e in staying:
                if e is not keep:  # its node came back while a replacement started
                    out.stop.append(StopExecution(e.ID, f"replica on {keep.NodeID} serves"))
            continue
        for e, _ in moving:
            if pool.drain_due(e, ctx.now):
                out.stop.append(StopExecution(e.ID, f"node {e.NodeID} drained"))
        if staying:
            continue  # its replacement is starting
        if old and rolling >= MAX_SURGE:
            continue  # one replica of a rollout at a time
        if not old and not moving:
            delay = restart_wait(mine, ctx)
            if delay > 0:
                out.wait(delay)
                continue
        if reasons is not None and not mine:
            continue
        if placed >= ctx.plan_batch:
            out.more = True
            break
        placement = pool.select(refused, ctx.rng)
        if placement.node is None:
            reasons = placement.reasons
            continue
        out.create.append(pool.place(placement.node.node_id, partition, total))
        placed += 1
        if old:
            rolling += 1
    stopped = {s.execution_id for s in out.stop}
    if reasons is not None and not out.create and not any(e.ID not in stopped for e in live):
        unplaced(job, pool, reasons, out)
    elif (
        job.State.StateType == JobStateType.RUNNING
        and job.State.Message
        and not any(e.ID not in stopped for p in older.values() for e in p)
    ):
        out.state = JobStateType.RUNNING  # a rollout is over: its message goes
    return out


def _leaving(execution: Execution, pool: NodePool) -> str:
    """Why a replica must be replaced where it is, or "": its node drains or is unreachable
    (a replica there may still run, but serves nobody; it stops once its replacement runs)."""
    node = pool.node(execution.NodeID)
    if node is None or not node.state.connected:
        return f"node {execution.NodeID} is unreachable"
    if node.draining:
        return f"node {execution.NodeID} is draining"
    return ""


def _serving(execution: Execution, pool: NodePool) -> bool:
    """Running on a node that keeps it."""
    return execution.state == ComputeStateType.RUNNING and not _leaving(execution, pool)
