"""Joining with a one-time token: the node's own NATS identity, kept in its data dir.

The node makes its password itself and sends only a bcrypt hash of it with the token
(edge/orchestrator/identities.py); the password is written, 0600, before the request goes
out, so a node that stops mid-join still holds the password its user may have been given.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import ssl
from pathlib import Path

from edge.transport import subjects
from edge.transport.client import (
    Client,
    Identity,
    NatsTimeout,
    NoRespondersError,
    connect,
    describe,
)
from edge.transport.messages import JoinReply, JoinRequest, decode, encode
from edge.transport.server import JOIN_PASSWORD, JOIN_USER, bcrypt_hash

log = logging.getLogger("bacedge.compute")

IDENTITY_FILE = "nats-identity.json"


class JoinError(Exception):
    """The node cannot join; the message says why and what to do."""


def load_identity(root: Path, node_id: str) -> Identity | None:
    """The identity this node joined with, if it did."""
    path = root / IDENTITY_FILE
    try:
        data = json.loads(path.read_text())
        user, password = str(data["NodeID"]), str(data["Password"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise JoinError(f"{path} is unreadable ({exc}): delete it and join again") from None
    if user != node_id:
        raise JoinError(f"{path} is the identity of node {user}, not of this node {node_id}")
    return Identity(user, password, subjects.inbox(node_id))


def _save(root: Path, node_id: str, password: str) -> None:
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f"{IDENTITY_FILE}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"NodeID": node_id, "Password": password}, handle)
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(root / IDENTITY_FILE)


async def _connect(
    servers: list[str], node_id: str, tls: ssl.SSLContext | None, joiner: Identity
) -> Client:
    """A connection as the joiner, waiting for a link; NATS refusing the joiner ends it."""
    delay = 0.5
    while True:
        try:
            return await connect(
                servers, f"bacedge-join-{node_id}", tls=tls, identity=joiner, reconnect=False
            )
        except Exception as exc:  # nats-py raises several unrelated types here
            text = describe(exc)
            if text.startswith("NATS refused"):
                raise JoinError(
                    "the orchestrator's NATS refused the join: it has no join token "
                    "outstanding, so this one was used already, expired or never existed (a "
                    "token joins one node once); create one with `bacedge node token create`"
                ) from None
            if text.startswith("TLS"):
                raise JoinError(text) from None
            log.warning("orchestrator unreachable for the join; retrying", extra={"error": text})
        await asyncio.sleep(delay)
        delay = min(delay * 2, 10.0)


async def join(
    servers: list[str], token: str, node_id: str, root: Path, tls: ssl.SSLContext | None
) -> Identity:
    """Exchanges `token` for this node's own NATS user; waits for the orchestrator."""
    password = secrets.token_urlsafe(32)
    hashed = await asyncio.to_thread(bcrypt_hash, password)
    request = encode(JoinRequest(Token=token, NodeID=node_id, PasswordHash=hashed))
    joiner = Identity(JOIN_USER, JOIN_PASSWORD, subjects.JOIN_INBOX)
    log.info("joining the orchestrator with a join token", extra={"servers": servers})
    delay = 0.5
    while True:
        nc = await _connect(servers, node_id, tls, joiner)
        _save(root, node_id, password)
        try:
            reply = decode(JoinReply, (await nc.request(subjects.JOIN, request, 10)).data)
            break
        except (NatsTimeout, NoRespondersError, asyncio.TimeoutError) as exc:
            log.info("orchestrator not answering the join; retrying", extra={"error": exc})
        except Exception as exc:  # the link dropped mid-request: ask again (it is idempotent)
            log.info("join interrupted; retrying", extra={"error": describe(exc)})
        finally:
            with contextlib.suppress(Exception):
                await nc.close()
        await asyncio.sleep(delay)
        delay = min(delay * 2, 10.0)
    if not reply.Accepted:
        (root / IDENTITY_FILE).unlink(missing_ok=True)
        raise JoinError(f"the orchestrator refused to let this node join: {reply.Reason}")
    log.info("joined: this node has its own NATS identity", extra={"node_id": node_id})
    return Identity(node_id, password, subjects.inbox(node_id))
