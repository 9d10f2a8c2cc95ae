"""A compute node's handshake against messages that cross it, over a real nats-server.

The test plays the orchestrator's side of the protocol so it can order messages the way
the real one does only by chance: an offer placed after it answered a handshake, read by
the node before that answer; a handshake that asks about a task whose end is still on its
way to the node's ledger.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from edge.compute.agent import ComputeNode
from edge.config import load_config
from edge.models import ComputeStateType, Execution, Job
from edge.transport import subjects
from edge.transport.client import Client, Msg, connect
from edge.transport.messages import (
    HandshakeReply,
    OfferBatch,
    OfferReply,
    UpdateAck,
    UpdateBatch,
    decode,
    encode,
)
from edge.transport.server import EmbeddedNats
from tests.integration.cluster import free_port


def _job(sleep: float) -> Job:
    return Job.model_validate(
        {
            "ID": "j-1",
            "Type": "batch",
            "Tasks": [
                {"Name": "main", "Engine": {"Type": "noop", "Params": {"SleepSeconds": sleep}}}
            ],
        }
    )


@dataclass
class Orchestrator:
    """The orchestrator's side: answers handshakes (`on_handshake` may act first and says
    what to list), heartbeats (asking for a handshake when told) and update batches."""

    nc: Client
    node: ComputeNode
    handshakes: int = 0
    ask_handshake: bool = False
    states: dict[str, list[ComputeStateType]] = field(default_factory=dict)
    on_handshake: Any = None

    async def start(self) -> None:
        await self.nc.subscribe(subjects.HANDSHAKES, cb=self._handshake)
        await self.nc.subscribe(subjects.HEARTBEATS, cb=self._heartbeat)
        await self.nc.subscribe(subjects.UPDATE_BATCHES, cb=self._updates)
        await self.nc.flush()

    async def _handshake(self, msg: Msg) -> None:
        self.handshakes += 1
        listed: list[str] = []
        if self.on_handshake is not None and self.handshakes > 1:
            listed = await self.on_handshake()
        await msg.respond(encode(HandshakeReply(HeartbeatInterval=0.2, ActiveExecutions=listed)))

    async def _heartbeat(self, msg: Msg) -> None:
        known = not self.ask_handshake
        self.ask_handshake = False
        await msg.respond(b'{"Known": true}' if known else b'{"Known": false}')

    async def _updates(self, msg: Msg) -> None:
        batch = decode(UpdateBatch, msg.data)
        for update in batch.Updates:
            self.states.setdefault(update.ExecutionID, []).append(update.State)
        await msg.respond(encode(UpdateAck(Sequences=[u.Sequence for u in batch.Updates])))

    async def offer(self, execution: Execution) -> OfferReply:
        reply = await self.nc.request(
            subjects.offer(self.node.node_id),
            encode(OfferBatch(Executions=[execution], Fresh=True)),
            timeout=10,
        )
        return decode(OfferReply, reply.data)

    async def wait_for(self, execution_id: str, state: ComputeStateType) -> None:
        for _ in range(500):
            if state in self.states.get(execution_id, []):
                return
            await asyncio.sleep(0.02)
        pytest.fail(f"{execution_id} never reported {state.label}: {self.states}")


@pytest.fixture
async def orchestrator(tmp_path: Path) -> AsyncIterator[Orchestrator]:
    server = EmbeddedNats("127.0.0.1", free_port(), tmp_path / "nats")
    await server.start()
    overrides = {
        "node.data_dir": str(tmp_path / "node"),
        "compute.engines": ["noop"],
        "compute.heartbeat_interval": 0.2,
    }
    node = ComputeNode(load_config(None, overrides, environ={}), [server.url])
    nc = await connect([server.url], "orchestrator")
    side = Orchestrator(nc, node)
    await side.start()
    await node.start()
    try:
        await asyncio.wait_for(node.connected.wait(), 10)
        yield side
    finally:
        await node.stop()
        await nc.close()
        await server.stop()


async def test_an_offer_accepted_before_the_handshake_reply_is_read_is_not_cancelled(
    orchestrator: Orchestrator,
) -> None:
    """The reply lists what ran when it was made; an execution offered after that (and
    taken by the node before it read the reply) is not 'closed while unreachable'."""
    execution = Execution(ID="e-late", JobID="j-1", NodeID=orchestrator.node.node_id, Job=_job(1))

    async def offer_first() -> list[str]:
        reply = await orchestrator.offer(execution)
        assert [r.Accepted for r in reply.Results] == [True]
        return []  # made before the offer: it does not know e-late

    orchestrator.on_handshake = offer_first
    orchestrator.ask_handshake = True
    await orchestrator.wait_for("e-late", ComputeStateType.COMPLETED)
    assert orchestrator.handshakes >= 2
    assert ComputeStateType.CANCELLED not in orchestrator.states["e-late"]


async def test_a_task_whose_end_is_being_written_is_not_reported_unknown(
    orchestrator: Orchestrator,
) -> None:
    """A handshake that lists an execution whose task just ended, its Completed still on
    its way to the ledger: the node knows it; no 'no record' failure (which would have it
    placed and run again)."""
    node = orchestrator.node
    writing, release = asyncio.Event(), asyncio.Event()
    record = node.ledger.record

    async def slow_record(executions: list[Execution], updates: list[Any]) -> Any:
        if any(u.State == ComputeStateType.COMPLETED for u in updates):
            writing.set()
            await release.wait()
        return await record(executions, updates)

    node.ledger.record = slow_record  # type: ignore[method-assign]
    execution = Execution(ID="e-ending", JobID="j-1", NodeID=node.node_id, Job=_job(0.3))

    async def list_it() -> list[str]:
        return ["e-ending"]

    reply = await orchestrator.offer(execution)
    assert [r.Accepted for r in reply.Results] == [True]
    await orchestrator.wait_for("e-ending", ComputeStateType.RUNNING)  # sent and acknowledged
    await asyncio.wait_for(writing.wait(), 10)
    asked = orchestrator.handshakes
    orchestrator.on_handshake = list_it
    orchestrator.ask_handshake = True
    for _ in range(500):
        if orchestrator.handshakes > asked and node.connected.is_set():
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.2)  # a 'no record' report would be on its way by now
    release.set()
    await orchestrator.wait_for("e-ending", ComputeStateType.COMPLETED)
    assert orchestrator.states["e-ending"] == [ComputeStateType.RUNNING, ComputeStateType.COMPLETED]
