"""`job logs` streams against a real in-process cluster (API, embedded nats-server, a node):
what a client that leaves costs the orchestrator and the node afterwards."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect

from edge.compute import logs
from edge.runtime import Runtime
from tests.inprocess import single_node

API = "/api/v1/orchestrator"


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Runtime]:
    async with single_node(tmp_path) as runtime:
        yield runtime


async def _settled(check: object, what: str) -> None:
    for _ in range(200):
        if check():  # type: ignore[operator]
            return
        await asyncio.sleep(0.05)
    pytest.fail(what)


async def _running_quiet_job(runtime: Runtime) -> str:
    """A job whose task prints nothing for a minute, once it runs."""
    job = {
        "Name": "quiet",
        "Type": "batch",
        "Tasks": [{"Name": "main", "Engine": {"Type": "noop", "Params": {"SleepSeconds": 60}}}],
    }
    async with httpx.AsyncClient(base_url=runtime.api_url) as client:
        job_id = str((await client.put(f"{API}/jobs", json={"Job": job})).json()["JobID"])
        for _ in range(200):
            state = (await client.get(f"{API}/jobs/{job_id}")).json()["Job"]["State"]
            if state["StateType"] == "Running":
                return job_id
            await asyncio.sleep(0.05)
    pytest.fail("the job never ran")


async def test_a_follower_that_leaves_a_quiet_task_frees_its_subscription_and_reader(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A quiet running task (nothing printed for a minute) followed, then the client
    closes: the orchestrator's subscription and the node's reader end at once. They waited
    for the task's next line to notice, so each departed follower of a quiet service was
    held for as long as it ran."""
    monkeypatch.setattr(logs, "KEEPALIVE", 0.5)  # the node's probe of a quiet follower
    assert runtime.orch is not None and runtime.node is not None
    orch, node = runtime.orch, runtime.node
    job_id = await _running_quiet_job(runtime)
    subscriptions = len(orch.nc._subs)
    readers = len(node._background)
    url = runtime.api_url.replace("http", "ws", 1) + f"{API}/jobs/{job_id}/logs?follow=true"
    for _ in range(3):
        async with connect(url):
            await _settled(
                lambda: len(orch.nc._subs) == subscriptions + 1, "no subscription for the stream"
            )
            await _settled(lambda: len(node._background) == readers + 1, "no reader on the node")
        await _settled(
            lambda: len(orch.nc._subs) == subscriptions, "the stream's subscription outlived it"
        )
        await _settled(lambda: len(node._background) == readers, "the node's reader outlived it")


async def test_log_streams_past_the_limit_are_refused_until_one_ends(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each stream holds a WebSocket, a subscription and a node's reader: past
    `LOG_STREAMS` at once the API answers 503 (as for event streams) instead of taking
    every connection a client opens."""
    from websockets.exceptions import InvalidStatus

    from edge.orchestrator import api

    monkeypatch.setattr(api, "LOG_STREAMS", 4)
    job_id = await _running_quiet_job(runtime)
    url = runtime.api_url.replace("http", "ws", 1) + f"{API}/jobs/{job_id}/logs?follow=true"
    streams = [await connect(url) for _ in range(4)]
    try:
        with pytest.raises(InvalidStatus) as refused:
            await connect(url)
        assert refused.value.response.status_code == 503
        assert b"4 log streams are open already" in refused.value.response.body
        await streams.pop().close()
        for _ in range(100):  # the server has seen the close
            try:
                streams.append(await connect(url))
                break
            except InvalidStatus:
                await asyncio.sleep(0.05)
        else:
            pytest.fail("no stream after one ended")
    finally:
        for stream in streams:
            await stream.close()
