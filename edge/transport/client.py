"""Connecting to NATS the same way everywhere: reconnect forever, quiet logs."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from nats.aio.client import Client

log = logging.getLogger("bacedge.nats")


async def connect(
    servers: list[str],
    name: str,
    token: str | None = None,
    on_reconnect: Callable[[], Awaitable[None]] | None = None,
    on_disconnect: Callable[[], Awaitable[None]] | None = None,
    connect_timeout: int = 2,
) -> Client:
    """A client that keeps reconnecting through outages (edge links come and go)."""

    async def error_cb(exc: Exception) -> None:
        log.debug("nats error", extra={"error": str(exc)})

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
    )
    return client


async def connect_forever(
    servers: list[str],
    name: str,
    token: str | None = None,
    on_reconnect: Callable[[], Awaitable[None]] | None = None,
    on_disconnect: Callable[[], Awaitable[None]] | None = None,
) -> Client:
    """Like connect(), but an unreachable NATS at start is retried with backoff.

    nats-py only reconnects after a first success; an edge node that boots while
    its uplink is down must still come up and keep trying.
    """
    delay = 0.2
    while True:
        try:
            return await connect(servers, name, token, on_reconnect, on_disconnect)
        except Exception as exc:  # nats raises several unrelated types here
            log.warning("nats unreachable; retrying", extra={"servers": servers, "error": str(exc)})
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)
