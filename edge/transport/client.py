"""Connecting to NATS the same way everywhere: reconnect forever, quiet logs."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from edge.lazy import optional_extras_hidden

# bacedge speaks NATS over TCP and TLS; nats-py loads aiohttp at import for its WebSocket
# transport only (~20 MiB of a compute node that never serves HTTP). Every bacedge module
# takes nats-py's names from here, so this is the first import of nats-py in any process.
with optional_extras_hidden("aiohttp"):
    from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout

__all__ = ["Client", "Identity", "LinkLost", "Msg", "NatsTimeout", "NoRespondersError", "connect"]

log = logging.getLogger("bacedge.nats")

ADMIN_USER = "bacedge"  # the embedded nats-server's user with every permission


@dataclass(frozen=True)
class Identity:
    """Who a client is on NATS: a user of its own (a joined node, a joining one), with the
    inbox its replies come to; without one, `[nats] token` or nothing."""

    user: str
    password: str
    inbox_prefix: str


async def connect(
    servers: list[str],
    name: str,
    token: str | None = None,
    on_reconnect: Callable[[], Awaitable[None]] | None = None,
    on_disconnect: Callable[[], Awaitable[None]] | None = None,
    connect_timeout: int = 2,
    tls: ssl.SSLContext | None = None,
    identity: Identity | None = None,
    reconnect: bool = True,
) -> Client:
    """A client that keeps reconnecting through outages (edge links come and go);
    `reconnect=False`: one that gives up, raising, when its first connection fails.

    A token is first presented as the password of bacedge's admin user (what the embedded
    nats-server expects); a server that refuses it is sent the token alone from then on
    (an external NATS with token authentication)."""

    last_refusal = ""

    async def error_cb(exc: Exception) -> None:
        nonlocal last_refusal
        text = describe(exc)
        if (
            "authorization violation" in text.lower()
            and token
            and identity is None
            and client.options.get("user") == ADMIN_USER
        ):
            client.options["user"] = client.options["password"] = None  # token alone
            return
        if not text.startswith(("TLS", "NATS refused")):
            log.debug("nats error", extra={"error": str(exc)})
        elif text != last_refusal:  # once per reason, not once per retry
            last_refusal = text
            log.warning("nats unreachable; retrying", extra={"servers": servers, "error": text})

    async def reconnected() -> None:
        log.info("nats reconnected", extra={"servers": servers})
        if on_reconnect is not None:
            await on_reconnect()

    async def disconnected() -> None:
        if client.is_closed:
            return  # our own close(), not an outage
        log.warning("nats disconnected", extra={"servers": servers})
        fail_requests_in_flight(client)
        if on_disconnect is not None:
            await on_disconnect()

    client = Client()
    await client.connect(
        servers=servers,
        name=name,
        **_credentials(token, identity),
        connect_timeout=connect_timeout,
        reconnect_time_wait=1,
        max_reconnect_attempts=-1 if reconnect else 1,  # 0 would mean "forever" to nats-py
        allow_reconnect=reconnect,
        error_cb=error_cb,
        reconnected_cb=reconnected,
        disconnected_cb=disconnected,
        pending_size=64 * 1024 * 1024,
        tls=tls,
    )
    return client


class LinkLost(ConnectionError):
    """A request's connection dropped before its reply came."""


def fail_requests_in_flight(client: Client) -> int:
    """Fails, at once, the requests waiting for a reply when the connection drops: the
    reply went into the dead connection, or its responder died with it (an orchestrator
    killed with its embedded nats-server), so it never comes. Otherwise each waits out its
    timeout, and a node's heartbeats or outbox stall that long after the link is back (long
    enough for the orchestrator to take the node for lost). Every caller retries or asks
    again; requests sent while disconnected go out on reconnection and stay. Returns how
    many failed (0 where nats-py keeps its replies elsewhere: then timeouts, as before)."""
    waiting: dict[str, asyncio.Future[Any]] = getattr(client, "_resp_map", None) or {}
    failed = 0
    for future in list(waiting.values()):
        if not future.done():
            future.set_exception(LinkLost("the NATS connection dropped before the reply"))
            failed += 1
    return failed


def _credentials(token: str | None, identity: Identity | None) -> dict[str, Any]:
    if identity is not None:
        return {
            "user": identity.user,
            "password": identity.password,
            "inbox_prefix": identity.inbox_prefix,
        }
    if token:
        return {"user": ADMIN_USER, "password": token, "token": token}
    return {}


async def connect_forever(
    servers: list[str],
    name: str,
    token: str | None = None,
    on_reconnect: Callable[[], Awaitable[None]] | None = None,
    on_disconnect: Callable[[], Awaitable[None]] | None = None,
    tls: ssl.SSLContext | None = None,
    identity: Identity | None = None,
) -> Client:
    """Like connect(), but an unreachable NATS at start is retried with backoff.

    nats-py only reconnects after a first success; an edge node that boots while
    its uplink is down must still come up and keep trying.
    """
    delay = 0.2
    while True:
        try:
            return await connect(
                servers, name, token, on_reconnect, on_disconnect, tls=tls, identity=identity
            )
        except Exception as exc:  # nats raises several unrelated types here
            log.warning(
                "nats unreachable; retrying", extra={"servers": servers, "error": describe(exc)}
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)


def describe(exc: BaseException) -> str:
    """One line for a failed connection; TLS failures say what to fix."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if "authorization violation" in text.lower():
        return (
            "NATS refused the credentials (authorization violation): check [nats] token, "
            "or the node's identity (a deleted node joins again with a new join token)"
        )
    if "mismatch" in text or "not valid for" in text:
        return (
            f"TLS certificate is for another name ({text}): connect by a name it holds, "
            "or reissue it with bacedge setup tls --name"
        )
    if isinstance(exc, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in text:
        return f"TLS certificate not trusted ({text}): set [nats] cacert to the orchestrator's CA"
    if isinstance(exc, ssl.SSLError) or "SSL" in text:
        return f"TLS failed ({text}): the server may require TLS (tls:// URL, [nats] cacert)"
    return text


def tls_context(config: Any) -> ssl.SSLContext | None:
    """The context this process's NATS clients use: [nats] cacert when set; else, where
    this process runs the TLS nats-server itself, its own certificate pinned."""
    from edge.tls import client_context, pinned_context

    nats = config.nats
    if nats.cacert:
        return client_context(nats.cacert, "[nats] cacert")
    if nats.tls_cert and not nats.servers:
        return pinned_context(nats.tls_cert, "[nats] tls_cert")
    return None
