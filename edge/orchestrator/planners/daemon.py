"""Daemon jobs: one long-running execution on every eligible node that matches the job,
nodes that join later included. An execution that exits is restarted on its node (after
a delay that grows while it keeps exiting quickly); one lost with its node restarts when
the node is back. A new job version replaces each node's execution; a draining node's
execution stops. Daemons never complete, and never fail for want of nodes."""

from __future__ import annotations

from collections.abc import Iterable

from edge.models import Execution, Job, JobStateType

from ..nodes import LiveNode
from ..scheduler import matching_nodes, unfit
from .base import (
    NodePool,
    Plan,
    PlanContext,
    StopExecution,
    of_version,
    refusals,
    restart_wait,
)

BUSY_RETRY = 2.0
"""Seconds before a matching node that is busy now is looked at again."""


def plan(
    job: Job, executions: Iterable[Execution], nodes: Iterable[LiveNode], ctx: PlanContext
) -> Plan:
    out = Plan()
    pool = NodePool(job, nodes)
    executions = list(executions)
    for execution in executions:
        if execution.terminal:
            continue
        if execution.JobVersion != job.Version:
            why = f"replaced by job version {job.Version}"
        elif pool.draining(execution):
            why = f"node {execution.NodeID} is draining"
        else:
            continue
        out.stop.append(StopExecution(execution.ID, why))
    stopped = {s.execution_id for s in out.stop}
    current = of_version(job, executions)
    on_node: dict[str, list[Execution]] = {}
    for execution in current:
        on_node.setdefault(execution.NodeID, []).append(execution)
    refused = refusals(current)
    matching, reasons = matching_nodes(job, pool.need, pool.eligible)
    placed = 0
    for node in matching:
        mine = on_node.get(node.node_id, [])
        if node.node_id in refused or any(not e.terminal and e.ID not in stopped for e in mine):
            continue
        delay = restart_wait(mine, ctx)
        if delay > 0:
            out.wait(delay)
            continue
        if placed >= ctx.plan_batch:
            out.more = True
            break
        view = pool.node(node.node_id)
        if view is None or unfit(job, pool.need, view) is not None:
            out.wait(BUSY_RETRY)  # busy now: its executions free capacity without telling us
            continue
        out.create.append(pool.place(node.node_id, 0, 1))
        placed += 1
    running = any(not e.terminal and e.ID not in stopped for e in current)
    if not running and not out.create and not out.retry_in:
        out.state = JobStateType.QUEUED
        detail = pool.explain({**pool.closed, **reasons, **refused})
        out.message = f"{detail}: the daemon starts on each matching node as it joins"
    return out
