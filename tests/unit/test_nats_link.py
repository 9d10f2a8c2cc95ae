"""Requests across a NATS connection that drops, and the embedded server's start, against a
real nats-server."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from edge.transport.client import LinkLost, Msg, connect
from edge.transport.server import EmbeddedNats, NatsServerError
from tests.integration.cluster import free_port


async def test_a_request_in_flight_when_the_server_dies_fails_at_once_and_the_next_is_answered(
    tmp_path: Path,
) -> None:
    """The orchestrator killed with its embedded nats-server: a node's request sent just
    before (a heartbeat, an update batch) gets no reply ever. It fails with LinkLost when
    the link drops, not after its 60 s timeout, and a request after the reconnection is
    answered (the server restarted by its supervisor)."""
    port = free_port()
    server = EmbeddedNats("127.0.0.1", port, tmp_path)
    await server.start()
    url = [server.url]
    requester = responder = None
    try:
        responder = await connect(url, "responder")
        requester = await connect(url, "requester")
        taken = asyncio.Event()

        async def swallow(msg: Msg) -> None:
            taken.set()  # never answered: the reply dies with the server

        async def answer(msg: Msg) -> None:
            await msg.respond(b"pong")

        await responder.subscribe("silent", cb=swallow)
        await responder.subscribe("ping", cb=answer)
        await responder.flush()
        pending = asyncio.create_task(requester.request("silent", b"", timeout=60))
        await asyncio.wait_for(taken.wait(), 10)
        assert server._proc is not None
        server._proc.kill()  # the supervisor starts it again
        with pytest.raises(LinkLost):
            await pending
        for _ in range(100):  # until both clients are back
            if requester.is_connected and responder.is_connected:
                try:
                    reply = await requester.request("ping", b"", timeout=1)
                    break
                except Exception:
                    pass
            await asyncio.sleep(0.2)
        else:
            pytest.fail("no answer after the reconnection")
        assert reply.data == b"pong"
        assert server.restarts == 1
    finally:
        for client in (requester, responder):
            if client is not None:
                await client.close()
        await server.stop()


async def test_a_second_server_on_a_taken_port_says_so_instead_of_using_the_first(
    tmp_path: Path,
) -> None:
    """A port another NATS holds (a second bacedge, a system nats-server): the embedded
    server's start fails naming the port. It used to take the other server's answer for
    its own and start 'successfully', its clients then talking to that server."""
    port = free_port()
    first = EmbeddedNats("127.0.0.1", port, tmp_path / "first")
    second = EmbeddedNats("127.0.0.1", port, tmp_path / "second")
    await first.start()
    try:
        with pytest.raises(NatsServerError, match=f"127.0.0.1:{port}: the port is in use"):
            await second.start()
    finally:
        await second.stop()
        await first.stop()
