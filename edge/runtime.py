"""Running the roles of one `bacedge serve` process, and stopping them in order."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge import eventloop, systemd
from edge.compute.agent import ComputeNode
from edge.compute.join import JoinError
from edge.compute.ledger import LedgerDB
from edge.compute.simulated import SimulatedNode
from edge.config import Config
from edge.models import Job, NodeInfo
from edge.models.version import this_build
from edge.store import LocalStore, StoreError
from edge.tasks import cancel_and_wait
from edge.tls import TlsError, server_context
from edge.transport.client import connect, connect_forever, describe, tls_context
from edge.transport.server import EmbeddedNats

if TYPE_CHECKING:  # imported when the orchestrator starts: a compute node never loads them
    from aiohttp import web

    from edge.orchestrator.identities import NodeIdentities
    from edge.orchestrator.results import ResultRelay
    from edge.orchestrator.service import Orchestrator
    from edge.orchestrator.store import Store

log = logging.getLogger("bacedge")

CONNECT_TIMEOUT = 30.0  # the orchestrator's first connection to NATS


class StartupError(Exception):
    """A role cannot start; the message says what to change."""


def _nats_tls(cfg: Config) -> tuple[str, str]:
    """[nats] tls_cert and tls_key, checked to load before nats-server is given them."""
    if cfg.nats.tls_cert:
        try:
            server_context(cfg.nats.tls_cert, cfg.nats.tls_key, "[nats]")
        except TlsError as exc:
            raise StartupError(str(exc)) from None
    return cfg.nats.tls_cert, cfg.nats.tls_key


@dataclass
class Runtime:
    config: Config
    orchestrator: bool
    compute: bool
    nats: EmbeddedNats | None = None
    store: Store | None = None
    orch: Orchestrator | None = None
    relay: ResultRelay | None = None
    node: ComputeNode | None = None
    object_store: LocalStore | None = None  # the local S3 store (`--store`)
    identities: NodeIdentities | None = None  # join tokens and node users (embedded NATS)
    _site_runner: web.AppRunner | None = None
    _closers: list[Callable[[], Any]] = field(default_factory=list)
    api_url: str = ""

    @property
    def token(self) -> str | None:
        token = self.config.nats.token
        return token.get_secret_value() if token else None

    def nats_servers(self) -> list[str]:
        if self.config.nats.servers:
            return list(self.config.nats.servers)
        if self.nats is not None:
            return [self.nats.url]
        return list(self.config.compute.orchestrators)

    async def start(self) -> None:
        if self.config.store.enabled:  # first: compute nodes read its credentials file
            self.object_store = LocalStore(self.config)
            try:
                await self.object_store.start()
            except StoreError as exc:
                raise StartupError(str(exc)) from None
        if self.orchestrator:
            await self._start_orchestrator()
        if self.compute:
            servers = self.nats_servers()
            if not servers:
                raise StartupError(
                    "a compute-only node needs its orchestrator: pass --orchestrators "
                    "nats://HOST:4222 or set [compute] orchestrators"
                )
            try:
                tls_context(self.config)  # a CA that cannot load stops the node here
            except TlsError as exc:
                raise StartupError(str(exc)) from None
            if self.orchestrator and self.config.compute.join_token is not None:
                raise StartupError(
                    "--join is for a compute node that joins a remote orchestrator; a node "
                    "that runs with its orchestrator needs no join token"
                )
            self.node = ComputeNode(self.config, servers, self.token)
            try:
                await self.node.start()
            except JoinError as exc:
                raise StartupError(str(exc)) from None

    async def _start_orchestrator(self) -> None:
        from edge.orchestrator.api import Api
        from edge.orchestrator.identities import JoinDesk, NodeIdentities
        from edge.orchestrator.results import ResultRelay
        from edge.orchestrator.service import Orchestrator
        from edge.orchestrator.store import Store

        cfg = self.config
        if not cfg.nats.servers:
            store_dir = cfg.nats.store_dir or cfg.data_dir / "nats"
            # Per-node NATS users need the server's config, so only the embedded one has them.
            self.identities = NodeIdentities(
                cfg.data_dir / "orchestrator" / "identities.db", on_change=self._reload_nats
            )
            await self.identities.open()
            self._closers.append(self.identities.close)
            self.nats = EmbeddedNats(
                cfg.nats.host,
                cfg.nats.port,
                store_dir,
                self.token,
                *_nats_tls(cfg),
                users=self.identities.nats_users,
            )
            await self.nats.start()
        servers = self.nats_servers()
        try:
            # nats-py retries a refused first connection without end: bounded here, so a
            # wrong token or an unreachable external NATS stops the orchestrator with a reason.
            nc = await asyncio.wait_for(
                connect(servers, "bacedge-orchestrator", self.token, tls=tls_context(cfg)),
                CONNECT_TIMEOUT,
            )
        except TlsError as exc:
            raise StartupError(str(exc)) from None
        except asyncio.TimeoutError:
            raise StartupError(
                f"cannot connect to NATS at {', '.join(servers)} within {CONNECT_TIMEOUT:.0f}s: "
                "check [nats] servers and token (a refused token is logged above)"
            ) from None
        except Exception as exc:
            raise StartupError(
                f"cannot connect to NATS at {', '.join(servers)}: {describe(exc)}"
            ) from None
        self._closers.append(nc.close)
        self.store = Store(cfg.data_dir / "orchestrator" / "state.db")
        await self.store.open()
        self.orch = Orchestrator(cfg, self.store, nc)
        self.orch.identities = self.identities
        await self.orch.start()
        if self.identities is not None:
            desk = JoinDesk(self.identities, nc)
            await desk.start()
            self._closers.append(desk.stop)
        self.relay = ResultRelay(self.orch, cfg, nc)
        await self.relay.start()
        self.orch.submission_checks.append(lambda job: self.relay_check(job))
        api = Api(self.orch, cfg, self.node_info, self.relay, store_health=self.store_health)
        from aiohttp import web

        self._site_runner = web.AppRunner(api.app(), access_log=None, handle_signals=False)
        await self._site_runner.setup()
        https = None
        if cfg.api.tls_cert:
            try:
                https = server_context(cfg.api.tls_cert, cfg.api.tls_key, "[api]")
            except TlsError as exc:
                raise StartupError(str(exc)) from None
        site = web.TCPSite(
            self._site_runner, cfg.api.host, cfg.api.port, reuse_address=True, ssl_context=https
        )
        try:
            await site.start()
        except OSError as exc:
            raise StartupError(
                f"cannot listen on {cfg.api.host}:{cfg.api.port}: {exc.strerror}; "
                "choose another port with --api-port"
            ) from None
        host = "127.0.0.1" if cfg.api.host in ("0.0.0.0", "") else cfg.api.host
        self.api_url = f"{'https' if https else 'http'}://{host}:{cfg.api.port}"

    async def _reload_nats(self) -> None:
        if self.nats is not None:
            await self.nats.reload()

    def relay_check(self, job: Job) -> None:
        if self.relay is not None and job.Tasks:
            self.relay.check_submission(job.task.Publisher.Type)

    def endpoints(self) -> list[tuple[str, str]]:
        """What this process offers (API, NATS, store, node ID), for the console and systemd."""
        parts = []
        if self.api_url:
            parts.append(("API", self.api_url))
        if self.nats is not None:
            parts.append(("NATS", self.nats.url))
        if self.object_store is not None and self.object_store.backend is not None:
            backend = self.object_store.backend.name
            parts.append(("store", f"{self.object_store.endpoint} ({backend})"))
        if self.node is not None:
            parts.append(("node", self.node.node_id))
        return parts

    def store_health(self) -> dict[str, Any] | None:
        """The local store's health when this process runs one (for `agent alive`)."""
        return self.object_store.health() if self.object_store is not None else None

    def status_line(self) -> str:
        return ", ".join(f"{name} {value}" for name, value in self.endpoints()) or "running"

    def node_info(self) -> NodeInfo:
        if self.node is not None:
            # As in Bacalhau, where the compute role decorates a hybrid node's info: a
            # process that runs compute reports "Compute", whatever else it runs.
            return self.node.info.model_copy(update={"NodeType": "Compute"})
        return NodeInfo(
            NodeID="orchestrator",
            NodeType="Requester",
            Labels=dict(self.config.node.labels),
            BacalhauVersion=this_build().wire(),
        )

    async def stop(self) -> None:
        """Every part is stopped, in order, whatever an earlier one raised (logged): a
        failing step must not leave the nats-server or the S3 store running."""
        steps: list[tuple[str, Callable[[], Awaitable[Any]]]] = []
        if self.node is not None:
            steps.append(("compute node", self.node.stop))
        if self._site_runner is not None:
            steps.append(("API", self._site_runner.cleanup))
        if self.relay is not None:
            steps.append(("result relay", self.relay.stop))
        if self.orch is not None:
            steps.append(("orchestrator", self.orch.stop))
        steps += [("closing", close) for close in reversed(self._closers)]
        if self.store is not None:
            steps.append(("job store", self.store.close))
        if self.nats is not None:
            steps.append(("nats-server", self.nats.stop))
        if self.object_store is not None:  # last: the roles above may still be using it
            steps.append(("S3 store", self.object_store.stop))
        for name, step in steps:
            try:
                await step()
            except Exception as exc:
                log.error("stop failed", extra={"part": name, "error": repr(exc)})


async def serve_forever(runtime: Runtime, on_ready: Callable[[Runtime], None]) -> None:
    """Start the roles, tell systemd we are ready, feed its watchdog, stop on a signal."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    watchdog: asyncio.Task[None] | None = None
    try:
        # A start can wait a long time (a node joining while its uplink is down): a signal
        # ends it there too, not only once everything runs.
        starting = asyncio.create_task(runtime.start(), name="start")
        stopping = asyncio.create_task(stop.wait(), name="stop-signal")
        await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():
            await cancel_and_wait([starting])
            return
        stopping.cancel()
        starting.result()  # a StartupError, raised
        on_ready(runtime)
        eventloop.started()
        systemd.notify("READY=1", f"STATUS={runtime.status_line()}")
        interval = systemd.watchdog_interval()
        if interval is not None:
            watchdog = asyncio.create_task(systemd.feed_watchdog(interval), name="watchdog")
        await stop.wait()
        systemd.notify("STOPPING=1")
    finally:
        if watchdog is not None:
            watchdog.cancel()
        await runtime.stop()


@dataclass
class ComputeFleet:
    """Many compute nodes in one process, for development and benchmarks (`bacedge devstack`).

    Each node is a real ComputeNode. They share one NATS connection, so thousands of them
    cost one socket to the server; its disconnects and reconnects reach every node. Real
    nodes (the default) each have their own data dir (`root/<prefix>NNN`) and ledger;
    simulated ones (`simulated`, edge/compute/simulated.py) are `sim-00001`... with a given
    inventory, the noop engine and one ledger file for the process (`root/ledger.db`).
    """

    config: Config
    count: int
    root: Path
    servers: list[str]
    token: str | None = None
    prefix: str = "devstack-"
    simulated: bool = False
    nodes: list[ComputeNode] = field(default_factory=list)
    _nc: Any = None
    _ledger: LedgerDB | None = None

    def node_config(self, index: int) -> Config:
        config = self.config.model_copy(deep=True)
        config.node.name = f"{self.prefix}{index:03d}"
        config.node.data_dir = self.root / config.node.name
        return config

    async def start(self, batch: int = 50) -> None:
        self._nc = await connect_forever(
            self.servers,
            "bacedge-compute-fleet",
            self.token,
            on_reconnect=self._reconnected,
            on_disconnect=self._disconnected,
            tls=tls_context(self.config),
        )
        if self.simulated:
            self._ledger = LedgerDB(self.root / "ledger.db")
            await self._ledger.open()
        for first in range(0, self.count, batch):
            group = [self._node(i) for i in range(first, min(self.count, first + batch))]
            self.nodes.extend(group)
            await asyncio.gather(*(node.start() for node in group))
            if self.simulated:
                await self._joined(group)

    def _node(self, index: int) -> ComputeNode:
        if self._ledger is None:
            return ComputeNode(self.node_config(index), self.servers, self.token, nc=self._nc)
        return SimulatedNode(
            self.config, index + 1, self.servers, self.token, self._nc, self._ledger, self.root
        )

    async def _joined(self, group: list[ComputeNode], timeout: float = 30.0) -> None:
        """Thousands of nodes join a batch at a time, each batch once its handshakes are
        answered (or after `timeout`: an orchestrator that is down gets them all later)."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(
                asyncio.gather(*(node.connected.wait() for node in group)), timeout
            )

    async def _reconnected(self) -> None:
        for node in self.nodes:
            await node.reconnected()

    async def _disconnected(self) -> None:
        for node in self.nodes:
            await node.disconnected()

    async def stop(self) -> None:
        await asyncio.gather(*(node.stop() for node in self.nodes), return_exceptions=True)
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await self._nc.close()
        if self._ledger is not None:
            await self._ledger.close()
