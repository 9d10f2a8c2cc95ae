"""Per-node NATS identities: one-time join tokens, and the NATS user each joined node gets.

A join token reads `bxj1.<id>.<secret>`; the orchestrator keeps only the secret's SHA-256.
A joining node sends the token, its node ID and a bcrypt hash of a password it made
itself: the password never leaves the node and the orchestrator keeps only the hash, which
is what nats-server checks. Once joined, the node's NATS user may publish only on its own
`bacedge.node.<ID>.*` subjects and hear only its own `bacedge.compute.<ID>.*` subjects
(`subjects.node_permissions`); deleting the node deletes the user and closes its
connection. Every change reloads the embedded nats-server (`on_change`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import hashlib
import hmac
import logging
import re
import secrets
import sqlite3
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge.sqlite import SqliteThread
from edge.transport import subjects
from edge.transport.client import Client, Msg
from edge.transport.messages import JoinReply, JoinRequest, decode, encode
from edge.transport.server import JOIN_PASSWORD, JOIN_USER, NatsUser, bcrypt_hash

log = logging.getLogger("bacedge.orchestrator")

TOKEN_PREFIX = "bxj1"
DEFAULT_TTL = 24 * 3600.0
# The joiner's user outlives the last token it used by this long, so that the node hears the
# answer to its join before the reload that removes the user closes its connection.
JOINER_GRACE = 60.0
MAX_PENDING = 1000  # outstanding join tokens: each is a reload, and a user in memory
MAX_TTL = 30 * 86400.0
# A bcrypt hash at a cost nats-server checks in tens of milliseconds: not weaker, and not
# so costly that every connection of the node would tie the server up.
_BCRYPT = re.compile(r"^\$2[aby]\$(1[0-3])\$[./A-Za-z0-9]{53}$")
_TOKEN = re.compile(rf"^{TOKEN_PREFIX}\.([0-9a-f]{{16}})\.([A-Za-z0-9_-]{{43}})$")

SCHEMA = """
CREATE TABLE IF NOT EXISTS join_tokens (
    id TEXT PRIMARY KEY,
    secret_sha256 TEXT NOT NULL,
    created REAL NOT NULL,
    expires REAL NOT NULL,
    used_by TEXT NOT NULL DEFAULT '',
    used_at REAL NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS node_identities (
    node_id TEXT PRIMARY KEY,
    password_bcrypt TEXT NOT NULL,
    token_id TEXT NOT NULL,
    joined REAL NOT NULL
);
"""


class TooManyTokens(Exception):
    """No more join tokens until some are used or expire."""


class JoinRefused(Exception):
    """Why a join request was refused, in one line (the token's secret never in it)."""


@dataclass(frozen=True)
class JoinToken:
    id: str
    secret_sha256: str
    created: float
    expires: float
    used_by: str = ""
    used_at: float = 0.0

    def pending(self, now: float) -> bool:
        return not self.used_by and now < self.expires


def _sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class NodeIdentities:
    """Join tokens and node users, in SQLite and (for the nats-server config) in memory."""

    def __init__(
        self,
        path: Path,
        on_change: Callable[[], Awaitable[None]] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = SqliteThread(path, SCHEMA, "identities", synchronous="FULL")
        self.on_change = on_change
        self.clock = clock
        self.tokens: dict[str, JoinToken] = {}
        self.nodes: dict[str, str] = {}  # node ID -> bcrypt hash of its password
        self._lock = asyncio.Lock()  # one join or revocation at a time: no token used twice
        self._tidy: asyncio.Task[None] | None = None

    async def open(self) -> None:
        await self.db.open()
        self.tokens, self.nodes = await self.db.call(self._load)

    def _load(self) -> tuple[dict[str, JoinToken], dict[str, str]]:
        db = self.db.db
        tokens = {
            row[0]: JoinToken(*row)
            for row in db.execute(
                "SELECT id, secret_sha256, created, expires, used_by, used_at FROM join_tokens"
            )
        }
        nodes = dict(db.execute("SELECT node_id, password_bcrypt FROM node_identities"))
        return tokens, nodes

    async def close(self) -> None:
        if self._tidy is not None:
            self._tidy.cancel()
        await self.db.close()

    def nats_users(self) -> list[NatsUser]:
        """The users the embedded nats-server adds to its admin: every joined node, and the
        joiner while any token is outstanding."""
        users = [
            NatsUser(node_id, hashed, subjects.node_permissions(node_id))
            for node_id, hashed in sorted(self.nodes.items())
        ]
        now = self.clock()
        if any(
            token.pending(now) or now - token.used_at < JOINER_GRACE
            for token in self.tokens.values()
        ):
            users.append(NatsUser(JOIN_USER, self._join_hash, subjects.joiner_permissions()))
        return users

    @functools.cached_property
    def _join_hash(self) -> str:
        return bcrypt_hash(JOIN_PASSWORD)

    async def create_token(self, ttl: float = DEFAULT_TTL) -> tuple[str, JoinToken]:
        """A new one-time token; returns it (the only time its secret is seen) and its record."""
        if not 1 <= ttl <= MAX_TTL:
            raise ValueError(f"a join token's TTL is 1s to {MAX_TTL / 86400:.0f} days")
        token_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
        now = self.clock()
        token = JoinToken(token_id, _sha256(secret), now, now + ttl)

        def insert(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT INTO join_tokens (id, secret_sha256, created, expires) VALUES (?,?,?,?)",
                (token_id, token.secret_sha256, token.created, token.expires),
            )

        async with self._lock:
            if sum(t.pending(now) for t in self.tokens.values()) >= MAX_PENDING:
                raise TooManyTokens(
                    f"{MAX_PENDING} join tokens are outstanding: use them or let them expire"
                )
            await self.db.write(insert)
            self.tokens[token_id] = token
            await self._changed()
        return f"{TOKEN_PREFIX}.{token_id}.{secret}", token

    async def redeem(self, request: JoinRequest) -> None:
        """Gives `request.NodeID` its NATS user, or raises JoinRefused saying why."""
        match = _TOKEN.match(request.Token)
        if match is None:
            raise JoinRefused("not a join token (bacedge node token create prints one)")
        token_id, secret = match.groups()
        if not subjects.NODE_ID.match(request.NodeID):
            raise JoinRefused("a node ID is 1-128 letters, digits, '-' or '_'")
        if not _BCRYPT.match(request.PasswordHash):
            raise JoinRefused("the password hash is not a bcrypt hash of cost 10-13")
        async with self._lock:
            token = self.tokens.get(token_id)
            if token is None or not hmac.compare_digest(token.secret_sha256, _sha256(secret)):
                raise JoinRefused(f"unknown join token {token_id}")
            if token.used_by == request.NodeID and self.nodes.get(request.NodeID) == (
                request.PasswordHash
            ):
                return  # the same node asking again: its first answer was lost
            if token.used_by:
                raise JoinRefused(
                    f"join token {token_id} was already used (by node {token.used_by}); "
                    "a token joins one node once: create another"
                )
            now = self.clock()
            if now >= token.expires:
                raise JoinRefused(f"join token {token_id} expired; create another")
            if request.NodeID in self.nodes:
                raise JoinRefused(
                    f"node {request.NodeID} has already joined; delete it first "
                    "(bacedge node delete) to join it again"
                )

            def record(db: sqlite3.Connection) -> None:
                db.execute(
                    "UPDATE join_tokens SET used_by = ?, used_at = ? WHERE id = ?",
                    (request.NodeID, now, token_id),
                )
                db.execute(
                    "INSERT INTO node_identities VALUES (?,?,?,?)",
                    (request.NodeID, request.PasswordHash, token_id, now),
                )

            await self.db.write(record)
            self.tokens[token_id] = dataclasses.replace(token, used_by=request.NodeID, used_at=now)
            self.nodes[request.NodeID] = request.PasswordHash
            await self._changed()
        self._tidy_later(JOINER_GRACE + 1)

    def _tidy_later(self, delay: float) -> None:
        """A reload once the joiner's grace is over, removing its user if nothing is left
        for it to do."""

        async def tidy() -> None:
            await asyncio.sleep(delay)
            async with self._lock:
                await self._changed()

        if self._tidy is not None:
            self._tidy.cancel()
        self._tidy = asyncio.create_task(tidy(), name="identities-tidy")

    async def revoke(self, node_id: str) -> bool:
        """Deletes a node's NATS user (its connection closes); False if it had none."""
        async with self._lock:
            if node_id not in self.nodes:
                return False
            await self.db.write(
                lambda db: db.execute("DELETE FROM node_identities WHERE node_id = ?", (node_id,))
            )
            del self.nodes[node_id]
            await self._changed()
            return True

    async def _changed(self) -> None:
        if self.on_change is not None:
            await self.on_change()


class JoinDesk:
    """Answers join requests on NATS, one at a time."""

    def __init__(self, identities: NodeIdentities, nc: Client) -> None:
        self.identities = identities
        self.nc = nc
        self._sub: Any = None

    async def start(self) -> None:
        self._sub = await self.nc.subscribe(
            subjects.JOIN, queue=subjects.ORCH_QUEUE, cb=self._on_join
        )

    async def stop(self) -> None:
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()

    async def _on_join(self, msg: Msg) -> None:
        try:
            request = decode(JoinRequest, msg.data)
        except ValueError:
            reply = JoinReply(Accepted=False, Reason="a malformed join request")
        else:
            try:
                await self.identities.redeem(request)
            except JoinRefused as exc:
                reply = JoinReply(Accepted=False, Reason=str(exc))
            except Exception as exc:  # a reload that failed: the node may try again
                log.error("join failed", extra={"node_id": request.NodeID, "error": str(exc)})
                reply = JoinReply(Accepted=False, Reason=f"the orchestrator failed: {exc}")
            else:
                reply = JoinReply(Accepted=True)
            if reply.Accepted:
                log.info(
                    "node joined with its own NATS identity", extra={"node_id": request.NodeID}
                )
            else:
                log.warning(
                    "join refused", extra={"node_id": request.NodeID, "reason": reply.Reason}
                )
        if msg.reply:
            with contextlib.suppress(Exception):
                await msg.respond(encode(reply))
