"""Stopping when something fails on the way out, against a real nats-server: a node whose
last updates find nobody still stops (closing its ledger, keeping them for next time); a
part of a runtime that fails to stop leaves the others to stop."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from edge.compute.agent import ComputeNode
from edge.config import load_config
from edge.models import ComputeStateType, Execution
from edge.transport.client import connect
from edge.transport.messages import ExecutionUpdate
from edge.transport.server import EmbeddedNats
from tests.integration.cluster import free_port


async def test_a_node_stops_with_its_orchestrator_gone_and_keeps_its_updates(
    tmp_path: Path,
) -> None:
    server = EmbeddedNats("127.0.0.1", free_port(), tmp_path / "nats")
    await server.start()
    config = load_config(None, {"node.data_dir": str(tmp_path / "node")}, environ={})
    try:
        node = ComputeNode(config, [server.url])
        await node.ledger.open()
        node.nc = await connect([server.url], "node")  # nobody answers its updates
        execution = Execution(ID="e-1", JobID="j-1", NodeID=node.node_id)
        completed = ExecutionUpdate(
            ExecutionID="e-1", JobID="j-1", NodeID=node.node_id, State=ComputeStateType.COMPLETED
        )
        [update] = await node.ledger.record([execution], [completed])
        node._unsent[update.Sequence] = update
        await asyncio.wait_for(node.stop(), 30)  # raised NoRespondersError, ledger open
        assert node.nc.is_closed
        again = ComputeNode(config, [server.url])
        await again.ledger.open()
        assert [u.ExecutionID for u in await again.ledger.outbox()] == ["e-1"]
        await again.ledger.close()
    finally:
        await server.stop()


async def test_a_part_that_fails_to_stop_does_not_keep_the_rest_running(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.inprocess import single_node

    async with single_node(tmp_path) as runtime:
        assert runtime.node is not None and runtime.nats is not None
        stop_node = runtime.node.stop

        async def broken() -> None:
            await stop_node()
            raise RuntimeError("a disk error on the way out")

        runtime.node.stop = broken  # type: ignore[method-assign]
    assert runtime.nats._proc is not None and runtime.nats._proc.returncode is not None
    assert any(getattr(r, "part", "") == "compute node" for r in caplog.records)
