"""What every planner shares: the plan it returns, the nodes it places on, and the rules
all job types follow (refused bids, drained nodes, restart delays, queue or fail)."""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from edge.models import (
    LOST_DETAIL,
    ComputeStateType,
    Execution,
    GPUInfo,
    Job,
    JobStateType,
    JobType,
    Resources,
)

from ..index import NodeIndex, View
from ..nodes import LiveNode, gpu_key
from ..scheduler import Placement, Reason, Unfit, explain, select_node, waiting_helps

log = logging.getLogger("bacedge.orchestrator")

REJECTED = (ComputeStateType.BID_REJECTED, ComputeStateType.ASK_FOR_BID_REJECTED)


@dataclass(frozen=True)
class NewExecution:
    """Place partition `partition` of `partitions` on node `node_id`, with these GPUs of
    the node reserved for it (as many as the task asks for, when the node lists them)."""

    node_id: str
    partition: int
    partitions: int
    gpus: tuple[GPUInfo, ...] = ()


@dataclass(frozen=True)
class StopExecution:
    """Stop a live execution (Cancelled: no failure of its task; drain, update, scale-down)."""

    execution_id: str
    reason: str


@dataclass
class Plan:
    """One planning step for one job, applied by the orchestrator service."""

    create: list[NewExecution] = field(default_factory=list)
    stop: list[StopExecution] = field(default_factory=list)
    state: JobStateType | None = None  # the job's next state; None: as it is
    message: str = ""  # why, for the job's state message
    more: bool = False  # `plan_batch` executions placed: plan again at once for the rest
    retry_in: float | None = None  # seconds until a delayed restart is due: plan again then
    settled: bool = False
    """Every partition is done or has its execution at work, none stopped or waiting: until
    one fails, is lost or stopped, or the last one ends, planning the job again changes
    nothing, so another execution's Completed need not (a job of Count 500 was walked
    whole on each of its 500 completions)."""

    def wait(self, seconds: float) -> None:
        self.retry_in = seconds if self.retry_in is None else min(self.retry_in, seconds)


@dataclass(frozen=True)
class PlanContext:
    """The orchestrator's settings and the moment of planning."""

    now: int = 0  # unix ns
    max_attempts: int = 3
    plan_batch: int = 100
    restart_delay: float = 1.0  # seconds before a long-running execution that exited restarts
    restart_delay_max: float = 60.0  # the delay doubles with each quick exit, up to this
    rng: random.Random = field(default_factory=random.Random)

    @property
    def stable_after(self) -> float:
        """An execution that ran this long (seconds) resets the restart delay."""
        return 10 * self.restart_delay_max


class NodePool:
    """The nodes a plan may place on, with the plan's own placements counted on copies:
    the orchestrator's nodes are left as they are until it applies the plan.

    `nodes` is the orchestrator's `NodeIndex` (a plan then costs a few groups of alike
    nodes, not every node: see index.py), or any iterable of nodes (indexed here)."""

    def __init__(self, job: Job, nodes: Iterable[LiveNode]) -> None:
        self.job = job
        self.need: Resources = job.task.Resources.parse()
        self.index = nodes if isinstance(nodes, NodeIndex) else NodeIndex.of(nodes)
        self._planned: dict[str, LiveNode] = {}
        self._view: View | None = None
        self._closed: dict[str, Reason] | None = None
        self._connected = 0
        self._count = 0  # placements of this plan

    def node(self, node_id: str) -> LiveNode | None:
        return self._planned.get(node_id) or self.index.get(node_id)

    @property
    def eligible(self) -> list[LiveNode]:
        """Every node that takes new work, as this plan sees it (a walk over all nodes)."""
        return [self._planned.get(n.node_id, n) for n in self.index if n.eligible]

    @property
    def connected(self) -> int:
        """Nodes connected and approved, cordoned or not."""
        self._membership()
        return self._connected

    @property
    def closed(self) -> dict[str, Reason]:
        """Connected nodes that take no new work (cordoned, draining, drained, backing off),
        and why."""
        return self._membership()

    def _membership(self) -> dict[str, Reason]:
        if self._closed is None:  # only a plan that explains itself needs it
            self._closed = {}
            for node in self.index:
                if node.schedulable:
                    self._connected += 1
                    if not node.eligible:
                        word = node.state.Scheduling.word
                        text = (
                            "are backing off after reconnecting too often"
                            if word == "BACKOFF"
                            else f"are {word.lower()}"
                        )
                        self._closed[node.node_id] = Reason(Unfit.CORDONED, text)
        return self._closed

    def draining(self, execution: Execution) -> bool:
        node = self.node(execution.NodeID)
        return node is not None and node.draining

    def drain_due(self, execution: Execution, now: int) -> bool:
        """On a draining node whose deadline has passed: its work must move now."""
        node = self.node(execution.NodeID)
        deadline = node.drain_deadline if node is not None else None
        return deadline is not None and now >= deadline

    def _candidates(self) -> View:
        if self._view is None:
            self._view = View(self.index.candidates(self.job, self.need))
            for planned in self._planned.values():
                self._view.replace(planned)
        return self._view

    def select(
        self, exclude: dict[str, Reason] | None = None, rng: random.Random | None = None
    ) -> Placement:
        """The best eligible node outside `exclude`; when none fits, why each node was
        passed (that walks every node: it is the rare case)."""
        exclude = exclude or {}
        node = self._candidates().select(exclude, rng)
        if node is not None:
            return Placement(node, {})
        pool = [n for n in self.eligible if n.node_id not in exclude]
        placement = select_node(self.job, self.need, pool, rng)
        if placement.node is not None:  # the index missed a change: a bug, but place it
            log.error("node index out of date", extra={"node_id": placement.node.node_id})
        placement.reasons = {**self.closed, **exclude, **placement.reasons}
        return placement

    def take(self, node_id: str) -> tuple[GPUInfo, ...]:
        """Count one more execution of the job on the node, for the rest of this plan; the
        GPUs it gets (the lowest free indexes, never one another execution holds)."""
        node = self.node(node_id)
        assert node is not None, node_id
        self._count += 1
        gpus = tuple(node.free_gpus()[: self.need.GPU]) if self.need.GPU else ()
        planned = replace(
            node,
            allocated=node.allocated.add(self.need),
            active=node.active | {f"+{self._count}"},
            gpus_used=node.gpus_used | {gpu_key(g) for g in gpus},
        )
        self._planned[node_id] = planned
        if self._view is not None:
            self._view.replace(planned)
        return gpus

    def place(self, node_id: str, partition: int, partitions: int) -> NewExecution:
        """A new execution on the node, counted for the rest of this plan."""
        return NewExecution(node_id, partition, partitions, self.take(node_id))

    def explain(self, reasons: dict[str, Reason]) -> str:
        return explain(reasons, self.connected)


def of_version(job: Job, executions: Iterable[Execution]) -> list[Execution]:
    return [e for e in executions if e.JobVersion == job.Version]


def by_partition(executions: Iterable[Execution]) -> dict[int, list[Execution]]:
    out: dict[int, list[Execution]] = {}
    for execution in executions:
        out.setdefault(execution.PartitionIndex, []).append(execution)
    return out


def lost(execution: Execution) -> bool:
    """Died with its node (crash, restart, outage), not because of its task."""
    return LOST_DETAIL in execution.ComputeState.Details


def refusals(executions: Iterable[Execution]) -> dict[str, Reason]:
    """Nodes whose bidder refused the job (this version): not asked again."""
    return {
        e.NodeID: Reason(Unfit.REFUSED, f"refused the job ({e.ComputeState.Message})")
        for e in executions
        if e.state in REJECTED
    }


def unplaced(job: Job, pool: NodePool, reasons: dict[str, Reason], plan: Plan) -> None:
    """Nothing could be placed and nothing runs: the job waits Queued when waiting can help
    (no node yet, nodes only busy or cordoned) or its QueueTimeout allows it, else fails."""
    why = pool.explain(reasons)
    wait = pool.connected == 0 or waiting_helps(reasons)
    plan.state = (
        JobStateType.QUEUED if wait or job.task.Timeouts.QueueTimeout > 0 else JobStateType.FAILED
    )
    plan.message = why


def drain_moves(executions: Iterable[Execution], pool: NodePool, now: int) -> list[StopExecution]:
    """Live executions on draining nodes whose deadline has passed: stopped, to run elsewhere."""
    draining = pool.index.draining
    if not draining:
        return []
    return [
        StopExecution(e.ID, f"node {e.NodeID} drained: the work moves to another node")
        for e in executions
        if e.NodeID in draining and not e.terminal and pool.drain_due(e, now)
    ]


def restart_wait(ended: Iterable[Execution], ctx: PlanContext) -> float:
    """Seconds before a long-running partition whose execution exited may start again: the
    delay doubles with each quick exit in a row (a crash loop backs off), and executions
    lost with their node or stopped by the orchestrator do not count."""
    streak, last_end = 0, 0
    for execution in sorted(ended, key=lambda e: e.CreateTime, reverse=True):
        if lost(execution) or execution.state in (ComputeStateType.CANCELLED, *REJECTED):
            continue
        if (execution.ModifyTime - execution.CreateTime) / 1e9 >= ctx.stable_after:
            break
        streak += 1
        last_end = max(last_end, execution.ModifyTime)
    if not streak:
        return 0.0
    delay = min(ctx.restart_delay * 2 ** (streak - 1), ctx.restart_delay_max)
    return max(0.0, delay - (ctx.now - last_end) / 1e9)


KEEP_ENDED = 32
"""Ended executions a long-running job keeps in the orchestrator's working set per node
(daemon) or replica (service): what `restart_wait` reads (the delay stops growing after
seven quick exits in a row) with room for lost and cancelled ones in between."""


def working_set(job: Job, executions: list[Execution]) -> list[Execution]:
    """What a long-running (daemon or service) job's planner reads of its executions: all
    that are not over, this version's `KEEP_ENDED` most recent ended ones per node or
    replica, and its latest refusal per node. A daemon that keeps exiting makes a new
    execution every minute for as long as it runs; the rest stay in the store (and are
    listed by the API) but no longer in memory, nor in every plan of the job."""
    keep: dict[str, Execution] = {}
    ended: dict[object, list[Execution]] = {}
    for execution in executions:
        if not execution.terminal:
            keep[execution.ID] = execution
        elif execution.JobVersion == job.Version:
            key = execution.NodeID if job.Type == JobType.DAEMON else execution.PartitionIndex
            ended.setdefault(key, []).append(execution)
    refusal: dict[str, Execution] = {}
    for group in ended.values():
        group.sort(key=lambda e: e.CreateTime, reverse=True)
        for execution in group[:KEEP_ENDED]:
            keep[execution.ID] = execution
        for execution in group:
            if execution.state in REJECTED:
                refusal.setdefault(execution.NodeID, execution)
    keep.update((e.ID, e) for e in refusal.values())
    return [e for e in executions if e.ID in keep]
