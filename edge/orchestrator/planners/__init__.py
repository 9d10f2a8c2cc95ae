"""One planner per job type, as Bacalhau's schedulers: a pure function from (job, its
executions, the nodes) to a Plan: executions to create (node, partition), executions to
stop, and the job's next state with its reason. The orchestrator service applies plans;
nothing here touches NATS, the store or the service's own state."""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable

from edge.models import Execution, Job, JobType

from ..nodes import LiveNode
from . import batch, daemon, ops, service
from .base import KEEP_ENDED, NewExecution, Plan, PlanContext, StopExecution, working_set

Planner = Callable[[Job, Iterable[Execution], Iterable[LiveNode], PlanContext], Plan]

PLANNERS: dict[JobType, Planner] = {
    JobType.BATCH: batch.plan,
    JobType.OPS: ops.plan,
    JobType.DAEMON: daemon.plan,
    JobType.SERVICE: service.plan,
}

LONG_RUNNING = frozenset({JobType.DAEMON, JobType.SERVICE})
"""Job types that run until stopped: no completion, no execution or total timeout."""


def plan(
    job: Job, executions: Iterable[Execution], nodes: Iterable[LiveNode], ctx: PlanContext
) -> Plan:
    return PLANNERS[job.Type](job, executions, nodes, ctx)


def queue_order(job_ids: Iterable[str], priority: Callable[[str], int], count: int) -> list[str]:
    """The next `count` jobs to plan: higher Priority first, then in the order queued."""
    return heapq.nsmallest(count, job_ids, key=lambda job_id: -priority(job_id))


__all__ = [
    "KEEP_ENDED",
    "LONG_RUNNING",
    "PLANNERS",
    "NewExecution",
    "Plan",
    "PlanContext",
    "StopExecution",
    "plan",
    "queue_order",
    "working_set",
]
