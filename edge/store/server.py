"""The local store's supervisor: starts the S3 server, proves it answers, keeps it running.

`LocalStore(config).start()` picks the backend, writes the credentials file compute nodes
and the CLI read (`edge.s3.local_store`), starts the server as a child process, waits until
a signed `ListBuckets` succeeds and creates `[store] buckets`. A server that exits, or
stops answering three probes in a row, is restarted with backoff; `health()` says how it
is doing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import signal
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge.config import Config
from edge.s3 import store_dir
from edge.tasks import cancel_and_wait

from .backends import ADMIN_GRPC_OFFSET, SEAWEEDFS, Backend, Launch, StoreError, choose_backend
from .backends import launch as make_launch
from .buckets import bucket_name_problem
from .credentials import StoreCredentials, ensure_credentials, previous_backend
from .forward import Forwarder
from .ports import LOOPBACK, free_port, internal_ports, port_free

if TYPE_CHECKING:
    from minio import Minio

log = logging.getLogger("bacedge.store")

_LOOPBACK_NAMES = ("127.0.0.1", "localhost")
_LOG_ROTATE_BYTES = 8 << 20
_FAILED_PROBES = 3


def client_host(host: str) -> str:
    """The address a client on this device dials for a server bound to `host`."""
    if host in ("", "0.0.0.0"):
        return LOOPBACK
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


class LocalStore:
    """One S3 server process under supervision, for `bacedge serve --store`."""

    def __init__(
        self, config: Config, ready_timeout: float = 60.0, probe_interval: float = 10.0
    ) -> None:
        self.config = config
        self.dir = store_dir(config)
        self.ready_timeout = ready_timeout
        self.probe_interval = probe_interval
        self.backend: Backend | None = None
        self.credentials: StoreCredentials | None = None
        self.restarts = 0
        self.alive = False
        self.since = time.time()
        self.last_error = ""
        self._launch: Launch | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._forwarder: Forwarder | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._stopping = False

    # -- facts -----------------------------------------------------------------
    @property
    def endpoint(self) -> str:
        return self.credentials.endpoint if self.credentials else ""

    @property
    def data_dir(self) -> Path:
        name = self.backend.name if self.backend else "server"
        return self.dir / name

    @property
    def log_file(self) -> Path:
        return self.data_dir / "server.log"

    @property
    def pid(self) -> int | None:
        proc = self._proc
        return proc.pid if proc is not None and proc.returncode is None else None

    def health(self) -> dict[str, Any]:
        """How the store is doing, for `GET /api/v1/agent/alive` and `bacedge agent alive`."""
        return {
            "backend": self.backend.name if self.backend else "",
            "endpoint": self.endpoint,
            "alive": self.alive,
            "since": datetime.fromtimestamp(self.since, timezone.utc)
            .isoformat(timespec="seconds")
            .replace("+00:00", "Z"),
            "restarts": self.restarts,
            "last_error": self.last_error,
        }

    def _set_alive(self, alive: bool, error: str = "") -> None:
        if alive != self.alive:
            self.alive = alive
            self.since = time.time()
        if error:
            self.last_error = error

    # -- start -----------------------------------------------------------------
    async def start(self) -> None:
        cfg = self.config.store
        for name in cfg.buckets:
            problem = bucket_name_problem(name)
            if problem is not None:
                raise StoreError(f"[store] buckets: {name!r} is not a valid bucket name: {problem}")
        host = cfg.host.strip() or LOOPBACK
        self.dir.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            self.dir.chmod(0o700)
        self.backend = backend = choose_backend(cfg.backend, cfg.binary, previous_backend(self.dir))
        self._reap_leftover()
        port = cfg.port
        if not port:  # any free one, but never one this node's own servers will take
            reserved = self._node_ports()
            while not port or port in reserved:
                port = free_port(host if host != "0.0.0.0" else LOOPBACK)
        if not port_free(host, port):
            raise StoreError(
                f"the local store cannot listen on {host}:{port}: the port is in use; "
                "choose another with --store-port or [store] port (BACEDGE_STORE_PORT)"
            )
        forward = backend.listens_on_loopback_only and host not in _LOOPBACK_NAMES
        self.credentials = ensure_credentials(
            self.dir, f"http://{client_host(host)}:{port}", cfg.region, backend.name
        )
        if forward:
            self._forwarder = Forwarder(host, port, 0)
            try:
                await self._forwarder.start()
            except OSError as exc:
                raise StoreError(
                    f"the local store cannot listen on {host}:{port}: {exc.strerror}"
                ) from None
        try:
            for attempt in range(3):
                inner = self._prepare(backend, host, port, forward)
                if self._forwarder is not None:
                    self._forwarder.target_port = inner
                try:
                    await self._spawn()
                    await self._wait_ready(self.ready_timeout)
                    await self._create_buckets()
                    break
                except _InternalPortTaken:
                    await self._terminate()
                    if attempt == 2:
                        raise  # another process took a kept internal port: pick again
        except BaseException:
            await self.stop()
            raise
        self._set_alive(True)
        self._supervisor = asyncio.create_task(self._supervise(), name="store-supervisor")
        log.info(
            "local store started",
            extra={"backend": backend.name, "endpoint": self.endpoint, "pid": self.pid},
        )

    def _node_ports(self) -> list[int]:
        """The ports this node's own servers listen on. They start after the store, so a
        free port the store picked could be one of them (the API then failed to start with
        "address already in use"): the store never picks one."""
        c = self.config
        ports = (c.api.port, c.nats.port, c.compute.metrics_port, c.publishers.local.port)
        return [p for p in ports if p]

    def _prepare(self, backend: Backend, host: str, port: int, forward: bool) -> int:
        """The launch for this start; returns the port the server itself serves S3 on."""
        assert self.credentials is not None
        names = list(backend.internal_ports) + (["s3"] if forward else [])
        offsets = {"admin": ADMIN_GRPC_OFFSET} if backend.name == SEAWEEDFS else {}
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        avoid = [port, *self._node_ports()]
        ports = internal_ports(self.data_dir / "ports.json", names, offsets, avoid=avoid)
        bind = LOOPBACK if backend.listens_on_loopback_only else host
        self._launch = make_launch(
            backend,
            self.data_dir,
            bind,
            ports["s3"] if forward else port,
            ports,
            self.credentials.access_key,
            self.credentials.secret_key,
            self.credentials.region,
            admin_password=_random_password(),
        )
        return ports["s3"] if forward else port

    # -- the process -------------------------------------------------------------
    async def _spawn(self) -> None:
        launch = self._launch
        assert launch is not None
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        for directory in launch.dirs:
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        for path, text in launch.files.items():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(text)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MINIO_"))}
        env.update(launch.env)
        self._rotate_log()
        with self.log_file.open("ab") as out:
            self._proc = await asyncio.create_subprocess_exec(
                *launch.argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                env=env,
                cwd=self.data_dir,
            )
        (self.data_dir / "server.pid").write_text(f"{self._proc.pid}\n")

    def _rotate_log(self) -> None:
        with contextlib.suppress(OSError):
            if self.log_file.stat().st_size > _LOG_ROTATE_BYTES:
                self.log_file.replace(self.log_file.with_suffix(".log.1"))

    def _reap_leftover(self) -> None:
        """A server a killed bacedge left running still holds the ports: stop it."""
        pidfile = self.data_dir / "server.pid"
        try:
            pid = int(pidfile.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            return
        assert self.backend is not None
        if not cmdline or os.fsencode(self.backend.binary) != cmdline[0]:
            return
        if not any(os.fsencode(str(self.data_dir)) in arg for arg in cmdline):
            return
        log.warning("stopping a store server left running", extra={"pid": pid})
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)
            for _ in range(100):
                time.sleep(0.1)
                os.kill(pid, 0)
            os.kill(pid, signal.SIGKILL)

    async def _terminate(self) -> None:
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 15.0)
        except asyncio.TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()

    # -- readiness ---------------------------------------------------------------
    def client(self, timeout: float = 5.0) -> Minio:
        """A client with this store's credentials and short timeouts, no retries."""
        import urllib3
        from minio import Minio

        assert self.credentials is not None
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=min(timeout, 2.0), read=timeout),
            retries=urllib3.Retry(total=0),
            maxsize=2,
        )
        return Minio(
            self.endpoint.split("//", 1)[1],
            access_key=self.credentials.access_key,
            secret_key=self.credentials.secret_key,
            secure=False,
            region=self.credentials.region or None,
            http_client=http,
        )

    def _probe(self) -> None:
        self.client().list_buckets()

    async def _wait_ready(self, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        last = "no answer"
        while loop.time() < deadline:
            proc = self._proc
            if proc is not None and proc.returncode is not None:
                raise self._failure(proc.returncode)
            try:
                await asyncio.to_thread(self._probe)
                return
            except Exception as exc:
                last = _short(exc)
            await asyncio.sleep(0.25)
        raise StoreError(
            f"the local store ({self._name}) did not answer on {self.endpoint} within "
            f"{timeout:.0f}s ({last}); see {self.log_file}"
        )

    @property
    def _name(self) -> str:
        return self.backend.name if self.backend else "server"

    def _failure(self, code: int) -> StoreError:
        tail = _tail(self.log_file)
        text = " ".join(tail)
        if "not available" in text or "address already in use" in text.lower():
            port = self.endpoint.rsplit(":", 1)[-1]
            if f"port {port} " in text or f":{port}:" in text or f":{port} " in text:
                return StoreError(
                    f"the local store cannot listen on {self.endpoint}: the port is in use; "
                    "choose another with --store-port or [store] port (BACEDGE_STORE_PORT)"
                )
            return _InternalPortTaken(f"{self._name} could not bind an internal port: {text}")
        detail = _error_line(self.log_file) or f"; see {self.log_file}"
        return StoreError(f"the local store ({self._name}) {_exit_text(code)}{detail}")

    async def _create_buckets(self) -> None:
        names = list(dict.fromkeys(self.config.store.buckets))
        if not names:
            return

        def create() -> None:
            client = self.client(timeout=10.0)
            for name in names:
                if not client.bucket_exists(name):
                    client.make_bucket(name)

        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20.0
        while True:
            try:
                await asyncio.to_thread(create)
                return
            except Exception as exc:
                if loop.time() > deadline:
                    raise StoreError(
                        f"the local store could not create [store] buckets "
                        f"({', '.join(names)}): {_short(exc)}"
                    ) from None
                await asyncio.sleep(0.5)

    # -- supervision -------------------------------------------------------------
    async def _supervise(self) -> None:
        backoff = 0.5
        while not self._stopping:
            reason = await self._watch()
            if self._stopping:
                return
            self._set_alive(False, reason)
            log.error("local store down; restarting", extra={"reason": reason, "in": backoff})
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 30.0)
            self.restarts += 1
            try:
                await self._spawn()
                await self._wait_ready(self.ready_timeout)
                await self._create_buckets()
            except StoreError as exc:
                self.last_error = str(exc)
                log.error("local store restart failed", extra={"error": str(exc)})
                await self._terminate()
                continue
            self._set_alive(True)
            backoff = 0.5
            log.info("local store restarted", extra={"pid": self.pid, "restarts": self.restarts})

    async def _watch(self) -> str:
        """Returns why the server is down: it exited, or stopped answering (then killed)."""
        failures = 0
        while True:
            proc = self._proc
            if proc is None:
                return "not running"
            try:
                code = await asyncio.wait_for(proc.wait(), self.probe_interval)
            except asyncio.TimeoutError:
                pass
            else:
                return f"{self._name} {_exit_text(code)}{_error_line(self.log_file)}"
            try:
                await asyncio.to_thread(self._probe)
            except Exception as exc:
                failures += 1
                self._set_alive(False, f"S3 API not answering: {_short(exc)}")
                if failures >= _FAILED_PROBES:
                    await self._terminate()
                    return self.last_error
            else:
                failures = 0
                self._set_alive(True)

    # -- stop --------------------------------------------------------------------
    async def stop(self) -> None:
        self._stopping = True
        if self._supervisor is not None:
            await cancel_and_wait([self._supervisor])
        if self._forwarder is not None:
            await self._forwarder.stop()
        await self._terminate()
        with contextlib.suppress(OSError):
            (self.data_dir / "server.pid").unlink()
        self._set_alive(False)


class _InternalPortTaken(StoreError):
    pass


def _random_password() -> str:
    import secrets

    return secrets.token_urlsafe(24)


def _tail(path: Path, lines: int = 3) -> list[str]:
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 4096))
            text = handle.read().decode(errors="replace")
    except OSError:
        return []
    return [line.strip() for line in text.splitlines() if line.strip()][-lines:]


def _exit_text(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-code).name}"
    return f"exited with code {code}"


_ERROR_LINE = re.compile(r"^[EF]\d{4} |error|fatal|panic", re.IGNORECASE)


def _error_line(path: Path) -> str:
    """The server's last error line from its log, as `: text` (or '')."""
    for line in reversed(_tail(path, 20)):
        if _ERROR_LINE.search(line):
            return ": " + (line[:300] + "..." if len(line) > 300 else line)
    return ""


def _short(exc: BaseException) -> str:
    code = getattr(exc, "code", None)
    if isinstance(code, str) and code:
        return code
    text = " ".join(str(exc).split())
    if "Connection refused" in text:
        return "connection refused"
    return (text[:160] + "...") if len(text) > 160 else (text or type(exc).__name__)
