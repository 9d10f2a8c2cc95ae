"""Offers that got no answer (issue 12, item 5): the orchestrator's side, without NATS.

An execution waiting for its bid (AskForBid) is never guessed at: after a restart, or once
an unanswered offer has had time to reach its node, the node is told to handshake again
and the handshake lists the execution; the node keeps what it took and reports the rest
failed ("no record"), which closes them as lost so the job is planned again. An offer that
may still be on its way is never listed (the node would call it unknown, then run it).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout

from edge.config import Config
from edge.models import (
    LOST_DETAIL,
    ComputeNodeInfo,
    ComputeStateType,
    Execution,
    Job,
    JobStateType,
    NodeInfo,
    Resources,
)
from edge.orchestrator import service
from edge.orchestrator.service import Orchestrator
from edge.orchestrator.store import Batch, Store
from edge.transport import subjects
from edge.transport.messages import ExecutionUpdate, Heartbeat, encode

NODE = "n-11111111-1111-1111-1111-111111111111"


class FakeNats:
    """What the orchestrator asks of a NATS client; offers fail the way `fail` says."""

    max_payload = 1 << 20  # nats-server's default

    def __init__(self) -> None:
        self.fail: BaseException = NatsTimeout()
        self.offers: list[str] = []

    async def subscribe(self, *_args: Any, **_kwargs: Any) -> Any:
        return self

    async def unsubscribe(self) -> None:
        pass

    async def request(self, subject: str, _data: bytes, timeout: float = 0) -> Any:
        self.offers.append(subject)
        raise self.fail


class FakeMsg:
    def __init__(self, data: bytes, subject: str = f"bacedge.node.{NODE}.handshake") -> None:
        self.data = data
        self.subject = subject  # from the node itself: sender() reads the ID in it
        self.reply = "_INBOX.test"
        self.headers: dict[str, str] | None = None  # as nats-py, when the sender set none
        self.answer: bytes | None = None

    async def respond(self, data: bytes) -> None:
        self.answer = data


def node_info() -> NodeInfo:
    big = Resources(CPU=8, Memory=8 << 30, Disk=64 << 30)
    return NodeInfo(
        NodeID=NODE,
        NodeType="Compute",
        ComputeNodeInfo=ComputeNodeInfo(
            ExecutionEngines=["noop"], MaxCapacity=big, AvailableCapacity=big
        ),
    )


NOOP = {"Type": "batch", "Count": 1, "Tasks": [{"Name": "main", "Engine": {"Type": "noop"}}]}


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = Store(tmp_path / "state.db")
    await s.open()
    yield s
    await s.close()


async def orchestrator(store: Store, nc: FakeNats) -> Orchestrator:
    """An orchestrator loaded from the store, its loops stopped: the test drives it."""
    orch = Orchestrator(Config(), store, nc)  # type: ignore[arg-type]
    await orch.start()
    await orch.stop()
    return orch


async def handshake(orch: Orchestrator) -> list[str]:
    msg = FakeMsg(encode(node_info()))
    await orch._on_handshake(msg)  # type: ignore[arg-type]
    assert msg.answer is not None
    return list(json.loads(msg.answer)["ActiveExecutions"])


async def heartbeat_known(orch: Orchestrator) -> bool:
    msg = FakeMsg(encode(Heartbeat(NodeID=NODE)))
    await orch._on_heartbeat(msg)  # type: ignore[arg-type]
    assert msg.answer is not None
    return bool(json.loads(msg.answer)["Known"])


async def place_one(orch: Orchestrator) -> tuple[Job, Execution]:
    """A new job, placed on the node in its submission's own commit (nothing else waits to
    be scheduled), its offer sent once stored: FakeNats fails it as `fail` says."""
    job, _, _ = await orch.submit(dict(NOOP))
    assert await orch.store.executions(job.ID), "placed in the submission's commit"
    await asyncio.gather(*orch._background)  # the offer
    assert orch.nc.offers == [subjects.offer(NODE)]  # type: ignore[attr-defined]
    (execution_id,) = orch.job_executions[job.ID]
    return job, orch.executions[execution_id]


async def test_an_offer_unanswered_before_a_restart_is_confirmed_with_its_node(
    store: Store,
) -> None:
    nc = FakeNats()
    first = await orchestrator(store, nc)
    await handshake(first)
    job, execution = await place_one(first)  # recorded; the process dies before the bid

    orch = await orchestrator(store, nc)  # the restart
    assert orch.executions[execution.ID].state == ComputeStateType.ASK_FOR_BID
    # The node is asked: its next heartbeat is told to handshake, which lists the offer.
    orch._chase_offers(time.monotonic(), Batch())
    assert not await heartbeat_known(orch)
    assert execution.ID in await handshake(orch)
    assert await heartbeat_known(orch)  # asked once, not at every heartbeat

    # The node never got it: "no record". Closed as lost, so it may run there again.
    batch = Batch()
    orch._apply_update(
        ExecutionUpdate(
            ExecutionID=execution.ID,
            JobID="",
            NodeID=NODE,
            State=ComputeStateType.FAILED,
            Message="the compute node has no record of this execution",
        ),
        batch,
    )
    closed = orch.executions[execution.ID]
    assert closed.state == ComputeStateType.FAILED
    assert LOST_DETAIL in closed.ComputeState.Details
    assert job.ID in orch._pending
    # The next plan places the partition again, on the same node.
    offers: dict[str, list[Execution]] = {}
    orch._plan(orch.jobs[job.ID], batch, offers)
    assert [e.PartitionIndex for e in offers[NODE]] == [0]
    assert orch.jobs[job.ID].State.StateType != JobStateType.FAILED


async def test_a_node_that_kept_the_offer_is_not_asked_again_once_it_reports(
    store: Store,
) -> None:
    nc = FakeNats()
    first = await orchestrator(store, nc)
    await handshake(first)
    _, execution = await place_one(first)
    orch = await orchestrator(store, nc)
    assert execution.ID in await handshake(orch)
    batch = Batch()
    update = ExecutionUpdate(
        ExecutionID=execution.ID, JobID="", NodeID=NODE, State=ComputeStateType.RUNNING
    )
    orch._apply_update(update, batch)
    assert orch.executions[execution.ID].state == ComputeStateType.RUNNING
    orch._chase_offers(time.monotonic() + 10 * service.CONFIRM_INTERVAL, Batch())
    assert await heartbeat_known(orch)
    assert not orch._chase_at


async def test_a_timed_out_offer_waits_and_is_then_confirmed_not_failed(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    nc = FakeNats()
    orch = await orchestrator(store, nc)
    await handshake(orch)
    _, execution = await place_one(orch)
    # While the offer may be on its way the node is never asked about it.
    assert execution.ID not in await handshake(orch)
    await orch._offer(NODE, [execution], {})  # times out
    assert nc.offers and execution.state == ComputeStateType.ASK_FOR_BID
    now = time.monotonic()
    assert execution.ID not in await handshake(orch)  # it may still reach a slow node
    orch._chase_offers(now, Batch())
    assert await heartbeat_known(orch)
    later = now + service.OFFER_SETTLE + 1
    orch._chase_offers(later, Batch())
    assert not await heartbeat_known(orch)
    assert execution.ID in await handshake(orch)
    # Still no word: asked again after CONFIRM_INTERVAL, not before.
    orch._chase_offers(later + 1, Batch())
    assert await heartbeat_known(orch)
    orch._chase_offers(later + service.CONFIRM_INTERVAL + 1, Batch())
    assert not await heartbeat_known(orch)


async def test_an_offer_nobody_listens_for_is_lost_at_once(store: Store) -> None:
    nc = FakeNats()
    nc.fail = NoRespondersError()
    orch = await orchestrator(store, nc)
    await handshake(orch)
    job, execution = await place_one(orch)
    await orch._offer(NODE, [execution], {})
    assert execution.state == ComputeStateType.FAILED
    assert LOST_DETAIL in execution.ComputeState.Details
    assert job.ID in orch._pending
    assert not orch._chase_at and not orch._in_flight
    stored = await store.get_execution(execution.ID)
    assert stored is not None and stored.state == ComputeStateType.FAILED


async def test_a_node_without_a_record_of_an_execution_reports_it_lost(tmp_path: Path) -> None:
    """A node accepts an offer before its ledger's write (off the round trip); a crash in
    between leaves the orchestrator with an accepted execution the restarted node has no
    record of. That is lost with the node, not the task's failure: reported so, the job is
    placed again, on that node too (a single-node device must not fail the job)."""
    from edge.compute.agent import ComputeNode
    from edge.config import load_config

    config = load_config(None, {"node.data_dir": str(tmp_path)}, environ={})
    node = ComputeNode(config, [])
    await node.ledger.open()
    try:
        await node._report_unknown("e-gone")
        (update,) = await node.ledger.outbox()
    finally:
        await node.ledger.close()
    assert update.State == ComputeStateType.FAILED and "no record" in update.Message
    assert update.Details == {LOST_DETAIL: "node restarted"}
