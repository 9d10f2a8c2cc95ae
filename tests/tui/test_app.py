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
from edge.models import NodeState
from tui import BacedgeApp, ClusterTarget
from tui.commands import BacedgeCommands
from tui.messages import ActionFinished, LinkChanged
from tui.screens import (
    CommandLogScreen,
    ConfirmScreen,
    DownloadScreen,
    HelpScreen,
    JobDetailScreen,
    NodeDetailScreen,
)
from tui.widgets import ConnectionBanner, KeyedTable

from .conftest import confirm_dialog, serving, text_of, until
from .fake_api import (
    BACALHAU_JOB_ID,
    NOW,
    PEER_ID,
    BacalhauApi,
    FakeApi,
    published_results,
)


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
    async with serving(app) as url:
        yield url


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


async def test_cordon_uncordon_and_drain_in_the_table_palette_and_help() -> None:
    for read_only in (False, True):
        api = FakeApi()
        gpu, draining = api.nodes[0].Info.NodeID, api.nodes[1].Info.NodeID
        app = fake_app(api, start="nodes", read_only=read_only)
        async with app.run_test(size=(160, 40)) as pilot:
            table = await until(
                pilot,
                lambda: app.screen.query("#nodes-table").first(KeyedTable),  # noqa: B023
                "nodes",
            )
            await until(pilot, lambda: table.row_count == 4, "the nodes")  # noqa: B023
            assert (table.cells(draining) or ())[2].text == "CONNECTED,DRAINING"
            assert (table.cells(gpu) or ())[2].text == "CONNECTED"

            def palette() -> list[str]:
                return [name for name, _, _ in BacedgeCommands(app.screen)._commands()]  # noqa: B023

            table.select_key(draining)
            await pilot.pause()
            names = palette()
            if read_only:
                assert not [n for n in names if n.split()[0] in ("Cordon", "Uncordon", "Drain")]
            else:
                assert {"Uncordon node edge-pi-02", "Drain node edge-pi-02"} <= set(names)
                assert "Cordon node edge-pi-02" not in names
                table.select_key(gpu)
                await pilot.pause()
                assert {"Cordon node edge-gpu-01", "Drain node edge-gpu-01"} <= set(palette())
            await pilot.press("question_mark")
            help_screen = await until(
                pilot,
                lambda: isinstance(app.screen, HelpScreen) and app.screen,  # noqa: B023
                "help",
            )
            assert isinstance(help_screen, HelpScreen)
            keys = {(key, action) for key, action, _ in help_screen.rows}
            wanted = {("C", "Cordon"), ("U", "Uncordon"), ("D", "Drain")}
            assert (wanted <= keys) is not read_only, keys
            await pilot.press("escape")
            await pilot.press("D")
            await pilot.pause()
            assert isinstance(app.screen, ConfirmScreen) is not read_only
            assert api.calls == []


async def test_a_drain_sends_its_reason_and_deadline() -> None:
    api = FakeApi()
    node = api.nodes[0].Info.NodeID
    posted: list[Message] = []
    app = fake_app(api, start="nodes")
    async with app.run_test(size=(160, 40), message_hook=posted.append) as pilot:
        table = await until(
            pilot, lambda: app.screen.query("#nodes-table").first(KeyedTable), "nodes"
        )
        await until(pilot, lambda: table.row_count == 4, "the nodes")
        table.select_key(node)
        await pilot.press("D")
        dialog = await confirm_dialog(pilot, "the dialog")
        question = text_of(dialog.query_one("#dialog-question", Static))
        assert f"Drain node edge-gpu-01 ({node})?" in question and "deadline" in question
        await pilot.press("tab")  # from Cancel: the button, then the first field
        await pilot.press("tab", *"GPU fan", "enter", *"1h", "enter")
        assert dialog.command == (
            f"bacedge node drain {node} --message 'GPU fan' --deadline 1h --profile lab"
        )
        await pilot.press("enter")
        await until(pilot, lambda: any(isinstance(m, ActionFinished) for m in posted), "drain")
        assert api.node_actions == [(node, "drain", "GPU fan", "1h")]
        entry = app.command_log[-1]
        assert entry.ok and entry.message == "Node edge-gpu-01 draining; batch work moves in 1h"
        assert entry.command == dialog.command


async def test_node_actions_a_bacalhau_server_does_not_know(bacalhau_151: str) -> None:
    """Bacalhau has no cordon or drain: the server's answer is shown, the screen goes on."""
    app = BacedgeApp(ClusterTarget(bacalhau_151), refresh_interval=0.2, start="nodes")
    async with app.run_test(size=(160, 40)) as pilot:
        table = await until(
            pilot, lambda: app.screen.query("#nodes-table").first(KeyedTable), "nodes"
        )
        await until(pilot, lambda: table.row_count == 3, "the nodes")
        node = table.keys[0]
        table.select_key(node)
        for key in ("D", "C"):
            await pilot.press(key)
            await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the dialog")
            await pilot.press("y")
        await until(pilot, lambda: len(app.command_log) == 2, "both to come back")
        assert {e.command.split()[2] for e in app.command_log} == {"drain", "cordon"}
        for entry in app.command_log:
            assert not entry.ok and entry.command.startswith("bacedge node ")
            assert entry.message == (
                f"{bacalhau_151} answered PUT /api/v1/orchestrator/nodes/{node} "
                "with HTTP 404 Not Found: 404: Not Found"
            )
        errors = [n for n in app._notifications if n.severity == "error"]
        assert len(errors) == 2 and "HTTP 404 Not Found" in str(errors[0].message)
        seen = app.data.generation
        await until(pilot, lambda: app.data.generation > seen + 1, "polls going on")
        assert app.link.ok and table.row_count == 3 and app.screen is table.screen


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


async def test_the_credentials_decide_which_actions_are_offered() -> None:
    """What `/agent/capabilities` says: write:node alone gives node actions and no job
    action; a Bacalhau server (no such call) gets every action."""
    api = FakeApi()
    api.actions = ["read:job", "read:node", "write:node"]
    app = fake_app(api, start="jobs")
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.allowed is not None, "the capabilities")
        names = [name for name, _, _ in BacedgeCommands(app.screen)._commands()]
        assert not [n for n in names if n.startswith(("Stop", "Rerun", "Submit"))]
        assert [n for n in names if n.startswith("Approve node")]
        actions = {b.binding.action for b in app.screen.active_bindings.values()}
        assert "submit_job" not in actions
        await pilot.press("question_mark")
        help_screen = await until(
            pilot, lambda: isinstance(app.screen, HelpScreen) and app.screen, "help"
        )
        assert isinstance(help_screen, HelpScreen)
        assert "lack write:job" in help_screen.note
        assert "Submit" not in {row[1] for row in help_screen.rows}
    bacalhau = fake_app(BacalhauApi("v1.7.0"), start="jobs")
    async with bacalhau.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: bacalhau.allowed is not None, "the capabilities")
        assert bacalhau.can("write:job") and bacalhau.can("write:node")


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


# --------------------------------------------------------------------------- Bacalhau servers


def _columns_on_screen(table: KeyedTable) -> dict[str, tuple[int, int]]:
    """Each column's first and last screen column in the table."""
    out, x = {}, 0
    for column in table.ordered_columns:
        width = column.get_render_width(table)
        out[str(column.label)] = (x, x + width - 1)
        x += width
    return out


async def test_bacalhau_nodes_fit_160_columns_with_peer_ids_and_mib_gpus() -> None:
    app = fake_app(BacalhauApi("v1.7.0"), start="nodes")
    async with app.run_test(size=(160, 48)) as pilot:
        table = await until(
            pilot, lambda: app.screen.query("#nodes-table").first(KeyedTable), "nodes"
        )
        await until(pilot, lambda: table.row_count == 3, "the nodes")
        columns = _columns_on_screen(table)
        assert all(last < table.size.width for _, last in columns.values()), columns
        assert {"DISK", "GPUS"} <= set(columns)
        row = [cell.text for cell in table.cells(PEER_ID) or ()]
        assert row[0] == "QmXaXu9N" and len(PEER_ID) == 46
        assert "Tesla T4 15.0 GiB" in row and "120.0 GiB" in row
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        columns = _columns_on_screen(table)
        for name in ("ID", "NAME", "STATUS", "APPROVAL", "CPU"):  # what matters most, first
            assert columns[name][1] < table.size.width, name
        table.select_key(PEER_ID)
        await pilot.press("enter")
        detail = await until(
            pilot, lambda: isinstance(app.screen, NodeDetailScreen) and app.screen, "detail"
        )
        gpus = detail.query_one("#node-gpus", KeyedTable)
        await until(pilot, lambda: gpus.row_count == 1, "the GPU")
        assert [c.text for c in gpus.cells("0") or ()] == [
            "0", "Tesla T4", "15.0 GiB", "", "", "00000000:00:1E.0",
        ]  # fmt: skip


async def test_nodes_that_cannot_be_read_are_reported_on_screen() -> None:
    api = BacalhauApi("v1.5.1")
    api.nodes.append(NodeState.model_validate({"Peers": {"Qm…": ["/ip4/…"]}}))
    app = fake_app(api, start="nodes")
    async with app.run_test(size=(160, 30)) as pilot:
        await until(pilot, lambda: app.data.loaded, "data")
        status = app.screen.query_one("#table-status", Static)
        await until(pilot, lambda: "1 nodes not shown" in text_of(status), "the warning")
        assert "Bacalhau v1.5.1" in text_of(status)


async def test_an_old_bacalhau_through_the_real_client(bacalhau_151: str) -> None:
    app = BacedgeApp(
        ClusterTarget(bacalhau_151), refresh_interval=0.2, start="executions", clock=lambda: NOW
    )
    async with app.run_test(size=(160, 40)) as pilot:
        table = await until(
            pilot, lambda: app.screen.query("#executions-table").first(KeyedTable), "table"
        )
        await until(pilot, lambda: table.row_count == 5, "the executions")
        states = {key: (table.cells(key) or ())[3].text for key in table.keys}
        assert sorted(states.values()) == sorted(
            ["Completed", "Failed", "BidRejected", "Cancelled", "BidAccepted"]
        )
        assert all(node.connected for node in app.data.nodes.values())
        assert len(app.data.nodes) == 3 and app.data.nodes_unreadable == 0
        header = text_of(app.screen.query_one("#header-right", Static))
        assert "Bacalhau v1.5.1" in header
        app.open_job(BACALHAU_JOB_ID)
        await until(pilot, lambda: app.data.detail is not None, "the job's detail")
        assert app.data.detail is not None
        assert app.data.detail.history[0].state_text == "New → Completed"


async def test_the_palette_offers_downloading_results_read_only() -> None:
    api = FakeApi()
    job = published_results(api)
    app = fake_app(api, start="jobs", read_only=True)
    async with app.run_test(size=(120, 30)) as pilot:
        await until(pilot, lambda: job.ID in app.data.jobs, "the jobs")
        app.selected_job = job.ID
        (download,) = [
            callback
            for name, _, callback in BacedgeCommands(app.screen)._commands()
            if name == "Download results of job vibration-fft"
        ]
        download()
        dialog = await until(
            pilot, lambda: isinstance(app.screen, DownloadScreen) and app.screen, "the dialog"
        )
        assert isinstance(dialog, DownloadScreen)
        assert "4 completed executions" in text_of(dialog.query_one("#dialog-question", Static))
        command = dialog.query_one("#dialog-command", Static)
        await until(pilot, lambda: text_of(command).strip(), "the command")
        assert text_of(command).strip() == (
            f"$ bacedge job get {job.ID} --output-dir ./job-00000002 --profile lab"
        )
        await pilot.press("escape")
        screen = app.screen
        assert isinstance(screen, JobDetailScreen) and screen.tabs.active == "results"
        assert app.command_log == [], "cancelled: nothing downloaded"
