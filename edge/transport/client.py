"""Connecting to NATS the same way everywhere: reconnect forever, quiet logs."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

from nats.aio.client import Client

log = logging.getLogger("bacedge.nats")


async def connect(
    servers: list[str],
    name: str,
    token: str | None = None,
    on_reconnect: Callable[[], Awaitable[None]] | None = None,
    on_disconnect: Callable[[], Awaitable[None]] | None = None,
    connect_timeout: int = 2,
    tls: ssl.SSLContext | None = None,
) -> Client:
    """A client that keeps reconnecting through outages (edge links come and go)."""

    last_refusal = ""

    async def error_cb(exc: Exception) -> None:
        nonlocal last_refusal
        text = describe(exc)
        if not text.startswith("TLS"):
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
        if on_disconnect is not None:
            await on_disconnect()

    client = Client()
    await client.connect(
        servers=servers,
        name=name,
        token=token,
        connect_timeout=connect_timeout,
        reconnect_time_wait=1,
        max_reconnect_attempts=-1,
        allow_reconnect=True,
        error_cb=error_cb,
        reconnected_cb=reconnected,
        disconnected_cb=disconnected,
        pending_size=64 * 1024 * 1024,
        tls=tls,
    )
    return client


async def connect_forever(
    servers: list[str],
    name: str,
    token: str | None = None,
    on_reconnect: Callable[[], Awaitable[None]] | None = None,
    on_disconnect: Callable[[], Awaitable[None]] | None = None,
    tls: ssl.SSLContext | None = None,
) -> Client:
    """Like connect(), but an unreachable NATS at start is retried with backoff.

    nats-py only reconnects after a first success; an edge node that boots while
    its uplink is down must still come up and keep trying.
    """
    delay = 0.2
    while True:
        try:
            return await connect(servers, name, token, on_reconnect, on_disconnect, tls=tls)
        except Exception as exc:  # nats raises several unrelated types here
            log.warning(
                "nats unreachable; retrying", extra={"servers": servers, "error": describe(exc)}
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)


def describe(exc: BaseException) -> str:
    """One line for a failed connection; TLS failures say what to fix."""
    text = " ".join(str(exc).split()) or type(exc).__name__
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
