"""A whole single-node cluster in the test's own process (embedded nats-server, the API on
a free port, a compute node with the noop engine): for tests that look inside the
orchestrator or the node while driving them through the real API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from edge.config import load_config
from edge.runtime import Runtime
from tests.integration.cluster import free_port


@asynccontextmanager
async def single_node(tmp_path: Path, **overrides: Any) -> AsyncIterator[Runtime]:
    settings = {
        "node.data_dir": str(tmp_path),
        "api.port": free_port(),
        "nats.port": free_port(),
        "compute.engines": ["noop"],
        "compute.heartbeat_interval": 0.5,
        "publishers.local.port": 0,
        **overrides,
    }
    runtime = Runtime(load_config(None, settings, environ={}), orchestrator=True, compute=True)
    await runtime.start()
    try:
        yield runtime
    finally:
        await runtime.stop()
