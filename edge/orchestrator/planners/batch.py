"""Batch jobs: `Count` partitions, each run to completion once; a failed partition is
retried (on a node it has not failed on) up to `max_attempts` times."""

from __future__ import annotations

from collections.abc import Iterable

from edge.models import ComputeStateType, Execution, Job, JobStateType

from ..nodes import LiveNode
from ..scheduler import Reason, Unfit
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
    waiting_helps,
)


def plan(
    job: Job, executions: Iterable[Execution], nodes: Iterable[LiveNode], ctx: PlanContext
) -> Plan:
    out = Plan()
    pool = NodePool(job, nodes)
    current = of_version(job, executions)
    out.stop = drain_moves(current, pool, ctx.now)
    stopped = {s.execution_id for s in out.stop}
    partitions = by_partition(current)
    refused = refusals(current)
    total = max(job.Count, 1)
    done = placed = 0
    reasons: dict[str, Reason] | None = None  # why the first partition that fits nowhere
    for partition in range(total):
        mine = partitions.get(partition, [])
        if any(e.state == ComputeStateType.COMPLETED for e in mine):
            done += 1
            continue
        if any(not e.terminal and e.ID not in stopped for e in mine):
            continue
        failed = [e for e in mine if e.state == ComputeStateType.FAILED]
        if len(failed) >= ctx.max_attempts:
            last = failed[-1].ComputeState.Message or "failed"
            return _failed(out, f"execution failed {len(failed)} time(s): {last}")
        if reasons is not None and not failed:
            continue  # a fresh partition fits nowhere either: no need to look again
        if placed >= ctx.plan_batch:
            out.more = True
            return out
        # A retry goes to a node that has not failed this partition yet. Work lost with a
        # node (crash, restart, outage) may go back to that node once it returns; a task
        # that failed there goes elsewhere.
        failed_on = {e.NodeID for e in failed if not lost(e)}
        exclude = {
            **refused,
            **{n: Reason(Unfit.FAILED_HERE, "failed it already") for n in failed_on},
        }
        placement = pool.select(exclude, ctx.rng)
        if placement.node is None:
            if failed and not waiting_helps(placement.reasons):
                # No node could take the retry even later (none connected: the work went
                # down with the only node, as documented; or the rest refused or failed it).
                message = failed[-1].ComputeState.Message or "execution failed"
                return _failed(out, f"{message} (no other node to retry on)")
            # A retry that waits, like a fresh partition: a node is only busy or cordoned.
            reasons = reasons if reasons is not None else placement.reasons
            continue
        out.create.append(pool.place(placement.node.node_id, partition, total))
        placed += 1
    if done >= total:
        out.state = JobStateType.COMPLETED
    elif (
        reasons is not None
        and not out.create
        and not any(not e.terminal and e.ID not in stopped for e in current)
    ):
        unplaced(job, pool, reasons, out)  # nothing runs or starts: wait or fail
    out.settled = reasons is None and not out.stop and out.state is None
    return out


def _failed(out: Plan, message: str) -> Plan:
    out.state = JobStateType.FAILED
    out.message = message
    return out
