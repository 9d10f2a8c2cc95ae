"""Fixtures for the TUI tests: real clusters (tests/integration/cluster.py) and helpers.

Pilot tests wait on conditions (`until`) with short pauses that let the app run; none of
them measures time.
"""

from __future__ import annotations

import base64
import contextlib
import io
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from aiohttp import web
from rich.console import Console
from textual.pilot import Pilot
from textual.widget import Widget

from tests.integration.cluster import Cluster
from tests.wasm_build import build_wasm
from tui.screens import ConfirmScreen

from .fake_api import bacalhau_app

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


@contextlib.asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[str]:
    """An aiohttp app on a free port of 127.0.0.1 for the test's loop; yields its URL."""
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@pytest.fixture
async def bacalhau_151() -> AsyncIterator[str]:
    """A Bacalhau v1.5.1 orchestrator as its API answers: nodes with the connection as a
    word, execution states in the old numbering."""
    async with serving(bacalhau_app("v1.5.1")) as url:
        yield url


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def noop_job(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "Name": name,
        "Type": "batch",
        "Labels": labels or {},
        "Tasks": [{"Name": "main", "Engine": {"Type": "noop"}}],
    }


def _inline(target: str, media_type: str, data: bytes) -> dict[str, Any]:
    url = f"data:{media_type};base64,{base64.b64encode(data).decode()}"
    return {"Source": {"Type": "inline", "Params": {"URL": url}}, "Target": target}


def wasm_job(
    name: str,
    module: str = "hello",
    args: list[str] | None = None,
    labels: dict[str, str] | None = None,
    files: dict[str, str] | None = None,
    results: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A wasm job; `files` are inline inputs (path: text), `results` its ResultPaths
    (name: path), which it publishes with the default publisher (`local`)."""
    inputs = [_inline("/main.wasm", "application/wasm", build_wasm(module).read_bytes())]
    inputs += [_inline(path, "text/plain", text.encode()) for path, text in (files or {}).items()]
    params = {"EntryModule": "main.wasm", "Parameters": args or []}
    task: dict[str, Any] = {
        "Name": "main",
        "Engine": {"Type": "wasm", "Params": params},
        "InputSources": inputs,
    }
    if results:
        task["ResultPaths"] = [{"Name": n, "Path": path} for n, path in results.items()]
    return {"Name": name, "Type": "batch", "Labels": labels or {}, "Tasks": [task]}


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


async def confirm_dialog(pilot: Pilot[Any], what: str = "the dialog") -> ConfirmScreen:
    """The confirmation dialog once it is ready for keys: mounted, its Cancel focused (a key
    pressed before that can reach the screen below on a loaded machine)."""
    app = pilot.app

    def ready() -> ConfirmScreen | None:
        screen = app.screen
        ok = isinstance(screen, ConfirmScreen) and screen.is_mounted and screen.focused
        return screen if ok and isinstance(screen, ConfirmScreen) else None

    return await until(pilot, ready, what)


def text_of(widget: Widget) -> str:
    """What a Static shows, as plain text (Text, str, Syntax or a Rich table alike)."""
    content = getattr(widget, "content", None)
    if isinstance(content, str):
        return content
    console = Console(width=300, file=io.StringIO(), color_system=None, record=True)
    console.print(content)
    return console.export_text()
