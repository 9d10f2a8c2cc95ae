"""Fixtures for the TUI tests: real clusters (tests/integration/cluster.py) and helpers.

Pilot tests wait on conditions (`until`) with short pauses that let the app run; none of
them measures time.
"""

from __future__ import annotations

import base64
import io
import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from rich.console import Console
from textual.pilot import Pilot
from textual.widget import Widget

from tests.integration.cluster import Cluster
from tests.wasm_build import build_wasm

os.environ.setdefault("TEXTUAL_ANIMATIONS", "none")

T = TypeVar("T")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """An orchestrator and two compute nodes in their own processes, shared by a module."""
    c = Cluster(tmp_path_factory.mktemp("tui-cluster"))
    try:
        c.orchestrator()
        c.compute("c1", "--engines", "wasm,noop")
        c.compute("c2", "--engines", "wasm,noop")
        c.wait_nodes(2)
        yield c
    finally:
        c.close()


@pytest.fixture
def own_cluster(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """An empty cluster directory for a test that starts (and kills) its own processes."""
    c = Cluster(tmp_path)
    yield c
    c.close()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def noop_job(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "Name": name,
        "Type": "batch",
        "Labels": labels or {},
        "Tasks": [{"Name": "main", "Engine": {"Type": "noop"}}],
    }


def wasm_job(
    name: str,
    module: str = "hello",
    args: list[str] | None = None,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    data = base64.b64encode(build_wasm(module).read_bytes()).decode()
    return {
        "Name": name,
        "Type": "batch",
        "Labels": labels or {},
        "Tasks": [
            {
                "Name": "main",
                "Engine": {
                    "Type": "wasm",
                    "Params": {"EntryModule": "main.wasm", "Parameters": args or []},
                },
                "InputSources": [
                    {
                        "Source": {
                            "Type": "inline",
                            "Params": {"URL": f"data:application/wasm;base64,{data}"},
                        },
                        "Target": "/main.wasm",
                    }
                ],
            }
        ],
    }


async def until(pilot: Pilot[Any], check: Callable[[], T], what: str, timeout: float = 45.0) -> T:
    """Let the app run until `check()` is truthy; fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what} (last: {last!r})")
        await pilot.pause(0.05)


def text_of(widget: Widget) -> str:
    """What a Static shows, as plain text (Text, str, Syntax or a Rich table alike)."""
    content = getattr(widget, "content", None)
    if isinstance(content, str):
        return content
    console = Console(width=300, file=io.StringIO(), color_system=None, record=True)
    console.print(content)
    return console.export_text()
