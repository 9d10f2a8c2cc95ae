"""The orchestrator's state machine: submissions, placement, updates, timeouts.

Active jobs and their executions live in memory (the scheduler's working set) and
are written through to the store in one transaction per step. Compute nodes talk
to it over NATS only; the HTTP API calls its methods.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import math
import random
import time
from collections import deque
from collections.abc import AsyncGenerator, Callable, Coroutine
from typing import Any

from edge import jobspec
from edge.config import Config
from edge.metrics import OrchestratorMetrics
from edge.models import (
    LOST_DETAIL,
    ComputeState,
    ComputeStateType,
    DesiredState,
    DesiredStateType,
    Evaluation,
    Execution,
    GPUInfo,
    Job,
    JobState,
    JobStateType,
    JobType,
    NodeInfo,
    NodeMembership,
    NodeState,
    Resources,
    RunOutput,
    new_evaluation_id,
    new_execution_id,
    now_ns,
)
from edge.models.node import NodeConnection
from edge.orchestrator.identities import NodeIdentities
from edge.tasks import cancel_and_wait
from edge.transport import subjects
from edge.transport.client import Client, Msg, NatsTimeout, NoRespondersError
from edge.transport.messages import (
    CancelRequest,
    ExecutionUpdate,
    HandshakeReply,
    Heartbeat,
    LogFrame,
    LogReply,
    LogRequest,
    OfferReply,
    OfferResult,
    UpdateAck,
    UpdateBatch,
    decode,
    encode,
    encode_offer,
)

from . import planners
from .errors import BadRequest, NotFound, Unavailable, quoted
from .events import EventBus
from .history import execution_event, job_event
from .nodes import FlapPolicy, LiveNode, NodeManager, gpu_key
from .planners import Plan, PlanContext
from .scheduler import explain, matching_nodes
from .store import Batch, Store

log = logging.getLogger("bacedge.orchestrator")

OFFER_TIMEOUT = 10.0
# An offer that got no answer may still reach a slow node for a while; its node is asked
# about it only after this many more seconds, then again every CONFIRM_INTERVAL while the
# execution still waits for its bid.
OFFER_SETTLE = OFFER_TIMEOUT
CONFIRM_INTERVAL = 30.0
SCHEDULING_ACTIONS = ("cordon", "uncordon", "drain")  # bacedge additions to Bacalhau's actions
LOST = LOST_DETAIL
_REJECTED = (ComputeStateType.BID_REJECTED, ComputeStateType.ASK_FOR_BID_REJECTED)


def _gpu_keys(execution: Execution) -> frozenset[str]:
    """The GPUs an execution holds on its node."""
    return frozenset(
        gpu_key(g) for r in execution.AllocatedResources.Tasks.values() for g in r.GPUs
    )


TRIM_ABOVE = 64  # executions a long-running job holds before its working set is trimmed
SETTLE_INLINE = 64  # jobs planned inside one update message's handler (_plan_inline)
OFFER_EXECUTION_BYTES = 8 * 1024  # an offered execution's own fields, at most (its job aside)
LOG_IDLE = 90.0  # seconds a node may pause a stored log's frames (it waits 60 s per ack)
PRUNE_INTERVAL = 3600.0  # seconds between prunes of finished jobs past their retention


class Orchestrator:
    def __init__(self, config: Config, store: Store, nc: Client) -> None:
        self.config = config
        self.cfg = config.orchestrator
        self.limits = jobspec.SpecLimits(
            max_count=self.cfg.max_count,
            max_timeout=self.cfg.max_timeout,
            source="[orchestrator]",
        )
        self.store = store
        self.nc = nc
        self.identities: NodeIdentities | None = None  # with the embedded NATS: join tokens
        self.nodes = NodeManager(
            self.cfg.node_heartbeat_timeout,
            self.cfg.auto_approve_nodes,
            self.cfg.disconnect_grace,
            FlapPolicy(
                self.cfg.flap_limit,
                self.cfg.flap_window,
                self.cfg.flap_backoff,
                self.cfg.flap_backoff_max,
            ),
        )
        self.jobs: dict[str, Job] = {}
        self.executions: dict[str, Execution] = {}
        self.job_executions: dict[str, list[str]] = {}
        self.queued_since: dict[str, float] = {}
        self.completions: deque[float] = deque(maxlen=10_000)
        self._pending: dict[str, None] = {}  # job IDs to plan, in the order queued
        self._due: dict[str, float] = {}  # job ID -> monotonic time of a delayed re-plan
        # Offers waiting for their bid (ComputeState AskForBid). While an offer may still be
        # on its way to the node (monotonic time in `_in_flight`, inf while its request is
        # open) its node is not asked about it. An offer that got no answer is chased: at
        # its due time (`_chase`, a heap, with the live entry's time in `_chase_at`) its
        # node goes into `_reconcile`, whose next heartbeat is answered "handshake again",
        # and the handshake lists the execution; the node keeps it or reports no record.
        self._in_flight: dict[str, float] = {}
        self._chase: list[tuple[float, str]] = []
        self._chase_at: dict[str, float] = {}
        self._reconcile: set[str] = set()
        self._rng = random.Random()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self._subs: list[Any] = []
        self._background: set[asyncio.Task[None]] = set()
        self._handlers: set[asyncio.Task[None]] = set()  # NATS messages being handled
        self._unfinished: dict[str, int] = {}  # active job -> its executions not yet terminal
        self._settled: set[str] = set()  # jobs whose last plan was `Plan.settled`
        self._trimmed: set[str] = set()  # long-running jobs with executions left to the store
        self._trim_at: dict[str, int] = {}  # job -> executions held when it is trimmed next
        self.started = time.time()
        self.submission_checks: list[Callable[[Job], None]] = []  # raise BadRequest to refuse
        self.metrics = OrchestratorMetrics(self)
        self.events = EventBus()  # GET .../events: published where metrics observe

    # -- lifecycle ----------------------------------------------------------
    async def start(self) -> None:
        self.nodes.load(await self.store.nodes())
        jobs, executions, partial = await self.store.active(planners.KEEP_ENDED)
        self._trimmed.update(partial)  # their past stays in the store: see executions_of
        for job in jobs:
            self.jobs[job.ID] = job
            self.job_executions[job.ID] = []
        now = time.monotonic()
        unanswered = 0
        for execution in executions:
            self._track(execution)
            if execution.state == ComputeStateType.ASK_FOR_BID:
                # Offered before the restart and never answered: its node is asked about it
                # when it connects (it keeps what it took and says it has no record of the
                # rest); nothing re-runs on our word alone.
                self._chase_later(execution.ID, now)
                unanswered += 1
            if not execution.terminal and execution.NodeID in self.nodes.nodes:
                node = self.nodes.nodes[execution.NodeID]
                need = self._need(execution.JobID)
                self.nodes.allocate(node, execution.ID, need, _gpu_keys(execution))
        if unanswered:
            log.warning(
                "offers recorded before the restart had no answer; asking their nodes",
                extra={"executions": unanswered},
            )
        queue = subjects.ORCH_QUEUE
        handshakes = self._each_apart(self._on_handshake)
        updates = self._each_apart(self._on_updates)
        self._subs = [
            await self.nc.subscribe(subject, queue=queue, cb=handler)
            for subject, handler in (
                (subjects.HANDSHAKES, handshakes),
                (subjects.HEARTBEATS, self._on_heartbeat),
                (subjects.UPDATE_BATCHES, updates),
                (subjects.LEGACY_HANDSHAKE, handshakes),
                (subjects.LEGACY_HEARTBEAT, self._on_heartbeat),
                (subjects.LEGACY_UPDATES, updates),
            )
        ]
        for job_id in self.jobs:
            self._enqueue(job_id)
        self._tasks = [
            asyncio.create_task(self._schedule_loop(), name="scheduler"),
            asyncio.create_task(self._sweep_loop(), name="sweeper"),
            asyncio.create_task(self._prune_loop(), name="store-prune"),
        ]
        log.info("orchestrator started", extra={"active_jobs": len(self.jobs)})

    async def stop(self) -> None:
        await cancel_and_wait(self._tasks)
        for sub in self._subs:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        if self._handlers:  # messages taken: their commits and replies, briefly
            await asyncio.wait(self._handlers, timeout=5)
        for task in self._handlers:
            task.cancel()

    def _each_apart(
        self, handler: Callable[[Msg], Coroutine[Any, Any, None]]
    ) -> Callable[[Msg], Coroutine[Any, Any, None]]:
        """A NATS callback that handles each message in a task of its own, so handlers
        whose reply waits for a store commit share commits (group commit) instead of one
        fsync per message in turn. A handler changes memory and queues its write before
        its first await, so messages still apply, and are stored, in the order they came;
        a node sends its next batch only once this one is acknowledged."""

        async def handle(msg: Msg) -> None:
            try:
                await handler(msg)
            except Exception:  # as nats-py did for a callback: logged, the next one runs
                log.exception("NATS message not handled", extra={"subject": msg.subject})

        async def callback(msg: Msg) -> None:
            task = asyncio.create_task(handle(msg))
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)

        return callback

    # -- bookkeeping --------------------------------------------------------
    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Fire-and-forget work that must not be garbage-collected half-way."""
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _track(self, execution: Execution) -> None:
        self.executions[execution.ID] = execution
        self.job_executions.setdefault(execution.JobID, []).append(execution.ID)
        if not execution.terminal:
            self._unfinished[execution.JobID] = self._unfinished.get(execution.JobID, 0) + 1

    def _enqueue(self, job_id: str) -> None:
        self._pending[job_id] = None
        self._wake.set()

    def _need(self, job_id: str) -> Resources:
        job = self.jobs.get(job_id)
        return job.task.Resources.parse() if job and job.Tasks else Resources()

    def _release(self, execution: Execution) -> None:
        node = self.nodes.nodes.get(execution.NodeID)
        if node is not None:
            self.nodes.release(node, execution.ID)

    def _node_event(self, kind: str, node: LiveNode, previous: str = "") -> None:
        """node.connection, node.membership or node.scheduling, with the node's states."""
        state = node.state
        self.events.publish(
            kind,
            NodeID=node.node_id,
            Previous=previous,
            Connection=state.ConnectionState.Status.value,
            Membership=state.Membership.value,
            Scheduling=state.Scheduling.word or state.Scheduling.Status.value,
        )

    def _set_job_state(
        self, job: Job, state: JobStateType, message: str, batch: Batch, topic: str = "JobState"
    ) -> None:
        previous = job.State.StateType
        if previous == state and job.State.Message == message:
            return
        job.State = JobState(StateType=state, Message=message)
        job.ModifyTime = now_ns()
        job.Revision += 1
        batch.jobs[job.ID] = job
        batch.events.append(
            job_event(
                job.ID,
                topic,
                message or state.value,
                previous,
                state,
                job.Revision,
                version=job.Version,
            )
        )
        self.metrics.observe_job(state)
        self.events.publish(
            "job.state",
            JobID=job.ID,
            Namespace=job.Namespace,
            JobType=str(job.Type.value),
            Previous=previous.value,
            State=state.value,
            Message=message,
            Revision=job.Revision,
        )
        if state.terminal:
            self._retire(job)

    def _retire(self, job: Job) -> None:
        """A terminal job leaves the working set (the batch still holds it for the store)."""
        self.jobs.pop(job.ID, None)
        self._unfinished.pop(job.ID, None)
        self._settled.discard(job.ID)
        self._trimmed.discard(job.ID)
        self._trim_at.pop(job.ID, None)
        self.queued_since.pop(job.ID, None)
        self._pending.pop(job.ID, None)
        for execution_id in self.job_executions.pop(job.ID, []):
            self._forget(execution_id)
        if job.State.StateType == JobStateType.COMPLETED:
            self.completions.append(time.time())

    def _set_execution_state(
        self,
        execution: Execution,
        state: ComputeStateType,
        message: str,
        batch: Batch,
        details: dict[str, str] | None = None,
    ) -> None:
        previous = execution.ComputeState.StateType
        if state != ComputeStateType.ASK_FOR_BID:
            self._in_flight.pop(execution.ID, None)  # answered or closed: nothing to chase
            self._chase_at.pop(execution.ID, None)
        # Built unvalidated: every field is typed here, and this runs for every state change.
        execution.ComputeState = ComputeState.assemble(
            StateType=state, Message=message, Details=dict(details or {})
        )
        execution.ModifyTime = now_ns()
        execution.Revision += 1
        self.metrics.observe_execution(execution, state)
        self.events.publish(
            "execution.state",
            JobID=execution.JobID,
            ExecutionID=execution.ID,
            NodeID=execution.NodeID,
            Previous=previous.label,
            State=state.label,
            Message=message,
            Revision=execution.Revision,
        )
        if state.terminal:
            if not previous.terminal and execution.JobID in self._unfinished:
                self._unfinished[execution.JobID] -= 1
            self._release(execution)
            if execution.DesiredState.StateType != DesiredStateType.STOPPED:
                execution.DesiredState = DesiredState(
                    StateType=DesiredStateType.STOPPED, Message=message
                )
        batch.executions[execution.ID] = execution
        batch.events.append(
            execution_event(
                execution.JobID,
                execution.ID,
                "ExecutionState",
                message or state.label,
                previous,
                state,
                details,
                version=execution.JobVersion,
            )
        )

    # -- API operations -----------------------------------------------------
    async def submit(self, data: dict[str, Any], force: bool = False) -> tuple[Job, str, list[str]]:
        """A new job, or a new version of the job with the same name (as in Bacalhau)."""
        job = jobspec.load_job(data, self.limits)
        for check in self.submission_checks:
            check(job)
        self._check_offerable(job)
        if job.Name:
            existing = await self.store.find_by_name(job.Namespace, job.Name)
            if existing is not None and job.ID in ("", existing.ID):
                return await self._update(self.jobs.get(existing.ID, existing), job, force)
        chosen_id = bool(job.ID)  # a fresh random ID cannot be taken: no lookup for it
        job = jobspec.assign_identity(job)
        if job.ID in self.jobs or (chosen_id and await self.store.get_job(job.ID) is not None):
            raise BadRequest(f"job {job.ID} already exists: drop ID from the spec to submit anew")
        now = now_ns()
        job.CreateTime = job.ModifyTime = now
        job.Version = 1
        job.Revision = 1
        job.State = JobState(StateType=JobStateType.PENDING)
        evaluation = Evaluation(
            ID=new_evaluation_id(),
            JobID=job.ID,
            Namespace=job.Namespace,
            TriggeredBy="job-register",
            Type=job.Type.value,
            CreateTime=now,
            ModifyTime=now,
        )
        batch = Batch(jobs={job.ID: job}, new_versions=[job], evaluations=[evaluation])
        batch.events.append(
            job_event(
                job.ID,
                "Submission",
                "Job submitted",
                None,
                JobStateType.PENDING,
                job.Revision,
                version=job.Version,
            )
        )
        self.jobs[job.ID] = job
        self.job_executions[job.ID] = []
        offers, planned = self._plan_inline([job.ID], batch)
        try:
            await self.store.save(batch)
        except BaseException:
            self._retire(job)  # neither the job nor its placements exist anywhere
            raise
        if not planned:
            self._enqueue(job.ID)
        if offers:
            self._spawn(self._send_offers(offers))
        return job, evaluation.ID, self._warnings(job)

    def _offer_room(self) -> int:
        """Bytes of job spec one offer message can carry (the NATS server's max_payload,
        less an execution's own fields)."""
        return int(self.nc.max_payload) - OFFER_EXECUTION_BYTES

    def _check_offerable(self, job: Job) -> None:
        """A spec too large to reach a node is refused at submission: accepted, its offers
        failed at NATS and were placed again every few seconds, for ever."""
        size = len(encode(job))
        if size > self._offer_room():
            raise BadRequest(
                f"the job spec is {size:,} bytes encoded: nodes are sent at most "
                f"{self._offer_room():,} (the NATS server's max_payload less an execution's "
                "fields); keep large data in inputs, not in the spec"
            )

    async def _update(self, current: Job, spec: Job, force: bool) -> tuple[Job, str, list[str]]:
        fields = ("Type", "Count", "Priority", "Constraints", "Labels", "Meta", "Tasks")
        unchanged = all(getattr(current, f) == getattr(spec, f) for f in fields)
        if unchanged and not force and not current.State.StateType.terminal:
            raise BadRequest(
                f"job {current.Name!r} ({current.ID}) is already "
                f"{current.State.StateType.value.lower()} with this spec: "
                "pass --force (Force: true) to restart it"
            )
        batch = Batch()
        version = current.Version + 1
        # A service rolls: its replicas keep serving until their new version runs.
        rolling = (
            current.Type == spec.Type == JobType.SERVICE
            and not current.State.StateType.terminal
            and any(not e.terminal for e in await self.executions_of(current.ID))
        )
        if not current.State.StateType.terminal and not rolling:
            await self._cancel_executions(current.ID, f"job updated to version {version}", batch)
        for name in fields:
            setattr(current, name, getattr(spec, name))
        previous = current.State.StateType
        current.Version = version
        current.Revision += 1
        current.ModifyTime = now_ns()
        current.State = (
            JobState(StateType=JobStateType.RUNNING, Message=f"rolling to version {version}")
            if rolling
            else JobState(StateType=JobStateType.PENDING)
        )
        evaluation = Evaluation(
            ID=new_evaluation_id(),
            JobID=current.ID,
            Namespace=current.Namespace,
            TriggeredBy="job-register",
            Type=current.Type.value,
            CreateTime=now_ns(),
            ModifyTime=now_ns(),
        )
        batch.jobs[current.ID] = current
        batch.new_versions.append(current)
        batch.evaluations.append(evaluation)
        batch.events.append(
            job_event(
                current.ID,
                "Submission",
                f"Job updated (version {version})",
                previous,
                current.State.StateType,
                current.Revision,
                version=version,
            )
        )
        await self.store.save(batch)
        self.jobs[current.ID] = current
        self.job_executions.setdefault(current.ID, [])
        self._enqueue(current.ID)
        return current, evaluation.ID, self._warnings(current)

    def _warnings(self, job: Job) -> list[str]:
        """What the submitter should know now: no connected node can ever run the job (the
        scheduler's own filters), and what will happen to it."""
        need = job.task.Resources.parse()
        if self.nodes.index.candidates(job, need):
            return []  # some eligible node matches: the common case, without a walk
        connected = [n for n in self.nodes.nodes.values() if n.schedulable]
        if not connected:
            return ["no compute node is connected: the job waits in the queue until one joins"]
        nodes = [n for n in connected if n.eligible]
        if not nodes:
            return [
                "every connected node is cordoned, draining or backing off: the job waits "
                "in the queue until one is uncordoned (`bacedge node uncordon`) or steady"
            ]
        matching, reasons = matching_nodes(job, need, nodes)
        if matching:
            return []
        why = explain(reasons, len(nodes))
        if job.Type == JobType.DAEMON:
            return [f"{why}; the daemon starts on each matching node as it joins"]
        wait = job.task.Timeouts.QueueTimeout
        if wait > 0:
            return [f"{why}; the job waits up to {wait}s (its QueueTimeout) for one, then fails"]
        return [f"{why}; the job fails (set Timeouts.QueueTimeout to wait for such a node)"]

    async def resolve(self, ref: str, namespace: str | None = None) -> Job:
        job = self.jobs.get(ref)
        if job is not None:
            return job
        found = await self.store.resolve_job(ref, namespace)
        return self.jobs.get(found.ID, found)

    async def executions_of(self, job_id: str) -> list[Execution]:
        """All of a job's executions: the working set's (newest, perhaps not yet stored),
        with what a long-running job left to the store (`_trim`) read back from it."""
        if job_id not in self.job_executions:
            return await self.store.executions(job_id)
        held = {e: self.executions[e] for e in self.job_executions[job_id]}
        if job_id not in self._trimmed:
            return list(held.values())
        stored = await self.store.executions(job_id)
        merged = [held.pop(e.ID, e) for e in stored]
        return merged + list(held.values())  # placed, their commit still on its way

    def _trim(self, job: Job, executions: list[Execution]) -> list[Execution]:
        """Leaves to the store the ended executions of a long-running job its planner no
        longer reads (`planners.working_set`): memory and each plan of a daemon that has
        exited every minute for months stay the size of its nodes, not of its past."""
        kept = planners.working_set(job, executions)
        if len(kept) < len(executions):
            ids = {e.ID for e in kept}
            for execution in executions:
                if execution.ID not in ids:
                    self._forget(execution.ID)
            self.job_executions[job.ID] = [e.ID for e in kept]
            self._trimmed.add(job.ID)
        # Trimmed again once it holds twice what it kept: the walk costs O(1) per execution.
        self._trim_at[job.ID] = max(TRIM_ABOVE, 2 * len(kept))
        return kept

    def _forget(self, execution_id: str) -> None:
        """An execution leaves the working set (it stays in the store)."""
        self._in_flight.pop(execution_id, None)
        self._chase_at.pop(execution_id, None)
        execution = self.executions.pop(execution_id, None)
        if execution is not None:
            self._release(execution)

    async def stop_job(self, ref: str, reason: str, namespace: str | None = None) -> str:
        job = await self.resolve(ref, namespace)
        if job.State.StateType.terminal:
            raise BadRequest(f"job {job.ID} is already {job.State.StateType.value.lower()}")
        batch = Batch()
        await self._cancel_executions(job.ID, reason or "job stopped by user", batch)
        self._set_job_state(job, JobStateType.STOPPED, reason or "job stopped by user", batch)
        evaluation = Evaluation(
            ID=new_evaluation_id(),
            JobID=job.ID,
            TriggeredBy="job-deregister",
            Type=job.Type.value,
            CreateTime=now_ns(),
            ModifyTime=now_ns(),
        )
        batch.evaluations.append(evaluation)
        await self.store.save(batch)
        return evaluation.ID

    async def _cancel_executions(self, job_id: str, reason: str, batch: Batch) -> None:
        by_node: dict[str, list[str]] = {}
        for execution_id in list(self.job_executions.get(job_id, [])):
            execution = self.executions[execution_id]
            if execution.terminal:
                continue
            execution.DesiredState = DesiredState(
                StateType=DesiredStateType.STOPPED, Message=reason
            )
            self._set_execution_state(execution, ComputeStateType.CANCELLED, reason, batch)
            by_node.setdefault(execution.NodeID, []).append(execution.ID)
        for node_id, ids in by_node.items():
            self._spawn(self._send_cancel(node_id, ids, reason))

    async def _send_cancel(self, node_id: str, ids: list[str], reason: str) -> None:
        message = encode(CancelRequest(ExecutionIDs=ids, Reason=reason))
        try:
            await self.nc.request(subjects.cancel(node_id), message, timeout=OFFER_TIMEOUT)
        except (NatsTimeout, NoRespondersError, asyncio.TimeoutError):
            # The node reconciles on its next handshake: it learns these are not active.
            log.warning("cancel not delivered", extra={"node_id": node_id, "executions": ids})

    async def rerun(self, ref: str, reason: str, namespace: str | None = None) -> tuple[Job, str]:
        job = await self.resolve(ref, namespace)
        if not job.State.StateType.terminal:
            raise BadRequest(
                f"job {job.ID} is still {job.State.StateType.value.lower()}: "
                "stop it before rerunning"
            )
        previous = job.State.StateType
        job.Version += 1
        job.Revision += 1
        job.ModifyTime = now_ns()
        job.State = JobState(StateType=JobStateType.PENDING, Message=reason or "rerun")
        evaluation = Evaluation(
            ID=new_evaluation_id(),
            JobID=job.ID,
            TriggeredBy="job-rerun",
            Type=job.Type.value,
            CreateTime=now_ns(),
            ModifyTime=now_ns(),
        )
        batch = Batch(jobs={job.ID: job}, new_versions=[job], evaluations=[evaluation])
        batch.events.append(
            job_event(
                job.ID,
                "Submission",
                f"Job rerun (version {job.Version})",
                previous,
                JobStateType.PENDING,
                job.Revision,
                version=job.Version,
            )
        )
        await self.store.save(batch)
        self.jobs[job.ID] = job
        self.job_executions[job.ID] = []
        self._enqueue(job.ID)
        return job, evaluation.ID

    async def node_action(
        self, node_id: str, action: str, message: str = "", deadline: float | None = None
    ) -> NodeState:
        """approve, reject, delete (Bacalhau's), or cordon, uncordon, drain (bacedge's)."""
        action = action.lower()
        if action == "delete":
            node = self.nodes.delete(node_id)
            await self.store.delete_node(node.node_id)
            if self.identities is not None and await self.identities.revoke(node.node_id):
                log.info("node's NATS identity deleted", extra={"node_id": node.node_id})
            self._node_event("node.membership", node, "DELETED")
            return node.state
        if action in SCHEDULING_ACTIONS:
            before = self.nodes.get(node_id).state.Scheduling.Status.value
            node = self.nodes.set_scheduling(node_id, action, message, deadline)
            self._node_event("node.scheduling", node, before)
            log.info(
                "node scheduling changed",
                extra={"node_id": node.node_id, "status": node.state.Scheduling.Status.value},
            )
        else:
            before = self.nodes.get(node_id).state.Membership.value
            node = self.nodes.set_membership(node_id, action)
            self._node_event("node.membership", node, before)
        await self.store.put_node(node.state)
        if node.eligible or node.draining:
            for job_id in self.jobs:  # new room, or work that must move
                self._enqueue(job_id)
        return node.state

    # -- scheduling ---------------------------------------------------------
    async def _schedule_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                ids = planners.queue_order(self._pending, self._priority, self.cfg.eval_batch)
                for job_id in ids:
                    self._pending.pop(job_id, None)
                try:
                    await self._evaluate(ids)
                except Exception:
                    log.exception("scheduling step failed", extra={"jobs": len(ids)})
                    await asyncio.sleep(0.5)

    def _priority(self, job_id: str) -> int:
        job = self.jobs.get(job_id)
        return job.Priority if job is not None else 0

    async def _evaluate(self, job_ids: list[str]) -> None:
        batch = Batch()
        offers: dict[str, list[Execution]] = {}
        try:
            for job_id in job_ids:
                job = self.jobs.get(job_id)
                if job is not None and not job.State.StateType.terminal:
                    self._plan(job, batch, offers)
                    await asyncio.sleep(0)  # one job's plan at a time: the API keeps answering
            await self.store.save(batch)
        except BaseException:
            self._unoffered(offers)
            raise
        await self._send_offers(offers)

    def _unoffered(self, offers: dict[str, list[Execution]]) -> None:
        """Placed, never offered (their commit failed): their nodes are asked about them,
        answer "no record", and the jobs are planned again."""
        for execs in offers.values():
            self._offer_unanswered(execs, 0.0)

    async def _send_offers(self, offers: dict[str, list[Execution]]) -> None:
        """One offer message per node, once the placements are stored."""
        if not offers:
            return
        jobs = {
            job_id: encode(job) if (job := self.jobs.get(job_id)) is not None else b"null"
            for job_id in {e.JobID for execs in offers.values() for e in execs}
        }
        await asyncio.gather(*(self._offer(node, execs, jobs) for node, execs in offers.items()))

    def _context(self) -> PlanContext:
        return PlanContext(
            now=now_ns(),
            max_attempts=self.cfg.max_attempts,
            plan_batch=self.cfg.plan_batch,
            restart_delay=self.cfg.restart_delay,
            restart_delay_max=self.cfg.restart_delay_max,
            rng=self._rng,
        )

    def _plan(self, job: Job, batch: Batch, offers: dict[str, list[Execution]]) -> None:
        """Asks the job type's planner what to do now and applies it: at most `plan_batch`
        executions per call (a job with more to place is queued again, so one huge job never
        holds the event loop)."""
        executions = [self.executions[e] for e in self.job_executions.get(job.ID, [])]
        if len(executions) > self._trim_at.get(job.ID, TRIM_ABOVE) and (
            job.Type in planners.LONG_RUNNING
        ):
            executions = self._trim(job, executions)
        step = planners.plan(job, executions, self.nodes.index, self._context())
        self._apply(job, step, batch, offers)

    def _apply(
        self, job: Job, step: Plan, batch: Batch, offers: dict[str, list[Execution]]
    ) -> None:
        cancels: dict[str, list[str]] = {}
        for stop in step.stop:
            execution = self.executions.get(stop.execution_id)
            if execution is None or execution.terminal:
                continue
            execution.DesiredState = DesiredState(
                StateType=DesiredStateType.STOPPED, Message=stop.reason
            )
            self._set_execution_state(execution, ComputeStateType.CANCELLED, stop.reason, batch)
            cancels.setdefault(execution.NodeID, []).append(execution.ID)
        for node_id, ids in cancels.items():
            self._spawn(self._send_cancel(node_id, ids, "stopped by the orchestrator"))
        if step.settled:
            self._settled.add(job.ID)
        else:
            self._settled.discard(job.ID)
        if step.state == JobStateType.FAILED:
            self._fail_job(job, step.message, batch)
            return
        need = job.task.Resources.parse() if step.create else Resources()
        for new in step.create:
            node = self.nodes.nodes[new.node_id]
            offers.setdefault(node.node_id, []).append(
                self._place(job, new.partition, new.partitions, node, need, batch, new.gpus)
            )
        if step.state == JobStateType.QUEUED:
            self.queued_since.setdefault(job.ID, time.monotonic())
            self._set_job_state(job, JobStateType.QUEUED, step.message, batch, topic="Scheduling")
        elif step.state is not None:
            self._set_job_state(job, step.state, step.message, batch)
        if step.more:
            self._enqueue(job.ID)  # the rest in the next scheduling step
        if step.retry_in is not None:
            self._enqueue_later(job.ID, step.retry_in)

    def _enqueue_later(self, job_id: str, delay: float) -> None:
        """Plan the job again in `delay` seconds (a delayed restart), once per due time."""
        due = time.monotonic() + delay
        if self._due.get(job_id, float("inf")) <= due:
            return  # an earlier wake-up is set already
        self._due[job_id] = due

        def wake() -> None:
            if self._due.get(job_id) == due:
                del self._due[job_id]
                if job_id in self.jobs:
                    self._enqueue(job_id)

        asyncio.get_running_loop().call_later(max(delay, 0.0), wake)

    def _fail_job(self, job: Job, message: str, batch: Batch) -> None:
        for execution_id in list(self.job_executions.get(job.ID, [])):
            execution = self.executions[execution_id]
            if not execution.terminal:
                self._set_execution_state(
                    execution, ComputeStateType.CANCELLED, "job failed", batch
                )
                self._spawn(self._send_cancel(execution.NodeID, [execution.ID], "job failed"))
        self._set_job_state(job, JobStateType.FAILED, message, batch)

    def _place(
        self,
        job: Job,
        partition: int,
        partitions: int,
        node: LiveNode,
        need: Resources,
        batch: Batch,
        gpus: tuple[GPUInfo, ...] = (),
    ) -> Execution:
        now = now_ns()
        reserved = need.model_copy(update={"GPUs": list(gpus)}) if gpus else need
        execution = Execution.placed(
            job, node.node_id, partition, partitions, reserved, new_execution_id(), now
        )
        self._track(execution)
        self._in_flight[execution.ID] = math.inf  # stored, then offered
        self.nodes.allocate(node, execution.ID, need, frozenset(gpu_key(g) for g in gpus))
        self.queued_since.pop(job.ID, None)
        batch.executions[execution.ID] = execution
        batch.events.append(
            execution_event(
                job.ID,
                execution.ID,
                "Scheduling",
                f"Requested execution on {node.node_id}",
                ComputeStateType.NEW,
                ComputeStateType.ASK_FOR_BID,
                {"NodeID": node.node_id},
                version=job.Version,
            )
        )
        return execution

    async def _offer(
        self, node_id: str, executions: list[Execution], jobs: dict[str, bytes]
    ) -> None:
        try:
            parts, too_large = self._offer_parts([e for e in executions if not e.terminal], jobs)
            if too_large:
                await self._refuse_too_large(too_large, jobs)
            for part in parts:
                await self._send_offer(node_id, part, jobs)
        finally:
            # Whatever got no answer (a timeout, a lost reply, an error on the way) is
            # asked about later, rather than guessed at: nothing runs twice, nothing waits
            # forever.
            self._offer_unanswered(executions, OFFER_SETTLE)

    def _offer_parts(
        self, executions: list[Execution], jobs: dict[str, bytes]
    ) -> tuple[list[list[Execution]], list[Execution]]:
        """A node's offers cut into messages NATS takes (each execution carries its job:
        a large spec of Count 10 on one node is ten times its size), and the executions
        whose job alone is too large to send (a spec accepted before a smaller limit)."""
        limit = int(self.nc.max_payload)
        parts: list[list[Execution]] = []
        part: list[Execution] = []
        size = 0
        too_large: list[Execution] = []
        for execution in executions:
            need = len(jobs.get(execution.JobID, b"null")) + OFFER_EXECUTION_BYTES
            if need > limit:
                too_large.append(execution)
                continue
            if part and size + need > limit:
                parts.append(part)
                part, size = [], 0
            part.append(execution)
            size += need
        if part:
            parts.append(part)
        return parts, too_large

    async def _refuse_too_large(self, executions: list[Execution], jobs: dict[str, bytes]) -> None:
        batch = Batch()
        for execution in executions:
            self._in_flight.pop(execution.ID, None)
            self._set_execution_state(
                execution,
                ComputeStateType.FAILED,
                f"the job spec is {len(jobs.get(execution.JobID, b'')):,} bytes encoded: "
                f"more than an offer may carry ({self._offer_room():,}, from the NATS "
                "server's max_payload)",
                batch,
            )
            self._enqueue(execution.JobID)
        await self.store.save(batch)

    async def _send_offer(
        self, node_id: str, executions: list[Execution], jobs: dict[str, bytes]
    ) -> None:
        if not executions:
            return  # stopped meanwhile
        results: dict[str, OfferResult] = {}
        nobody = False
        try:
            msg = await self.nc.request(
                subjects.offer(node_id),
                encode_offer(executions, jobs, fresh=True),
                timeout=OFFER_TIMEOUT,
            )
            reply = decode(OfferReply, msg.data)
            results = {r.ExecutionID: r for r in reply.Results}
        except NoRespondersError:
            nobody = True  # nothing listens on the node's offer subject: it never got it
            log.warning("offer not delivered: node not listening", extra={"node_id": node_id})
        except (NatsTimeout, asyncio.TimeoutError):
            log.warning("offer not answered", extra={"node_id": node_id, "why": "timed out"})
        except Exception as exc:  # a connection closing, a garbled reply: answer unknown
            log.warning("offer not answered", extra={"node_id": node_id, "why": str(exc)})
        batch = Batch()
        for execution in executions:
            result = results.get(execution.ID)
            if execution.terminal or (result is None and not nobody):
                continue  # closed meanwhile, or no answer: see _offer_unanswered
            self._in_flight.pop(execution.ID, None)
            if result is None:
                self._set_execution_state(
                    execution,
                    ComputeStateType.FAILED,
                    f"node {node_id} was not listening for offers: the offer never reached it",
                    batch,
                    {LOST: "offer not delivered"},
                )
                self._enqueue(execution.JobID)
            elif not result.Accepted:
                self._set_execution_state(
                    execution, ComputeStateType.BID_REJECTED, result.Reason or "rejected", batch
                )
                self._enqueue(execution.JobID)
            elif execution.state < ComputeStateType.BID_ACCEPTED:
                self._set_execution_state(
                    execution, ComputeStateType.BID_ACCEPTED, "Bid accepted", batch
                )
        await self.store.save(batch)

    def _offer_unanswered(self, executions: list[Execution], settle: float) -> None:
        """Offers that got no answer: their node is asked about them once `settle` seconds
        have passed (time for a late offer to reach it)."""
        due = time.monotonic() + settle
        for execution in executions:
            if execution.state == ComputeStateType.ASK_FOR_BID:
                self._in_flight[execution.ID] = due
                self._chase_later(execution.ID, due)

    def _chase_later(self, execution_id: str, due: float) -> None:
        self._chase_at[execution_id] = due
        heapq.heappush(self._chase, (due, execution_id))

    def _chase_offers(self, now: float, batch: Batch) -> None:
        """Offers still waiting for their bid once they had time to arrive: the node is
        told to handshake at its next heartbeat, and the handshake lists them; asked again
        every CONFIRM_INTERVAL while nothing comes back. Only the heap's due entries are
        looked at, so a large working set costs nothing here."""
        while self._chase and self._chase[0][0] <= now:
            due, execution_id = heapq.heappop(self._chase)
            if self._chase_at.get(execution_id) != due:
                continue  # superseded or settled
            execution = self.executions.get(execution_id)
            if execution is None or execution.state != ComputeStateType.ASK_FOR_BID:
                self._chase_at.pop(execution_id, None)
                continue
            self._in_flight.pop(execution_id, None)
            if execution.NodeID not in self.nodes.nodes:  # deleted by an operator
                self._set_execution_state(
                    execution,
                    ComputeStateType.FAILED,
                    f"node {execution.NodeID} is gone: the offer was never answered",
                    batch,
                    {LOST: "node deleted"},
                )
                self._enqueue(execution.JobID)
                continue
            self._reconcile.add(execution.NodeID)
            self._chase_later(execution_id, now + CONFIRM_INTERVAL)

    def _expected(self, execution: Execution, now: float) -> bool:
        """Whether a node's handshake lists the execution as one the node should have: those
        it accepted, and offers that got no answer once they had time to reach it (the
        node keeps those it took and reports the others failed, "no record"). Never an offer
        that may still be on its way: the node would call it unknown, then run it."""
        if execution.state >= ComputeStateType.BID_ACCEPTED:
            return True
        return (
            execution.state == ComputeStateType.ASK_FOR_BID
            and self._in_flight.get(execution.ID, 0.0) <= now
        )

    # -- compute node messages ---------------------------------------------
    async def _on_handshake(self, msg: Msg) -> None:
        try:
            info = NodeInfo.model_validate_json(msg.data)
        except ValueError as exc:
            await msg.respond(
                encode(HandshakeReply(Accepted=False, Reason=f"bad node info: {exc}"))
            )
            return
        if subjects.impersonates(msg.subject, info.NodeID):
            reason = f"node {subjects.sender(msg.subject)} presented node ID {info.NodeID}"
            log.warning("handshake refused", extra={"reason": reason})
            await msg.respond(encode(HandshakeReply(Accepted=False, Reason=reason)))
            return
        known = self.nodes.nodes.get(info.NodeID)
        before = known.state.ConnectionState.Status.value if known is not None else ""
        backing_off = known is not None and known.backoff_until > 0
        connecting = (msg.headers or {}).get(subjects.HANDSHAKE_HEADER) == subjects.CONNECTING
        node = self.nodes.handshake(info, connecting)
        if before != node.state.ConnectionState.Status.value:
            self._node_event("node.connection", node, before)
        if node.backoff_until and not backing_off:
            self._node_event("node.scheduling", node, node.state.Scheduling.Status.value)
            log.warning(
                "node reconnects too often; no new work for it until its back-off ends",
                extra={
                    "node_id": node.node_id,
                    "until": node.state.Scheduling.BackOffUntil,
                    "why": node.state.Scheduling.BackOffReason,
                },
            )
        self._reconcile.discard(info.NodeID)  # this handshake is the reconciliation
        await self.store.put_node(node.state)
        now = time.monotonic()
        accepted = node.state.Membership != NodeMembership.REJECTED
        reply = HandshakeReply(
            Accepted=accepted,
            Reason="" if accepted else "node membership was rejected by an operator",
            Membership=node.state.Membership,
            HeartbeatInterval=self.config.compute.heartbeat_interval,
            # Accepted executions and unanswered offers, not offers that may be in flight.
            ActiveExecutions=sorted(
                e
                for e in node.active
                if e in self.executions and self._expected(self.executions[e], now)
            ),
        )
        await msg.respond(encode(reply))
        log.info(
            "node connected",
            extra={"node_id": info.NodeID, "membership": node.state.Membership.value},
        )
        for job_id in self.jobs:
            self._enqueue(job_id)

    async def _on_heartbeat(self, msg: Msg) -> None:
        try:
            beat = decode(Heartbeat, msg.data)
        except ValueError:
            return
        if subjects.impersonates(msg.subject, beat.NodeID):
            log.warning(
                "heartbeat refused: a node spoke for another",
                extra={"subject": msg.subject, "claimed": beat.NodeID},
            )
            return
        known = self.nodes.heartbeat(
            beat.NodeID, beat.AvailableCapacity, beat.RunningExecutions, beat.EnqueuedExecutions
        )
        if beat.NodeID in self._reconcile:
            known = False  # "handshake again": its reply lists the offers we wait on
        self.metrics.observe_heartbeat()
        if msg.reply:
            await msg.respond(b'{"Known": true}' if known else b'{"Known": false}')

    async def _on_updates(self, msg: Msg) -> None:
        try:
            updates = decode(UpdateBatch, msg.data)
        except ValueError as exc:
            log.error("bad update batch", extra={"error": str(exc)})
            return
        sender = subjects.sender(msg.subject) or updates.NodeID
        batch = Batch()
        refused = 0
        ended: dict[str, None] = {}  # jobs with an execution that just ended, in order
        for update in updates.Updates:
            execution = self.executions.get(update.ExecutionID)
            if execution is not None and execution.NodeID != sender:
                refused += 1  # acknowledged, so the sender stops, and never applied
                continue
            self._apply_update(update, batch)
            if execution is not None and update.State.terminal:
                ended[execution.JobID] = None
        if refused or sender != updates.NodeID:
            log.warning(
                "updates refused: a node reported on executions that are not its own",
                extra={"node": sender, "claimed": updates.NodeID, "refused": refused},
            )
        offers, _ = self._plan_inline(
            [j for j in ended if self._unfinished.get(j) == 0][:SETTLE_INLINE], batch
        )
        try:
            await self.store.save(batch)  # durable before the node may forget them
        except BaseException:
            self._unoffered(offers)
            raise
        if msg.reply:
            await msg.respond(encode(UpdateAck(Sequences=[u.Sequence for u in updates.Updates])))
        if offers:
            self._spawn(self._send_offers(offers))

    def _plan_inline(
        self, job_ids: list[str], batch: Batch
    ) -> tuple[dict[str, list[Execution]], bool]:
        """Plans these jobs now, inside the caller's own commit: a new job is placed in
        its submission's commit, and a job whose last execution just ended completes (or
        places its retry) in the commit of that update, each without waiting for the next
        scheduling step and a commit of its own. Only while no other job waits to be
        scheduled (queued for capacity or not yet looked at): then the scheduler's
        priority order decides, as always. Returns the offers to send once committed and
        whether the jobs were planned (if not, they stay with the scheduler)."""
        offers: dict[str, list[Execution]] = {}
        if self.queued_since or any(j not in job_ids for j in self._pending):
            return offers, False
        for job_id in job_ids:
            job = self.jobs.get(job_id)
            if job is not None:
                self._pending.pop(job_id, None)
                self._plan(job, batch, offers)
        return offers, True

    def _apply_update(self, update: ExecutionUpdate, batch: Batch) -> None:
        execution = self.executions.get(update.ExecutionID)
        if execution is None:
            return  # its job is finished and retired; nothing can change it now
        if execution.terminal:
            if update.State.terminal and update.State != execution.state:
                batch.events.append(
                    execution_event(
                        execution.JobID,
                        execution.ID,
                        "LateReport",
                        f"node reported {update.State.label} after the execution was closed: "
                        f"{update.Message}",
                        version=execution.JobVersion,
                    )
                )
            return
        if update.State <= execution.state and not update.State.terminal:
            return
        if update.RunOutput is not None:
            execution.RunOutput = update.RunOutput
        if update.PublishedResult is not None:
            execution.PublishedResult = update.PublishedResult
        details = update.Details
        if (
            execution.state == ComputeStateType.ASK_FOR_BID
            and update.State == ComputeStateType.FAILED
            and LOST not in details
        ):
            # Failed before it ever reported Running: the node never took the offer (it
            # answers "no record" when asked). Not the task's failure: it may run there again.
            details = {**details, LOST: "offer never taken by the node"}
        self._set_execution_state(execution, update.State, update.Message, batch, details)
        job = self.jobs.get(execution.JobID)
        if job is None:
            return
        if update.State in (
            ComputeStateType.RUNNING,
            ComputeStateType.BID_ACCEPTED,
        ) and job.State.StateType in (JobStateType.PENDING, JobStateType.QUEUED):
            self._set_job_state(job, JobStateType.RUNNING, "", batch)
        if (
            update.State == ComputeStateType.COMPLETED
            and job.ID in self._settled
            and self._unfinished.get(job.ID, 0) > 0
        ):
            return  # nothing to plan until its last execution ends (Plan.settled)
        if update.State.terminal or (
            update.State == ComputeStateType.RUNNING and job.Type == JobType.SERVICE
        ):
            self._enqueue(job.ID)  # a service replica that runs may retire the one it replaces

    async def _prune_loop(self) -> None:
        """Hourly: finished jobs older than `[orchestrator] job_retention` leave the store,
        a thousand per transaction, so an appliance that runs jobs for years keeps only
        its recent ones (100,000 finished jobs are ~650 MiB); so do the ended executions
        of daemon and service jobs, which run for years themselves."""
        while True:
            try:
                await self.prune(now_ns() - int(self.cfg.job_retention * 1e9))
            except Exception as exc:  # a full or failing disk: tried again next hour
                log.warning("job store not pruned", extra={"error": str(exc)})
            await asyncio.sleep(PRUNE_INTERVAL)

    async def prune(self, before_ns: int) -> int:
        """Forgets finished jobs last changed before `before_ns`; returns how many."""
        forgotten = 0
        while ids := await self.store.prune(before_ns):
            forgotten += len(ids)
            await asyncio.sleep(0)  # API requests between the transactions
        if forgotten:
            log.info("finished jobs past their retention forgotten", extra={"jobs": forgotten})
        ended = 0
        while count := await self.store.prune_ended(before_ns):
            ended += count
            await asyncio.sleep(0)
        if ended:
            log.info(
                "ended executions of long-running jobs past their retention forgotten",
                extra={"executions": ended},
            )
        return forgotten

    # -- timeouts and lost nodes ---------------------------------------------
    async def _sweep_loop(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            try:
                await self._sweep()
            except Exception:
                log.exception("sweep failed")

    async def _sweep(self) -> None:
        batch = Batch()
        for node in self.nodes.end_backoffs():
            self._node_event("node.scheduling", node, "BACKOFF")
            await self.store.put_node(node.state)
            log.info("node back-off over; it takes new work", extra={"node_id": node.node_id})
            for job_id in self.jobs:
                self._enqueue(job_id)
        disconnected, lost = self.nodes.expire()
        for node in disconnected:
            self._node_event("node.connection", node, NodeConnection.CONNECTED.value)
            await self.store.put_node(node.state)
            log.warning(
                "node disconnected; its executions wait for it",
                extra={"node_id": node.node_id, "grace_s": self.cfg.disconnect_grace},
            )
        for node in lost:
            await self.store.put_node(node.state)
            log.warning("node lost; failing over its executions", extra={"node_id": node.node_id})
            for execution_id in list(node.active):
                execution = self.executions.get(execution_id)
                if execution is not None and not execution.terminal:
                    self._set_execution_state(
                        execution,
                        ComputeStateType.FAILED,
                        f"node {node.node_id} lost contact: {node.state.ConnectionState.LastError}",
                        batch,
                        {LOST: "node lost contact"},
                    )
                    self._enqueue(execution.JobID)
        now_mono, now = time.monotonic(), now_ns()
        self._chase_offers(now_mono, batch)
        await self._drain_progress(now)
        for job in list(self.jobs.values()):
            timeouts = job.task.Timeouts if job.Tasks else None
            if timeouts is None:
                continue
            if (
                timeouts.TotalTimeout > 0
                and job.Type not in planners.LONG_RUNNING  # as Bacalhau: they run until stopped
                and now - job.CreateTime > timeouts.TotalTimeout * 1e9
            ):
                self._fail_job(
                    job, f"job exceeded its total timeout of {timeouts.TotalTimeout}s", batch
                )
                continue
            since = self.queued_since.get(job.ID)
            if (
                since is not None
                and timeouts.QueueTimeout > 0
                and now_mono - since > timeouts.QueueTimeout
            ):
                self._fail_job(
                    job,
                    f"job was queued longer than its queue timeout of "
                    f"{timeouts.QueueTimeout}s: {job.State.Message}",
                    batch,
                )
        if any(j.State.StateType == JobStateType.QUEUED for j in self.jobs.values()):
            for job in self.jobs.values():
                if job.State.StateType == JobStateType.QUEUED:
                    self._enqueue(job.ID)
        await self.store.save(batch)

    async def _drain_progress(self, now: int) -> None:
        """Draining nodes: past the deadline their jobs are planned again (their work moves);
        with nothing of ours left to run, they are DRAINED."""
        for node in self.nodes.draining():
            if not node.active:
                before = node.state.Scheduling.Status.value
                self.nodes.drained(node)
                self._node_event("node.scheduling", node, before)
                await self.store.put_node(node.state)
                log.info("node drained", extra={"node_id": node.node_id})
                continue
            deadline = node.drain_deadline
            if deadline is not None and now >= deadline:
                for execution_id in node.active:
                    execution = self.executions.get(execution_id)
                    if execution is not None and execution.JobID not in self._pending:
                        self._enqueue(execution.JobID)

    # -- logs -----------------------------------------------------------------
    async def stream_logs(
        self, job: Job, execution_id: str, follow: bool, tail: int
    ) -> AsyncGenerator[tuple[int, str], None]:
        """Log lines of one execution, from its node (live) or its stored output."""
        executions = await self.executions_of(job.ID)
        if execution_id:
            chosen = next((e for e in executions if e.ID.startswith(execution_id)), None)
            if chosen is None:
                raise NotFound(f"execution {quoted(execution_id)} not found in job {job.ID}")
        else:
            useful = [e for e in executions if e.state not in _REJECTED]
            if not useful:
                raise BadRequest(f"job {job.ID} has no execution yet: wait until it is placed")
            chosen = useful[-1]
        node = self.nodes.nodes.get(chosen.NodeID)
        if node is not None and node.state.connected:
            # On the node's own subject: a node with its own identity may publish only there.
            inbox = subjects.log_frames(chosen.NodeID, self.nc.new_inbox().rsplit(".", 1)[-1])
            sub = await self.nc.subscribe(inbox)
            try:
                request = LogRequest(
                    ExecutionID=chosen.ID, Subject=inbox, Follow=follow, Tail=tail, Acks=True
                )
                reply = decode(
                    LogReply,
                    (
                        await self.nc.request(
                            subjects.logs(chosen.NodeID), encode(request), timeout=5
                        )
                    ).data,
                )
                if reply.OK:
                    while True:
                        # What the node has on disk comes at the reader's pace: each frame
                        # is acknowledged once its lines are taken. A quiet followed task
                        # may send nothing for hours; a stored log never pauses that long.
                        try:
                            msg = await sub.next_msg(timeout=None if follow else LOG_IDLE)
                        except NatsTimeout:
                            raise Unavailable(
                                f"node {chosen.NodeID} stopped sending the logs of {chosen.ID}"
                            ) from None
                        frame = decode(LogFrame, msg.data)
                        for kind, line in frame.Lines:
                            yield kind, line
                        if msg.reply:
                            await msg.respond(b"")
                        if frame.EOF:
                            if frame.Error:
                                raise BadRequest(frame.Error)
                            return
            except (NatsTimeout, NoRespondersError, asyncio.TimeoutError):
                pass  # fall back to what the store has
            finally:
                with contextlib.suppress(Exception):
                    await sub.unsubscribe()
        output = chosen.RunOutput or RunOutput()
        lines = [(1, line) for line in output.Stdout.splitlines()]
        lines += [(2, line) for line in output.Stderr.splitlines()]
        for kind, line in lines[-tail:] if tail > 0 else [] if tail < 0 else lines:
            yield kind, line
