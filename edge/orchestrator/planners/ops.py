"""Ops jobs: one execution on every node that matches the job (engine, constraints,
size) when it is first planned, each run to completion; the job completes when all have,
and fails when any failed. The partition count is those nodes, fixed at the first plan."""

from __future__ import annotations

from collections.abc import Iterable

from edge.models import ComputeStateType, Execution, Job, JobStateType

from ..nodes import LiveNode
from ..scheduler import Reason, Unfit, matching_nodes
from .base import (
    NodePool,
    Plan,
    PlanContext,
    by_partition,
    drain_moves,
    lost,
    of_version,
    refusals,
    unplaced,
)


def partition_count(job: Job, current: list[Execution], pool: NodePool) -> int:
    """The count the first plan of this version fixed (on its executions), or the nodes
    that match now."""
    placed = max((e.PartitionCount for e in current), default=0)
    if placed:
        return placed
    return len(matching_nodes(job, pool.need, pool.eligible)[0])


def plan(
    job: Job, executions: Iterable[Execution], nodes: Iterable[LiveNode], ctx: PlanContext
) -> Plan:
    out = Plan()
    pool = NodePool(job, nodes)
    current = of_version(job, executions)
    out.stop = drain_moves(current, pool, ctx.now)
    stopped = {s.execution_id for s in out.stop}

    def live(e: Execution) -> bool:
        return not e.terminal and e.ID not in stopped

    total = partition_count(job, current, pool)
    if total == 0:
        unplaced(
            job, pool, {**pool.closed, **matching_nodes(job, pool.need, pool.eligible)[1]}, out
        )
        return out
    # Each node runs the job once: not again where it runs, ran, or failed by itself.
    ran = Reason(Unfit.TAKEN, "already run it")
    taken = {
        e.NodeID: ran
        for e in current
        if live(e)
        or e.state == ComputeStateType.COMPLETED
        or (e.state == ComputeStateType.FAILED and not lost(e))
    }
    exclude = {**refusals(current), **taken}
    partitions = by_partition(current)
    done, failures, placed = 0, list[Execution](), 0
    reasons: dict[str, Reason] | None = None
    for partition in range(total):
        mine = partitions.get(partition, [])
        if any(e.state == ComputeStateType.COMPLETED for e in mine):
            done += 1
            continue
        if any(live(e) for e in mine):
            continue
        failed = [e for e in mine if e.state == ComputeStateType.FAILED]
        if any(not lost(e) for e in failed) or len(failed) >= ctx.max_attempts:
            failures.append(failed[-1])  # a result of that node: not retried elsewhere
            continue
        if reasons is not None and not mine:
            continue  # a fresh partition fits nowhere either
        if placed >= ctx.plan_batch:
            out.more = True
            return out
        placement = pool.select(exclude, ctx.rng)
        if placement.node is None:
            reasons = placement.reasons
            continue
        node_id = placement.node.node_id
        out.create.append(pool.place(node_id, partition, total))
        exclude[node_id] = ran
        placed += 1
    if done + len(failures) >= total:
        if failures:
            last = failures[-1].ComputeState.Message or "failed"
            out.state = JobStateType.FAILED
            out.message = f"{len(failures)} of {total} execution(s) failed: {last}"
        else:
            out.state = JobStateType.COMPLETED
    elif reasons is not None and not out.create and not any(live(e) for e in current):
        unplaced(job, pool, reasons, out)  # nothing runs or starts: wait or fail
    return out
