"""The app around the data: bad answers never crash it, palette, help, command log.

These use the canned cluster (fake_api.py) where a real one cannot produce the case (a
server sending garbage), and a tiny aiohttp server where the real client must be in the
path (malformed JSON through AsyncApiClient).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from textual.message import Message
from textual.widgets import Static

from edge.client import ApiError, ApiUnreachable
from tui import BacedgeApp, ClusterTarget
from tui.commands import BacedgeCommands
from tui.messages import ActionFinished, LinkChanged
from tui.screens import CommandLogScreen, ConfirmScreen, HelpScreen, NodeDetailScreen
from tui.widgets import ConnectionBanner, KeyedTable

from .conftest import text_of, until
from .fake_api import NOW, FakeApi


def fake_app(api: FakeApi | None = None, **options: Any) -> BacedgeApp:
    options.setdefault("refresh_interval", 0.1)
    return BacedgeApp(
        ClusterTarget("http://fake:1234", profile="lab"),
        api=api or FakeApi(),
        clock=lambda: NOW,
        **options,
    )


async def test_errors_and_garbage_keep_the_last_data_and_recover() -> None:
    api = FakeApi()
    posted: list[Message] = []
    app = fake_app(api, start="jobs")
    async with app.run_test(size=(120, 30), message_hook=posted.append) as pilot:
        table = await until(
            pilot, lambda: app.screen.query("#jobs-table").first(KeyedTable), "jobs"
        )
        await until(pilot, lambda: table.row_count == 8, "the jobs")
        banner = app.screen.query_one(ConnectionBanner)
        for failure, status in [
            (ApiUnreachable(api.base_url, "cannot reach the orchestrator"), "down"),
            (ApiError(500, "internal error: see the orchestrator's log"), "error"),
            (ApiError(401, "authentication required"), "error"),
            (KeyError("Items"), "error"),  # a bug or a server answering nonsense
        ]:
            api.fail_with = failure
            await until(pilot, lambda: app.link.status == status, f"{failure!r} shown")  # noqa: B023
            assert banner.has_class("-shown") and table.row_count == 8
            api.fail_with = None
            app.action_refresh_now()
            await until(pilot, lambda: app.link.ok, "recovery")
            assert not banner.has_class("-shown")
        assert "set an API key" not in text_of(banner)
        assert sum(isinstance(m, LinkChanged) for m in posted) >= 8
        assert app.is_running


@pytest.fixture
async def garbage_server() -> AsyncIterator[str]:
    """An 'orchestrator' whose answers do not fit the API's shapes."""

    async def jobs(_request: web.Request) -> web.Response:
        item = {"ID": "j-1", "State": {"StateType": "Exploded"}, "Type": ["not", "a", "type"]}
        return web.json_response({"Items": [item], "NextToken": ""})

    async def nodes(_request: web.Request) -> web.Response:
        return web.Response(text="<html>proxy error</html>", content_type="text/html")

    async def version(_request: web.Request) -> web.Response:
        return web.Response(text=json.dumps({"BuildVersionInfo": {"GitVersion": "v9"}}))

    app = web.Application()
    app.router.add_get("/api/v1/orchestrator/jobs", jobs)
    app.router.add_get("/api/v1/orchestrator/nodes", nodes)
    app.router.add_get("/api/v1/agent/version", version)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def test_malformed_answers_through_the_real_client(garbage_server: str) -> None:
    app = BacedgeApp(ClusterTarget(garbage_server), refresh_interval=0.1, start="jobs")
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: app.link.status == "error", "the error banner")
        banner = app.screen.query_one(ConnectionBanner)
        assert "unexpected answer" in text_of(banner) or "not the Bacalhau API" in text_of(banner)
        await pilot.press("5", "1", "2")  # screens still work with nothing to show
        await pilot.pause()
        assert app.is_running


async def test_node_actions_reject_and_delete_go_through_the_dialog() -> None:
    api = FakeApi()
    posted: list[Message] = []
    app = fake_app(api, start="nodes")
    async with app.run_test(size=(140, 40), message_hook=posted.append) as pilot:
        table = await until(
            pilot, lambda: app.screen.query("#nodes-table").first(KeyedTable), "nodes"
        )
        await until(pilot, lambda: table.row_count == 4, "the nodes")
        pending = api.nodes[3].Info.NodeID
        table.select_key(pending)
        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the dialog")
        await pilot.press("n")
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the dialog")
        await pilot.click("#cancel")
        assert api.calls == [], "cancel sends nothing"
        await pilot.press("enter")  # the node's detail, with its GPUs and executions
        detail = await until(
            pilot, lambda: isinstance(app.screen, NodeDetailScreen) and app.screen, "detail"
        )
        assert isinstance(detail, NodeDetailScreen) and detail.node_id == pending
        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the dialog")
        await pilot.press("y")
        await until(pilot, lambda: any(isinstance(m, ActionFinished) for m in posted), "reject")
        assert api.calls == [("node_action", pending, "reject")]
        assert app.command_log[-1].command == f"bacedge node reject {pending} --profile lab"
        await pilot.press("c")
        log = await until(
            pilot, lambda: isinstance(app.screen, CommandLogScreen) and app.screen, "the log"
        )
        assert f"node reject {pending}" in text_of(log.query_one("#command-log", Static))


async def test_palette_and_help_follow_the_mode() -> None:
    for read_only in (False, True):
        app = fake_app(start="jobs", read_only=read_only)
        async with app.run_test(size=(120, 40)) as pilot:
            await until(pilot, lambda: app.data.loaded, "data")  # noqa: B023
            table = app.screen.query_one("#jobs-table", KeyedTable)
            await until(pilot, lambda: table.row_count == 8, "rows")  # noqa: B023
            provider = BacedgeCommands(app.screen)
            names = [name for name, _, _ in provider._commands()]
            assert "Go to Nodes" in names and "Refresh now" in names
            writes = [n for n in names if n.startswith(("Stop", "Rerun", "Submit", "Approve"))]
            assert bool(writes) is not read_only
            hits = [hit async for hit in provider.search("vibration")]
            assert any("vibration-fft" in str(hit.text) for hit in hits)
            await pilot.press("question_mark")
            help_screen = await until(
                pilot,
                lambda: isinstance(app.screen, HelpScreen) and app.screen,  # noqa: B023
                "help",
            )
            assert isinstance(help_screen, HelpScreen)
            described = {row[1] for row in help_screen.rows}
            assert {"Filter", "Sort", "Refresh", "Pause", "Logs"} <= described
            assert ("Stop" in described) is not read_only
            await pilot.press("escape")


async def test_pause_stops_polling_and_ctrl_r_still_refreshes() -> None:
    api = FakeApi()
    polls = 0
    original = api.list_nodes

    async def counting(*args: Any, **kwargs: Any) -> Any:
        nonlocal polls
        polls += 1
        return await original(*args, **kwargs)

    api.list_nodes = counting  # type: ignore[method-assign]
    app = fake_app(api, start="overview", refresh_interval=0.2)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: polls >= 2, "live polling")
        await pilot.press("p")
        assert app.paused
        await until(pilot, lambda: app._poll_worker is None, "the poll in flight")
        settled = polls
        seen = app.generation
        await pilot.press("ctrl+r")
        await until(pilot, lambda: app.generation > seen, "a refresh on demand")
        assert polls == settled + 1
        header = text_of(app.screen.query_one("#header-right", Static))
        assert "paused" in header
        await pilot.press("p")
        await until(pilot, lambda: polls >= settled + 3, "polling again")
