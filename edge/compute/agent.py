"""The compute node agent: NATS wiring, bidding, heartbeats, and the update outbox."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import shutil
import sqlite3
import uuid
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, ClassVar

from edge import s3 as s3conf
from edge.compute.join import join, load_identity
from edge.config import Config, ConfigError
from edge.executors import ServiceExecutor, build_executors
from edge.executors.base import ExecutionResult, Executor, ExecutorError
from edge.models import (
    LOST_DETAIL,
    ComputeNodeInfo,
    ComputeState,
    ComputeStateType,
    Execution,
    Inventory,
    NodeInfo,
    Resources,
    StoreInfo,
    display_type,
    now_ns,
    parse_bytes,
    parse_cpu,
)
from edge.models.version import this_build
from edge.publishers import (
    LocalPublisher,
    Publisher,
    PublishError,
    build_publishers,
    publisher_for,
)
from edge.publishers.local import archive_path
from edge.storage import ObjectCache, build_input_providers
from edge.storage.base import InputProvider, StoragePolicy
from edge.tasks import cancel_and_wait
from edge.transport import subjects
from edge.transport.client import (
    Client,
    Identity,
    Msg,
    NatsTimeout,
    NoRespondersError,
    connect_forever,
    describe,
    tls_context,
)
from edge.transport.messages import (
    CancelReply,
    CancelRequest,
    ExecutionUpdate,
    HandshakeReply,
    Heartbeat,
    JobCache,
    LogFrame,
    LogReply,
    LogRequest,
    OfferReply,
    OfferResult,
    PresignReply,
    PresignRequest,
    ResultChunkRequest,
    UpdateAck,
    decode,
    decode_offer,
    encode,
    updates_message,
)

from . import inventory
from .bidder import refusal
from .ledger import Ledger
from .logs import ExecutionLog, Line, SendFrame, send_lines
from .runner import Outcome, publish_results, run_execution
from .runner import _outcome as outcome_of

log = logging.getLogger("bacedge.compute")

PUBLISH_ATTEMPTS = 6  # about a minute of backoff before a publish failure fails the job
MAX_CHUNK = 768 * 1024  # under NATS's default 1 MiB payload limit
PRUNE_INTERVAL = 3600.0  # seconds between ledger prunes
LOG_ACK_TIMEOUT = 60.0  # seconds a log reader may take over one frame before it is dropped
OFFERED_JOBS = JobCache()  # one per process: simulated nodes share it
LEDGER_RETRY_FIRST, LEDGER_RETRY_MAX = 0.5, 30.0  # seconds between tries of a failed write
_EXECUTION_ID = re.compile(r"^e-[A-Za-z0-9-]{1,64}$")


def stable_node_id(data_dir: Path) -> str:
    """The node's ID, created once and kept in its data dir across restarts."""
    path = data_dir / "node_id"
    try:
        existing = path.read_text().strip()
        if existing:
            return existing
    except FileNotFoundError:
        pass
    data_dir.mkdir(parents=True, exist_ok=True)
    node_id = f"n-{uuid.uuid4()}"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(node_id + "\n")
    tmp.replace(path)
    return node_id


class ComputeNode:
    """One compute node on NATS. Many may run in one process (`ComputeFleet`): they share a
    connection (`nc`, whose owner calls `reconnected` and `disconnected`), and simulated
    nodes (`edge/compute/simulated.py`) also their ledger file, with an ID and a root given."""

    serves_results: ClassVar[bool] = True  # the `local` publisher's own HTTP server
    watches_stores: ClassVar[bool] = True  # this device's S3 store, for data-local scheduling

    def __init__(
        self,
        config: Config,
        servers: list[str],
        token: str | None = None,
        nc: Client | None = None,
        *,
        node_id: str | None = None,
        root: Path | None = None,
        ledger: Ledger | None = None,
    ) -> None:
        self.config = config
        self.cfg = config.compute
        self.servers = servers
        self.token = token
        self.identity: Identity | None = None  # its own NATS user, after joining with a token
        self.root = root or config.data_dir / "compute"
        self._workdirs = self.root / "executions"  # one folder per execution, made if needed
        self._results = self.root / "results"
        self.node_id = node_id or stable_node_id(self.root)
        self.ledger = ledger or Ledger(self.root / "ledger.db")
        self.executors: dict[str, Executor] = {}
        self.providers: dict[str, InputProvider] = {}
        self.publishers: dict[str, Publisher] = {}
        self.policy = StoragePolicy(
            allowed_local_paths=[Path(p) for p in self.cfg.allowed_local_paths],
            allow_network=self.cfg.locality.strip().lower() != "local",
            max_download_bytes=self.cfg.max_input_bytes,
        )
        self.cache = ObjectCache(self.root / "cache" / "objects", self.cfg.input_cache_bytes)
        self.capacity = Resources()
        self.info = NodeInfo()
        self.nc = nc
        self._own_nc = nc is None
        self.connected = asyncio.Event()
        self.running: dict[str, asyncio.Task[None]] = {}
        self.active: dict[str, Execution] = {}
        self.logs: dict[str, ExecutionLog] = {}
        self._cancel_reasons: dict[str, str] = {}
        self._unsent: dict[int, ExecutionUpdate] = {}
        self._flush = asyncio.Event()
        self._recording: set[asyncio.Future[None]] = set()  # updates on their way to the ledger
        self._tasks: list[asyncio.Task[Any]] = []
        self._slots: asyncio.Semaphore | None = None
        self._beat = 0
        self._background: set[asyncio.Task[None]] = set()
        self._service_engines: dict[str, ServiceExecutor] = {}
        self._metrics_runner: Any = None

    # -- lifecycle ----------------------------------------------------------
    async def start(self) -> None:
        await self.ledger.open()
        if self.nc is None:  # its own connection: as itself, once it has joined
            self.identity = load_identity(self.root, self.node_id)
            token = self.cfg.join_token
            if self.identity is None and token is not None:
                self.identity = await join(
                    self.servers,
                    token.get_secret_value(),
                    self.node_id,
                    self.root,
                    tls_context(self.config),
                )
            elif token is not None:
                log.info("this node has joined already; its join token is not needed")
        try:
            self.executors = build_executors(self.cfg.engines, self._engine_settings())
        except ValueError as exc:
            raise ConfigError(f"compute.engines: {exc}") from None
        self._service_engines = {
            name: e for name, e in self.executors.items() if isinstance(e, ServiceExecutor)
        }
        for executor in self._services():
            try:
                await executor.open()
            except ExecutorError as exc:
                raise ConfigError(str(exc)) from None
        self.providers = build_input_providers(self.config, self.cache)
        self.publishers = build_publishers(self.config, self.root / "published", self._presign)
        if self.serves_results:
            for publisher in self._local_publishers():
                await publisher.start()
        if self.cfg.metrics_port:
            await self._serve_metrics()
        total, machine = await self._machine()
        self._engine_inventory(machine)
        self.capacity = self._capacity(total)
        slots = self.cfg.max_concurrent or max(4, int(total.CPU) * 2)
        self._slots = asyncio.Semaphore(slots)
        self.info = NodeInfo(
            NodeID=self.node_id,
            NodeType="Compute",
            Labels={**self._default_labels(machine.Arch), **self.config.node.labels},
            ComputeNodeInfo=ComputeNodeInfo(
                ExecutionEngines=sorted(self.executors),
                Publishers=sorted(self.publishers),
                StorageSources=sorted({display_type(p.types[0]) for p in self.providers.values()}),
                Stores=await self._stores(),
                AllowedLocalPaths=[str(p) for p in self.cfg.allowed_local_paths],
                MaxCapacity=self.capacity,
                AvailableCapacity=self.capacity,
                QueueCapacity=Resources(),
                MaxJobRequirements=self.capacity,
                Inventory=machine,
            ),
            BacalhauVersion=this_build().wire(),
        )
        await self._recover()
        self._tasks = [
            asyncio.create_task(self._connection(), name="compute-connect"),
            asyncio.create_task(self._heartbeats(), name="compute-heartbeat"),
            asyncio.create_task(self._flusher(), name="compute-outbox"),
            asyncio.create_task(self._prune(), name="compute-prune"),
        ]
        if self._services():
            self._tasks.append(asyncio.create_task(self._watch_engines(), name="compute-engines"))
        if self.watches_stores:
            self._tasks.append(asyncio.create_task(self._watch_stores(), name="compute-stores"))

    async def _machine(self) -> tuple[Resources, Inventory]:
        """Total capacity and inventory: this machine's (psutil, NVML)."""
        return await asyncio.to_thread(inventory.machine, self.root)

    def _engine_settings(self) -> dict[str, dict[str, Any]]:
        return {
            "wasm": {"cache_dir": self.root / "wasmer"},
            "docker": {
                "socket": self.cfg.podman_socket,
                "allowed_registries": self.cfg.allowed_registries,
                "pids_limit": self.cfg.pids_limit,
                "stop_grace": self.cfg.stop_grace,
                "output_cap": self.cfg.max_output_bytes,
            },
        }

    def _services(self) -> list[ServiceExecutor]:
        """Engines backed by an outside service (Podman), which add to the inventory."""
        return list(self._service_engines.values())

    def _engine_inventory(self, machine: Inventory) -> None:
        """Images tasks can use and which limits hold, so the scheduler and users know."""
        images: set[str] = set()
        limits: dict[str, str] = {}
        for executor in self._services():
            images.update(executor.images())
            limits.update(executor.limits())
        machine.Images = sorted(images)
        machine.Limits = {**machine.Limits, **limits}

    async def _watch_engines(self) -> None:
        """Picks up images loaded or removed while running, and tells the orchestrator."""
        while True:
            await asyncio.sleep(self.cfg.heartbeat_interval)
            await self._refresh_engines()

    async def _refresh_engines(self, reread: bool = True) -> None:
        if reread:
            for executor in self._services():
                await executor.refresh()
        inventory = self.info.ComputeNodeInfo.Inventory
        before = (list(inventory.Images), dict(inventory.Limits))
        self._engine_inventory(inventory)
        if (inventory.Images, inventory.Limits) == before:
            return
        if self.nc is not None and self.connected.is_set():
            try:
                await self._handshake(reconcile=False)
            except Exception as exc:  # the next change or reconnect sends it again
                log.info("node info not updated", extra={"error": str(exc)})

    def _default_labels(self, arch: str) -> dict[str, str]:
        labels = {"Architecture": arch, "Operating-System": "linux"}
        if self.config.node.name:
            labels["name"] = self.config.node.name
        return labels

    def _capacity(self, total: Resources) -> Resources:
        cpu = parse_cpu(self.cfg.cpu) if self.cfg.cpu else total.CPU
        memory = parse_bytes(self.cfg.memory, "memory") if self.cfg.memory else total.Memory
        disk = parse_bytes(self.cfg.disk, "disk") if self.cfg.disk else total.Disk
        cpu = max(0.0, cpu - parse_cpu(self.cfg.reserve_cpu))
        memory = max(0, memory - parse_bytes(self.cfg.reserve_memory, "memory"))
        return Resources(CPU=cpu, Memory=memory, Disk=disk, GPU=total.GPU, GPUs=total.GPUs)

    async def stop(self) -> None:
        # Executions get time for their cleanup (a container stopped with grace).
        await asyncio.gather(
            cancel_and_wait(self._tasks),
            cancel_and_wait(list(self.running.values()), patience=self.cfg.stop_grace + 5),
        )
        try:
            await self._drain_outbox_once()
        except Exception as exc:  # kept in the ledger: sent at the next start
            log.info("updates left for the next start", extra={"error": describe(exc)})
        # Then what was spawned: log readers, handshake retries, ledger acknowledgements
        # (one cut short is sent again at the next start and ignored).
        await cancel_and_wait(list(self._background))
        if self.nc is not None and self._own_nc:
            with contextlib.suppress(Exception):
                await self.nc.close()
        for executor in self.executors.values():
            with contextlib.suppress(Exception):
                await executor.close()
        for publisher in self._local_publishers():
            await publisher.close()
        if self._metrics_runner is not None:
            await self._metrics_runner.cleanup()
        await self.ledger.close()

    async def _serve_metrics(self) -> None:
        """Prometheus `/metrics` on `[compute] metrics_host:metrics_port` (localhost unless
        configured): a port that is taken is a startup error naming the key."""
        from aiohttp import web

        from edge.metrics import CONTENT_TYPE, ComputeMetrics, render

        registry = ComputeMetrics(self).registry

        async def handler(_request: web.Request) -> web.Response:
            return web.Response(body=render(registry), headers={"Content-Type": CONTENT_TYPE})

        app = web.Application()
        app.router.add_get("/metrics", handler)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.cfg.metrics_host, self.cfg.metrics_port).start()
        except OSError as exc:
            await runner.cleanup()
            raise ConfigError(
                f"compute.metrics_port: cannot listen on {self.cfg.metrics_host}:"
                f"{self.cfg.metrics_port} ({exc.strerror or exc}): choose another port"
            ) from None
        self._metrics_runner = runner

    def _local_publishers(self) -> list[LocalPublisher]:
        return [p for p in set(self.publishers.values()) if isinstance(p, LocalPublisher)]

    async def _stores(self) -> list[StoreInfo]:
        """The S3 store this device runs, with its buckets, for data-local scheduling."""
        local = s3conf.local_store(self.config)
        if local is None:
            return []

        def buckets() -> list[str]:
            return sorted(b.name for b in local.client().list_buckets())

        try:
            names, alive = await asyncio.to_thread(buckets), True
        except Exception:
            names, alive = [], False
        return [StoreInfo(Endpoint=local.url, Buckets=names, Alive=alive)]

    async def _watch_stores(self) -> None:
        """Buckets made or removed while running reach the scheduler with the node info."""
        while True:
            await asyncio.sleep(self.cfg.heartbeat_interval)
            stores = await self._stores()
            if stores == self.info.ComputeNodeInfo.Stores:
                continue
            self.info.ComputeNodeInfo.Stores = stores
            if self.nc is not None and self.connected.is_set():
                with contextlib.suppress(Exception):
                    await self._handshake(reconcile=False)

    async def _recover(self) -> None:
        """Executions cut short by a crash or restart are reconciled, never left running:
        one whose task finished meanwhile (a container that exited) reports its result, the
        others fail. Leftover containers are removed."""
        stale = await self.ledger.unfinished()
        found: dict[str, ExecutionResult] = {}
        for executor in self._services():
            try:
                found.update(await executor.reconcile(self.node_id, {e.ID for e in stale}))
            except Exception as exc:
                log.warning("cannot reconcile leftover tasks", extra={"error": str(exc)})
        for execution in stale:
            result = found.get(execution.ID)
            publishing = execution.state == ComputeStateType.PUBLISHING
            if publishing and execution.Job is not None:
                # The task had finished; only its results were on their way out.
                outcome = Outcome(
                    ComputeStateType.COMPLETED,
                    "execution completed",
                    execution.RunOutput,
                    details=dict(execution.ComputeState.Details),
                )
            elif result is None or execution.Job is None:
                outcome = Outcome(
                    ComputeStateType.FAILED,
                    "compute node restarted while the execution was running",
                    details={LOST_DETAIL: "node restarted"},
                )
            else:
                outcome = outcome_of(result)
            if outcome.state == ComputeStateType.COMPLETED:
                self._resume(execution, outcome)
            else:
                await self._report(execution, outcome)
        for update in await self.ledger.outbox(limit=100_000):
            self._unsent[update.Sequence] = update
        if stale:
            log.warning("failed executions interrupted by a restart", extra={"count": len(stale)})

    def _resume(self, execution: Execution, finished: Outcome) -> None:
        """Publishes a task that finished before a restart, tracked like a running one so
        a reconnect does not mistake it for a forgotten execution."""
        assert execution.Job is not None

        async def finish() -> None:
            try:
                try:
                    outcome = await self._publish_results(execution, finished)
                finally:
                    self.running.pop(execution.ID, None)
                await self._report(execution, outcome)
            finally:
                self.active.pop(execution.ID, None)  # only now, as in _execute

        self.active[execution.ID] = execution
        self.running[execution.ID] = asyncio.create_task(finish(), name=f"publish-{execution.ID}")

    async def _publish_results(self, execution: Execution, finished: Outcome) -> Outcome:
        """Publishing state, then the publisher, retried with backoff: a store or link that
        is down for a while delays the result instead of losing it."""
        assert execution.Job is not None
        try:
            publisher = publisher_for(execution.Job.task, self.publishers)
        except PublishError as exc:
            return Outcome(ComputeStateType.FAILED, f"publish: {exc}", finished.output)
        if publisher is None:  # no publisher and no ResultPaths: no result folder was made
            return finished
        result_dir = self._results / execution.ID
        await self._report(
            execution,
            Outcome(
                ComputeStateType.PUBLISHING,
                "Publishing results",
                finished.output,
                details=finished.details,
            ),
        )
        scratch = self._workdirs / execution.ID / "publish"
        delay, problem = 1.0, ""
        for attempt in range(1, PUBLISH_ATTEMPTS + 1):
            try:
                outcome = await publish_results(
                    execution, publisher, self.node_id, result_dir, scratch, finished
                )
            except PublishError as exc:
                problem = str(exc)
                if not exc.transient:
                    break
                log.warning(
                    "publishing failed; retrying",
                    extra={"execution_id": execution.ID, "attempt": attempt, "error": problem},
                )
                if attempt < PUBLISH_ATTEMPTS:
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 30.0)
                continue
            shutil.rmtree(result_dir, ignore_errors=True)
            return outcome
        return Outcome(
            ComputeStateType.FAILED,
            f"publishing results failed: {problem}",
            finished.output,
            details=finished.details,
        )

    async def _presign(self, execution_id: str) -> tuple[str, str, str]:
        """Asks the orchestrator for an `s3managed` upload URL for one of our executions."""
        if self.nc is None or not self.connected.is_set():
            raise PublishError("the orchestrator is not reachable to sign the s3managed upload")
        request = PresignRequest(ExecutionID=execution_id, NodeID=self.node_id)
        try:
            msg = await self.nc.request(subjects.presign(self.node_id), encode(request), timeout=10)
        except (NatsTimeout, NoRespondersError, asyncio.TimeoutError) as exc:
            raise PublishError(
                f"the orchestrator did not sign the s3managed upload ({type(exc).__name__})"
            ) from None
        reply = decode(PresignReply, msg.data)
        if not reply.OK:
            raise PublishError(reply.Error or "the orchestrator refused to sign the upload")
        return reply.URL, reply.Bucket, reply.Key

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Fire-and-forget work that must not be garbage-collected half-way."""
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- NATS ---------------------------------------------------------------
    async def _connection(self) -> None:
        if self.nc is None:
            self.nc = await connect_forever(
                self.servers,
                f"bacedge-compute-{self.node_id}",
                self.token,
                on_reconnect=self.reconnected,
                on_disconnect=self.disconnected,
                tls=tls_context(self.config),
                identity=self.identity,
            )
        nc = self.nc
        await nc.subscribe(subjects.offer(self.node_id), cb=self._on_offer)
        await nc.subscribe(subjects.cancel(self.node_id), cb=self._on_cancel)
        await nc.subscribe(subjects.logs(self.node_id), cb=self._on_logs)
        await nc.subscribe(subjects.results(self.node_id), cb=self._on_result_chunk)
        await self._handshake_until_accepted()

    async def reconnected(self) -> None:
        """The NATS link is back: handshake again (the orchestrator may have moved on)."""
        if self._tasks:  # started
            self._spawn(self._handshake_until_accepted())

    async def disconnected(self) -> None:
        self.connected.clear()

    async def _handshake_until_accepted(self) -> None:
        delay = 0.2
        while True:
            try:
                await self._handshake()
                return
            except (NatsTimeout, NoRespondersError, asyncio.TimeoutError, ConnectionError) as exc:
                log.info(
                    "orchestrator not answering the handshake; retrying",
                    extra={"error": type(exc).__name__},
                )
            except Exception as exc:  # a closed or reconnecting client raises several types
                log.info("handshake failed; retrying", extra={"error": str(exc)})
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def _handshake(self, reconcile: bool = True) -> None:
        """Sends the node info; `reconcile=False` only updates it (an image was loaded),
        without judging executions whose offer replies may still be in flight."""
        assert self.nc is not None
        self.info.ComputeNodeInfo.AvailableCapacity = self._available()
        why = subjects.CONNECTING if reconcile else subjects.UPDATING
        # What ran when the orchestrator was asked: its reply can only judge those. An
        # offer placed after it answered may arrive (and start) before its reply is read.
        asked_about = set(self.running)
        msg = await self.nc.request(
            subjects.handshake(self.node_id),
            encode(self.info),
            timeout=5,
            headers={subjects.HANDSHAKE_HEADER: why},
        )
        reply = decode(HandshakeReply, msg.data)
        if not reply.Accepted:
            log.error("orchestrator refused this node", extra={"reason": reply.Reason})
            raise ConnectionError(reply.Reason)
        if not reconcile:
            return
        # Anything we run that the orchestrator no longer expects was failed over.
        expected = set(reply.ActiveExecutions)
        for execution_id in asked_about & set(self.running):
            if execution_id not in expected:
                self._cancel(
                    execution_id,
                    "the orchestrator closed this execution while the node was unreachable",
                )
        reported = {u.ExecutionID for u in self._unsent.values()}
        for execution_id in expected - set(self.running) - set(self.active) - reported:
            await self._report_unknown(execution_id)
        self.connected.set()
        self._flush.set()
        log.info(
            "connected to orchestrator",
            extra={"node_id": self.node_id, "membership": reply.Membership.value},
        )

    async def _report_unknown(self, execution_id: str) -> None:
        """An execution the orchestrator placed here that this node never ran (or forgot):
        an offer that never arrived, or one accepted just before a crash (the reply goes out
        before the ledger's write). Lost with the node, never the task's failure, so the
        orchestrator may place it here again."""
        execution = await self.ledger.get(execution_id)
        if execution is not None and execution.terminal:
            return  # finished and acknowledged; the orchestrator will catch up
        await self._report(
            execution or Execution(ID=execution_id),
            Outcome(
                ComputeStateType.FAILED,
                "the compute node has no record of this execution: it never arrived, or the "
                "node restarted before it started",
                details={LOST_DETAIL: "node restarted"},
            ),
        )

    def _available(self) -> Resources:
        used = Resources()
        for execution in self.active.values():
            if execution.Job is not None:
                used = used.add(execution.Job.task.Resources.parse())
        return self.capacity.sub(used)

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self.cfg.heartbeat_interval)
            if self.nc is None or not self.connected.is_set():
                continue
            self._beat += 1
            running = sum(1 for t in self.running.values() if not t.done())
            beat = Heartbeat(
                NodeID=self.node_id,
                Sequence=self._beat,
                AvailableCapacity=self._available(),
                RunningExecutions=running,
                EnqueuedExecutions=max(0, len(self.active) - running),
            )
            try:
                # A reply later than the next beat is no use, and waiting longer would
                # hold up that beat.
                msg = await self.nc.request(
                    subjects.heartbeat(self.node_id),
                    encode(beat),
                    timeout=min(5.0, self.cfg.heartbeat_interval),
                )
                if b'"Known": false' in msg.data:
                    await self._handshake()
            except Exception as exc:
                log.debug("heartbeat not answered", extra={"error": str(exc)})

    async def _prune(self) -> None:
        """Hourly, so a device that runs jobs for years keeps only its recent work:
        finished executions older than `[compute] ledger_retention` leave the ledger, a
        thousand at a time, with their folders (output logs); `local` result archives
        older than `[publishers.local] retention` go too."""
        while True:
            await self._prune_ledger()
            await self._prune_results()
            await asyncio.sleep(PRUNE_INTERVAL)

    async def _prune_ledger(self) -> None:
        cutoff = now_ns() - int(self.cfg.ledger_retention * 1e9)
        try:
            while forgotten := await self.ledger.prune(cutoff):
                await asyncio.to_thread(self._remove_workdirs, forgotten)
                log.info("ledger pruned", extra={"executions": len(forgotten)})
        except Exception as exc:
            log.warning("ledger not pruned", extra={"error": str(exc)})

    async def _prune_results(self) -> None:
        for local in self._local_publishers():
            try:
                removed = await asyncio.to_thread(local.prune)
            except OSError as exc:
                log.warning("local results not pruned", extra={"error": str(exc)})
                continue
            if removed:
                log.info("local results pruned", extra={"archives": removed})

    def _remove_workdirs(self, execution_ids: list[str]) -> None:
        for execution_id in execution_ids:
            if _EXECUTION_ID.match(execution_id):
                shutil.rmtree(self._workdirs / execution_id, ignore_errors=True)

    # -- offers ---------------------------------------------------------------
    async def _on_offer(self, msg: Msg) -> None:
        try:
            offer = decode_offer(msg.data, OFFERED_JOBS)
        except ValueError as exc:
            log.error("bad offer", extra={"error": str(exc)})
            return
        results, accepted = [], []
        available = self.capacity
        await self._prepare_bids(offer.Executions)
        # An offer made again (an orchestrator that restarted, a reply lost on the way) is
        # answered "taken" and never run twice: this node reports that execution's states.
        taken = set(self.active)
        if not offer.Fresh:
            taken |= await self.ledger.known(
                [e.ID for e in offer.Executions if e.ID not in self.active]
            )
        for execution in offer.Executions:
            if execution.ID in taken:
                results.append(OfferResult(ExecutionID=execution.ID, Accepted=True))
                continue
            reason = refusal(
                execution,
                self.executors,
                self.providers,
                self.publishers,
                self.policy,
                self.cfg.allow_networking,
                available,
            )
            if reason:
                results.append(OfferResult(ExecutionID=execution.ID, Accepted=False, Reason=reason))
                continue
            execution.ComputeState = ComputeState(StateType=ComputeStateType.BID_ACCEPTED)
            execution.ModifyTime = now_ns()
            accepted.append(execution)
            results.append(OfferResult(ExecutionID=execution.ID, Accepted=True))
        await msg.respond(encode(OfferReply(Results=results)))
        for execution in accepted:
            self.active[execution.ID] = execution
            self.running[execution.ID] = asyncio.create_task(
                self._execute(execution), name=f"execution-{execution.ID}"
            )

    async def _prepare_bids(self, executions: list[Execution]) -> None:
        """Lets service engines refresh what their bid checks need (an image just loaded)."""
        if not self._service_engines:
            return
        for execution in executions:
            if execution.Job is None or not execution.Job.Tasks:
                continue
            executor = self._service_engines.get(execution.Job.task.Engine.Type)
            if executor is not None:
                try:
                    await executor.prepare_bid(execution.Job.task)
                except Exception as exc:
                    log.debug("bid preparation failed", extra={"error": str(exc)})
        images = sorted({i for e in self._services() for i in e.images()})
        if images != self.info.ComputeNodeInfo.Inventory.Images:
            self._spawn(self._refresh_engines(reread=False))

    async def _execute(self, execution: Execution) -> None:
        assert self._slots is not None and execution.Job is not None
        workdir = self._workdirs / execution.ID  # created when something needs it
        output_log = ExecutionLog(workdir / "output.jsonl", self.cfg.max_log_bytes)
        self.logs[execution.ID] = output_log
        outcome: Outcome
        try:
            if self._slots.locked():
                # It waits for a slot: in the ledger meanwhile, so a restart finds it. One
                # that starts now is first written by its Running report (a transaction less
                # before every task; a crash before that write loses an offer the node never
                # started, which the orchestrator hears as "no record" and places again).
                try:
                    await self.ledger.record([execution], [])
                except (sqlite3.Error, OSError) as exc:  # it runs anyway, as offered
                    log.warning(
                        "accepted execution not written to the ledger",
                        extra={"execution_id": execution.ID, "error": str(exc)},
                    )
            async with self._slots:
                await self._report(execution, Outcome(ComputeStateType.RUNNING, "Running"))
                outcome = await run_execution(
                    execution,
                    self.executors[execution.Job.task.Engine.Type],
                    self.providers,
                    self.policy,
                    self.node_id,
                    workdir,
                    self._results / execution.ID,
                    output_log,
                    self.cfg.default_execution_timeout,
                    self.cfg.max_output_bytes,
                    self.cfg.allow_networking,
                )
                if outcome.state == ComputeStateType.COMPLETED:
                    outcome = await self._publish_results(execution, outcome)
        except asyncio.CancelledError:
            reason = self._cancel_reasons.pop(execution.ID, "")
            outcome = Outcome(ComputeStateType.CANCELLED, reason or "execution cancelled")
            if not reason:  # the agent is shutting down: leave it to recovery on restart
                output_log.close()
                raise
        except Exception as exc:
            log.exception("execution crashed", extra={"execution_id": execution.ID})
            outcome = Outcome(ComputeStateType.FAILED, f"internal error: {exc}")
        finally:
            output_log.close()
            self.logs.pop(execution.ID, None)  # its file serves `logs` from here on
            self.running.pop(execution.ID, None)
        try:
            await self._report(execution, outcome)
        finally:
            # Only now: a handshake meanwhile must not take a task whose end is still on
            # its way to the ledger for one this node never heard of.
            self.active.pop(execution.ID, None)

    async def _report(self, execution: Execution, outcome: Outcome) -> None:
        # Assembled, not validated: every value is this node's own, of its type already
        # (two models per state change, on every node, for every execution).
        execution.ComputeState = ComputeState.assemble(
            StateType=outcome.state, Message=outcome.message, Details=outcome.details
        )
        execution.ModifyTime = now_ns()
        if outcome.output is not None:
            execution.RunOutput = outcome.output
        if outcome.published is not None:
            execution.PublishedResult = outcome.published
        update = ExecutionUpdate.assemble(
            Sequence=0,
            ExecutionID=execution.ID,
            JobID=execution.JobID,
            NodeID=self.node_id,
            State=outcome.state,
            Message=outcome.message,
            Details=dict(outcome.details),
            RunOutput=outcome.output,
            PublishedResult=outcome.published,
            Time=execution.ModifyTime,
        )
        delay = LEDGER_RETRY_FIRST
        while not await self._record(execution, update):
            # A full disk or a failing card: nothing is sent that the ledger does not hold,
            # and this execution waits here (its order kept) until a write succeeds, where
            # giving up would leave it running on the orchestrator forever.
            await asyncio.sleep(delay)
            delay = min(delay * 2, LEDGER_RETRY_MAX)
        self._flush.set()

    async def _record(self, execution: Execution, update: ExecutionUpdate) -> bool:
        """Writes one state change to the ledger and queues it; False if the write failed.
        The flusher waits for writes in progress, never for one that waits to be retried."""
        recorded: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._recording.add(recorded)
        try:
            for stored in await self.ledger.record([execution], [update]):
                self._unsent[stored.Sequence] = stored
        except (sqlite3.Error, OSError) as exc:
            log.error(
                "cannot write to the ledger; will retry",
                extra={
                    "execution_id": execution.ID,
                    "state": update.State.label,
                    "error": str(exc),
                },
            )
            return False
        finally:
            self._recording.discard(recorded)
            recorded.set_result(None)
        return True

    # -- cancel and logs ---------------------------------------------------------
    def _cancel(self, execution_id: str, reason: str) -> bool:
        task = self.running.get(execution_id)
        if task is None or task.done():
            return False
        self._cancel_reasons[execution_id] = reason
        task.cancel()
        return True

    async def _on_cancel(self, msg: Msg) -> None:
        request = decode(CancelRequest, msg.data)
        done = [e for e in request.ExecutionIDs if self._cancel(e, request.Reason or "cancelled")]
        if msg.reply:
            await msg.respond(encode(CancelReply(Cancelled=done)))

    async def _on_logs(self, msg: Msg) -> None:
        request = decode(LogRequest, msg.data)
        path = self._workdirs / request.ExecutionID / "output.jsonl"
        live = self.logs.get(request.ExecutionID)
        if live is None and not path.exists():  # the orchestrator shows its stored output
            await msg.respond(encode(LogReply(OK=False, Error="no logs on this node")))
            return
        await msg.respond(encode(LogReply(OK=True)))
        # A task of its own: a long log must not hold up the next request.
        self._spawn(self._send_logs(request, path, live))

    async def _send_logs(self, request: LogRequest, path: Path, live: ExecutionLog | None) -> None:
        send = self._frames(request.Subject, request.Acks)
        try:
            if request.Follow and live is not None and not live.closed:
                await live.follow(request.Tail, send)
            else:
                await send_lines(path, request.Tail, send)
        except Exception as exc:  # its reader left (the API client went away)
            log.debug(
                "log stream ended early",
                extra={"execution_id": request.ExecutionID, "error": describe(exc)},
            )

    def _frames(self, subject: str, acked: bool) -> SendFrame:
        """Frames to one reader: acknowledged ones wait for the reader to take each (an
        orchestrator that asks so); others are only published (older orchestrators)."""

        async def send(lines: list[Line], eof: bool) -> None:
            assert self.nc is not None
            data = encode(LogFrame(Lines=lines, EOF=eof))
            if acked:
                await self.nc.request(subject, data, timeout=LOG_ACK_TIMEOUT)
            else:
                await self.nc.publish(subject, data)

        return send

    async def _on_result_chunk(self, msg: Msg) -> None:
        """Part of a `local` result archive, for the orchestrator to relay to a user."""
        if not msg.reply or self.nc is None:
            return
        try:
            request = decode(ResultChunkRequest, msg.data)
        except ValueError:
            await self.nc.publish(msg.reply, b"", headers={"Error": "bad request"})
            return
        path = archive_path(self.root / "published", request.ExecutionID)
        if not _EXECUTION_ID.match(request.ExecutionID) or not path.is_file():
            error = f"no local result for {request.ExecutionID[:80]} on node {self.node_id}"
            await self.nc.publish(msg.reply, b"", headers={"Error": error})
            return
        offset = max(0, request.Offset)
        length = max(0, min(request.Length, MAX_CHUNK))

        def read() -> tuple[int, bytes]:
            with path.open("rb") as handle:
                handle.seek(offset)
                return path.stat().st_size, handle.read(length)

        size, data = await asyncio.to_thread(read)
        await self.nc.publish(msg.reply, data, headers={"Size": str(size)})

    # -- outbox ------------------------------------------------------------------
    async def _flusher(self) -> None:
        delay = 0.2
        while True:
            if self._unsent:  # retried every 2 s while updates wait
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._flush.wait(), timeout=2.0)
            else:  # nothing to send: woken by the next update (no idle polling)
                await self._flush.wait()
            self._flush.clear()
            if self._recording:
                # Updates already on their way to the ledger leave in the same message (a
                # short task's Running and Completed: one round trip, one commit on the
                # orchestrator). Only those begun before now: a busy node never starves it.
                await asyncio.wait(set(self._recording))
            if not self._unsent or not self.connected.is_set():
                continue
            try:
                await self._drain_outbox_once()
                delay = 0.2
            except Exception as exc:
                log.info(
                    "updates not delivered; will retry",
                    extra={"error": str(exc), "pending": len(self._unsent)},
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
                self._flush.set()

    async def _drain_outbox_once(self) -> None:
        while self._unsent and self.nc is not None and self.nc.is_connected:
            pending = [self._unsent[s] for s in sorted(self._unsent)[:500]]
            data, _ = updates_message(self.node_id, pending, self.nc.max_payload - 1024)
            msg = await self.nc.request(subjects.updates(self.node_id), data, timeout=10)
            ack = decode(UpdateAck, msg.data)
            for sequence in ack.Sequences:
                self._unsent.pop(sequence, None)
            # Forgotten in the background: the next update need not wait for this write
            # (it shares its commit when both are queued). Should the node stop first, the
            # orchestrator gets those updates again at the next start and ignores them.
            self._spawn(self._forget_delivered(ack.Sequences))

    async def _forget_delivered(self, sequences: list[int]) -> None:
        try:
            await self.ledger.acknowledge(sequences)
        except Exception as exc:
            log.warning("delivered updates not cleared from the ledger", extra={"error": str(exc)})
