"""The TUI driven with Textual's Pilot against a real orchestrator and real compute nodes."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from textual.message import Message
from textual.pilot import Pilot
from textual.widgets import Button, Input, Static

from edge.cli.output import display_id, rfc3339_ns
from tests.integration.cluster import Cluster
from tui import BacedgeApp, ClusterTarget
from tui.commands import BacedgeCommands
from tui.messages import ActionFinished, ActionStarted, DataRefreshed
from tui.screens import (
    ConfirmScreen,
    DownloadScreen,
    JobDetailScreen,
    JobsScreen,
    LogsScreen,
    NodeDetailScreen,
    SubmitScreen,
)
from tui.state import CommandEntry
from tui.widgets import ConnectionBanner, KeyedTable, LogView
from tui.widgets.log_view import ERROR_RE

from .conftest import confirm_dialog, noop_job, text_of, unique, until, wasm_job

JOBS = "/api/v1/orchestrator/jobs"


def make_app(cluster: Cluster, **options: Any) -> BacedgeApp:
    options.setdefault("refresh_interval", 0.3)
    return BacedgeApp(ClusterTarget(cluster.api), **options)


def api_jobs(cluster: Cluster) -> dict[str, dict[str, Any]]:
    body = httpx.get(f"{cluster.api}{JOBS}", params={"limit": "10000"}, timeout=10).json()
    return {j["ID"]: j for j in body["Items"]}


def jobs_table(app: BacedgeApp) -> KeyedTable:
    return app.screen.query_one("#jobs-table", KeyedTable)


def stop_quietly(cluster: Cluster, job_id: str) -> None:
    httpx.delete(f"{cluster.api}{JOBS}/{job_id}", timeout=10)


async def test_jobs_screen_rows_match_the_api(cluster: Cluster) -> None:
    tag = unique("rows")
    ids = {
        cluster.submit(noop_job(f"{tag}-noop-a", {"suite": tag})): "Completed",
        cluster.submit(noop_job(f"{tag}-noop-b", {"suite": tag})): "Completed",
        cluster.submit(wasm_job(f"{tag}-wasm-ok", "hello", ["hi"])): "Completed",
        cluster.submit(wasm_job(f"{tag}-wasm-exit3", "exit3")): "Failed",
    }
    for job_id, state in ids.items():
        cluster.wait_state(job_id, state)
    app = make_app(cluster, start="jobs")
    async with app.run_test(size=(140, 40)) as pilot:
        table = await until(
            pilot, lambda: isinstance(app.screen, JobsScreen) and jobs_table(app), "the jobs screen"
        )

        def in_table() -> bool:
            return all(
                (cells := table.cells(job_id)) is not None and cells[3].text == state
                for job_id, state in ids.items()
            )

        await until(pilot, in_table, "the new jobs in their final states")
        truth = api_jobs(cluster)
        assert set(table.keys) == set(truth), "every job the API lists, and nothing else"
        for job_id, job in truth.items():
            cells = table.cells(job_id)
            assert cells is not None
            assert cells[0].text == display_id(job_id)
            assert cells[1].text == job["Name"][:40] or cells[1].text.endswith("…")
            assert cells[2].text == job["Type"]
            assert cells[3].text == job["State"]["StateType"]
            assert cells[5].text == job["Tasks"][0]["Engine"]["Type"]
        # Executions running/total are fetched for the rows on screen.
        totals = {j: f"0/{len(cluster.executions(j))}" for j in ids}
        await until(
            pilot,
            lambda: all(table.cells(j)[4].text == t for j, t in totals.items()),  # type: ignore[index]
            "execution counts",
        )
        header = text_of(app.screen.query_one("#header-right", Static))
        assert "nodes 2/2" in header and "live" in header


async def test_refresh_keeps_the_cursor_and_scroll_position(cluster: Cluster) -> None:
    tag = unique("cursor")
    for i in range(30):
        cluster.submit(noop_job(f"{tag}-{i:02d}"))
    app = make_app(cluster, start="jobs")
    async with app.run_test(size=(100, 20)) as pilot:
        table = await until(
            pilot, lambda: isinstance(app.screen, JobsScreen) and jobs_table(app), "the jobs screen"
        )
        await until(pilot, lambda: table.row_count >= 30, "30 rows")
        cleared: list[bool] = []
        original_clear = table.clear

        def spy_clear(columns: bool = False) -> Any:
            cleared.append(True)
            return original_clear(columns)

        table.clear = spy_clear  # type: ignore[method-assign]
        for _ in range(12):
            await pilot.press("down")
        key = table.selected_key
        assert key is not None
        row, offset = table.cursor_row, table.cursor_row - int(table.scroll_y)
        before = table.row_count
        newer = [cluster.submit(noop_job(f"{tag}-new-{i}")) for i in range(3)]
        await until(pilot, lambda: all(table.cells(j) is not None for j in newer), "the new jobs")
        # Newest first: three rows arrived above the cursor; it stayed on its job, at the
        # same height on screen, and the table was patched, not cleared and refilled.
        assert table.selected_key == key
        assert table.cursor_row == row + (table.row_count - before)
        assert table.cursor_row - int(table.scroll_y) == offset
        assert not cleared
        assert not table.last_diff.rebuilt


async def test_filter_syntax_and_sorting(cluster: Cluster) -> None:
    tag = unique("filter")
    ok = [cluster.submit(noop_job(f"{tag}-{n}", {"team": tag, "n": n})) for n in "cab"]
    failed = cluster.submit(wasm_job(f"{tag}-broken", "exit3", labels={"team": tag}))
    cluster.wait_state(failed, "Failed")
    for job_id in ok:
        cluster.wait_state(job_id, "Completed")
    app = make_app(cluster, start="jobs")
    async with app.run_test(size=(140, 40)) as pilot:
        table = await until(
            pilot, lambda: isinstance(app.screen, JobsScreen) and jobs_table(app), "the jobs screen"
        )
        await until(pilot, lambda: table.cells(failed) is not None, "the jobs")

        async def filter_by(text: str) -> None:
            await pilot.press("slash")
            field = app.screen.query_one("#filter", Input)
            field.value = text
            await pilot.press("enter")
            await pilot.pause()

        await filter_by(f"state:failed label:team={tag}")
        assert table.keys == [failed]
        await filter_by(f"{tag} -state:fail")
        assert sorted(table.keys) == sorted(ok)
        await filter_by(f"label:n=a,b label:team={tag}")
        assert sorted(table.keys) == sorted(ok[1:])
        await filter_by("colour:red")  # unknown key: refused, the last filter stays
        assert sorted(table.keys) == sorted(ok[1:])
        assert any("unknown filter" in str(n.message) for n in app._notifications)
        await filter_by(f"type:batch engine:noop {tag}")
        assert sorted(table.keys) == sorted(ok)

        await pilot.press("s", "s")  # age -> id -> name
        screen = app.screen
        assert isinstance(screen, JobsScreen) and screen.sort_spec.column == "name"
        names = [table.cells(k)[1].text for k in table.keys]  # type: ignore[index]
        assert names == sorted(names, key=str.lower)
        await pilot.press("S")
        names = [table.cells(k)[1].text for k in table.keys]  # type: ignore[index]
        assert names == sorted(names, key=str.lower, reverse=True)

        await pilot.press("escape")  # clears the filter
        await until(pilot, lambda: table.row_count > 4, "every job again")


async def test_job_detail_tabs(cluster: Cluster) -> None:
    tag = unique("detail")
    job_id = cluster.submit(wasm_job(tag, "hello", ["tui-arg"]))
    cluster.wait_state(job_id, "Completed")
    app = make_app(cluster, start="jobs")
    async with app.run_test(size=(140, 40)) as pilot:
        table = await until(
            pilot, lambda: isinstance(app.screen, JobsScreen) and jobs_table(app), "the jobs screen"
        )
        await until(pilot, lambda: table.cells(job_id) is not None, "the job")
        table.select_key(job_id)
        await pilot.press("enter")
        screen = await until(
            pilot,
            lambda: isinstance(app.screen, JobDetailScreen) and app.screen,
            "the job detail",
        )
        assert isinstance(screen, JobDetailScreen)
        summary = screen.query_one("#job-summary", Static)
        await until(pilot, lambda: job_id in text_of(summary), "the summary")
        assert "Completed" in text_of(summary)

        await pilot.press("right_square_bracket")
        assert screen.tabs.active == "spec"
        spec = text_of(screen.query_one("#job-spec", Static))
        assert "Type: wasm" in spec and "EntryModule: main.wasm" in spec and tag in spec

        await pilot.press("right_square_bracket")
        executions = screen.query_one("#job-executions", KeyedTable)
        await until(pilot, lambda: executions.row_count == 1, "one execution")
        cells = executions.cells(executions.keys[0])
        assert cells is not None and cells[3].text == "Completed" and cells[5].text == "0"

        await pilot.press("right_square_bracket")
        history = screen.query_one("#job-history", KeyedTable)
        await until(pilot, lambda: history.row_count >= 3, "the job's history")
        topics = {history.cells(k)[4].text for k in history.keys}  # type: ignore[index]
        assert topics, "history rows carry their event topics"

        await pilot.press("right_square_bracket")
        assert screen.tabs.active == "logs"
        view = screen.query_one(LogView)
        await until(pilot, lambda: view.total >= 2, "the logs")
        lines = list(view.lines())
        assert (1, "tui-arg") in lines, "stdout"
        assert (2, "hello from wasm") in lines, "stderr, told apart"


async def test_stop_needs_confirmation_and_cancel_sends_nothing(cluster: Cluster) -> None:
    job_id = cluster.submit(wasm_job(unique("spin"), "loop"))
    try:
        cluster.wait_state(job_id, "Running")
        posted: list[Message] = []
        app = make_app(cluster, start="jobs")
        async with app.run_test(size=(140, 40), message_hook=posted.append) as pilot:
            table = await until(
                pilot,
                lambda: isinstance(app.screen, JobsScreen) and jobs_table(app),
                "the jobs screen",
            )
            await until(pilot, lambda: table.cells(job_id) is not None, "the running job")
            table.select_key(job_id)
            await pilot.press("x")
            dialog = await confirm_dialog(pilot, "the dialog")
            assert dialog.command.startswith(f"bacedge job stop {job_id}")
            assert f"--api {cluster.api}" in dialog.command
            await pilot.press("escape")
            assert isinstance(app.screen, JobsScreen)
            # Two more polls: nothing was sent, the job still runs.
            seen = sum(isinstance(m, DataRefreshed) for m in posted)
            await until(
                pilot,
                lambda: sum(isinstance(m, DataRefreshed) for m in posted) >= seen + 2,
                "two more refreshes",
            )
            assert not any(isinstance(m, ActionStarted) for m in posted)
            assert cluster.job(job_id)["Job"]["State"]["StateType"] == "Running"
            assert app.command_log == []

            await pilot.press("x")
            await confirm_dialog(pilot)
            await pilot.press("y")
            finished = await until(
                pilot,
                lambda: [m for m in posted if isinstance(m, ActionFinished)],
                "the stop to be sent",
            )
            assert finished[0].entry.ok, finished[0].entry.message
            cluster.wait_state(job_id, "Stopped")
            await until(pilot, lambda: table.cells(job_id)[3].text == "Stopped", "the new state")  # type: ignore[index]
            entry = app.command_log[-1]
            assert entry.command == (
                f"bacedge job stop {job_id} --reason 'stopped from bacedge tui' --api {cluster.api}"
            )
    finally:
        stop_quietly(cluster, job_id)


async def test_read_only_blocks_every_action(cluster: Cluster) -> None:
    job_id = cluster.submit(wasm_job(unique("ro"), "loop"))
    try:
        cluster.wait_state(job_id, "Running")
        posted: list[Message] = []
        app = make_app(cluster, start="jobs", read_only=True)
        async with app.run_test(size=(140, 40), message_hook=posted.append) as pilot:
            table = await until(
                pilot,
                lambda: isinstance(app.screen, JobsScreen) and jobs_table(app),
                "the jobs screen",
            )
            await until(pilot, lambda: table.cells(job_id) is not None, "the job")
            table.select_key(job_id)
            bindings = {b.binding.action for b in app.screen.active_bindings.values()}
            assert not bindings & {"stop_job", "rerun_job", "submit_job"}
            await pilot.press("x", "R", "ctrl+n")
            await pilot.pause()
            assert isinstance(app.screen, JobsScreen), "no dialog opened"
            app.confirm_stop(app.data.jobs[job_id])  # even a direct call is refused
            await pilot.pause()
            assert isinstance(app.screen, JobsScreen)
            commands = [name for name, _, _ in BacedgeCommands(app.screen)._commands()]
            assert not [c for c in commands if c.startswith(("Stop", "Rerun", "Submit", "Approve"))]
            assert "READ-ONLY" in text_of(app.screen.query_one("#header-right", Static))
            await pilot.press("5")
            await pilot.pause()
            nodes = {b.binding.action for b in app.screen.active_bindings.values()}
            assert not nodes & {
                "approve_node",
                "reject_node",
                "delete_node",
                "cordon_node",
                "uncordon_node",
                "drain_node",
            }
            assert not any(isinstance(m, ActionStarted) for m in posted)
        assert cluster.job(job_id)["Job"]["State"]["StateType"] == "Running"
    finally:
        stop_quietly(cluster, job_id)


async def test_node_approval(own_cluster: Cluster) -> None:
    c = own_cluster
    c.orchestrator(False, BACEDGE_ORCHESTRATOR_AUTO_APPROVE_NODES="false")
    c.compute("newcomer")
    (node,) = c.wait_nodes(1)
    node_id = node["Info"]["NodeID"]
    assert node["Membership"] == "PENDING"
    posted: list[Message] = []
    app = make_app(c, start="overview")
    async with app.run_test(size=(140, 40), message_hook=posted.append) as pilot:
        attention = await until(
            pilot, lambda: app.screen.query("#attention").first(KeyedTable), "the overview"
        )
        await until(pilot, lambda: f"node-pending-{node_id}" in attention.keys, "a pending node")
        await pilot.press("5")
        table = await until(
            pilot, lambda: app.screen.query("#nodes-table").first(KeyedTable), "the nodes screen"
        )
        await until(pilot, lambda: table.cells(node_id) is not None, "the node")
        assert table.cells(node_id)[3].text == "PENDING"  # type: ignore[index]
        table.select_key(node_id)
        await pilot.press("a")
        dialog = await confirm_dialog(pilot, "the dialog")
        assert dialog.command == f"bacedge node approve {node_id} --api {c.api}"
        await pilot.press("y")
        await until(pilot, lambda: any(isinstance(m, ActionFinished) for m in posted), "approval")
        await until(
            pilot,
            lambda: table.cells(node_id)[3].text == "APPROVED",  # type: ignore[index]
            "the node approved in the table",
        )
    (after,) = [n for n in c.nodes() if n["Info"]["NodeID"] == node_id]
    assert after["Membership"] == "APPROVED"


NODES = "/api/v1/orchestrator/nodes"


def scheduling(cluster: Cluster, node_id: str) -> dict[str, str]:
    """The node's cordon or drain as the API says it (left out of an eligible node's state)."""
    response = httpx.get(f"{cluster.api}{NODES}/{node_id}", timeout=5)
    assert response.status_code == 200, response.text
    found = response.json()["Node"].get("Scheduling") or {}
    return {"Status": "ELIGIBLE", "Message": "", "DrainDeadline": "", **found}


async def node_dialog(pilot: Pilot[Any], key: str, **answers: str) -> ConfirmScreen:
    """Press a node action's key, then type the answers into the dialog's fields."""
    await pilot.press(key)
    dialog = await confirm_dialog(pilot, f"the {key} dialog")
    for field, text in answers.items():
        box = dialog.query_one(f"#ask-{field}", Input)
        # A click while the dialog is still laying out can miss its field: click until focused.
        for _ in range(100):
            await pilot.click(box)
            if box.has_focus:
                break
            await pilot.pause(0.05)
        assert box.has_focus, f"#ask-{field} never took the focus"
        await pilot.press(*text)
        await until(pilot, lambda: box.value == text, f"{text!r} in #ask-{field}")  # noqa: B023
    await pilot.pause()  # let Input.Changed reach the dialog, which rewrites its command
    return dialog


async def outcome(pilot: Pilot[Any], posted: list[Message], count: int) -> CommandEntry:
    """The `count`th action's entry in the command log, once it is back."""

    def finished() -> list[ActionFinished]:
        return [m for m in posted if isinstance(m, ActionFinished)]

    await until(pilot, lambda: len(finished()) >= count, f"action {count} to come back")
    return finished()[count - 1].entry


def notified(app: BacedgeApp, text: str) -> bool:
    return any(text in str(n.message) and n.severity == "error" for n in app._notifications)


async def test_cordon_uncordon_and_drain_from_the_nodes_screen_and_the_detail(
    own_cluster: Cluster,
) -> None:
    c = own_cluster
    c.orchestrator()
    c.compute("edge-a", "--engines", "noop")
    edge_b = c.compute("edge-b", "--engines", "noop")
    ids = {n["Info"]["Labels"]["name"]: n["Info"]["NodeID"] for n in c.wait_nodes(2)}
    a, b = ids["edge-a"], ids["edge-b"]
    here = [{"Key": "name", "Operator": "=", "Values": ["edge-a"]}]
    engine = {"Type": "noop", "Params": {"SleepSeconds": 600}}
    busy = c.submit(
        {
            "Name": unique("busy"),
            "Type": "batch",
            "Constraints": here,
            "Tasks": [{"Name": "main", "Engine": engine}],
        }
    )
    c.wait_state(busy, "Running")  # batch work keeps a draining node draining
    posted: list[Message] = []
    app = make_app(c, start="nodes")
    async with app.run_test(size=(160, 40), message_hook=posted.append) as pilot:
        table = await until(
            pilot, lambda: app.screen.query("#nodes-table").first(KeyedTable), "the nodes screen"
        )
        await until(pilot, lambda: table.cells(a) and table.cells(b), "both nodes")

        def status(node_id: str) -> str:
            return (table.cells(node_id) or ())[2].text

        table.select_key(a)

        # Cordon with a reason: the dialog shows the command as it will be run.
        dialog = await node_dialog(pilot, "C", message="kernel update")
        assert dialog.command == f"bacedge node cordon {a} --message 'kernel update' --api {c.api}"
        await pilot.press("enter", "enter")  # out of the field to the button, then press it
        entry = await outcome(pilot, posted, 1)
        assert entry.ok and entry.message == "Node edge-a cordoned: it gets no new work"
        assert scheduling(c, a)["Status"] == "CORDONED"
        assert scheduling(c, a)["Message"] == "kernel update"
        await until(pilot, lambda: status(a) == "CONNECTED,CORDONED", "the table to say so")

        # Cordoned again: the orchestrator refuses, and says why.
        await node_dialog(pilot, "C")
        await pilot.press("y")
        entry = await outcome(pilot, posted, 2)
        assert not entry.ok and "already cordoned" in entry.message
        assert notified(app, "already cordoned")

        await node_dialog(pilot, "U")
        await pilot.press("y")
        assert (await outcome(pilot, posted, 3)).ok
        assert scheduling(c, a)["Status"] == "ELIGIBLE"
        await until(pilot, lambda: status(a) == "CONNECTED", "the table to say so")

        # Drain: a deadline that is not a duration is refused in the dialog, nothing is sent.
        dialog = await node_dialog(pilot, "D", deadline="soon")
        await pilot.press("enter", "y")
        problem = dialog.query_one("#dialog-problem", Static)
        assert problem.display and "not a duration" in text_of(problem)
        assert app.screen is dialog and len(app.command_log) == 3
        await pilot.click("#ask-deadline")
        await pilot.press("end", *["backspace"] * 4, *"10m")
        drain = f"bacedge node drain {a} --deadline 10m --api {c.api}"
        await until(pilot, lambda: dialog.command == drain, "the dialog to show the new command")
        await pilot.press("enter", "enter")
        entry = await outcome(pilot, posted, 4)
        assert entry.message == "Node edge-a draining; batch work moves in 10m", entry.message
        drained = scheduling(c, a)
        assert drained["Status"] == "DRAINING" and drained["DrainDeadline"]
        minutes = (rfc3339_ns(drained["DrainDeadline"]) - time.time_ns()) / 60e9
        assert 9 < minutes <= 10
        assert [e["NodeID"] for e in c.executions(busy)] == [a], "its batch work stays"
        await until(pilot, lambda: status(a) == "CONNECTED,DRAINING", "the table to say so")
        await pilot.press("slash", *"status:draining", "enter")
        await until(pilot, lambda: table.keys == [a], "the filter on the drain")
        await pilot.press("escape")

        # The palette offers what the node's state allows: uncordon, or drain again.
        commands = {name: run for name, _, run in BacedgeCommands(app.screen)._commands()}
        assert "Cordon node edge-a" not in commands
        assert "Drain node edge-a" in commands
        commands["Uncordon node edge-a"]()
        await until(
            pilot,
            lambda: isinstance(app.screen, ConfirmScreen) and app.focused is not None,
            "the dialog, ready for keys",
        )
        await pilot.press("y")
        assert (await outcome(pilot, posted, 5)).ok
        assert scheduling(c, a)["Status"] == "ELIGIBLE"

        # The same keys on a node's detail; with no work there, a drain ends drained.
        table.select_key(b)
        await pilot.press("enter")
        detail = await until(
            pilot, lambda: isinstance(app.screen, NodeDetailScreen) and app.screen, "the detail"
        )
        assert isinstance(detail, NodeDetailScreen)
        info = detail.query_one("#node-info", Static)
        await node_dialog(pilot, "D", message="disk swap")
        await pilot.press("enter", "enter", "y")  # the reason, the deadline (none), yes
        assert (await outcome(pilot, posted, 6)).ok
        await until(pilot, lambda: "DRAINED" in text_of(info), "the detail to say drained")
        assert scheduling(c, b)["Status"] == "DRAINED"
        assert "disk swap" in text_of(info)
        await node_dialog(pilot, "U")
        await pilot.press("y")
        assert (await outcome(pilot, posted, 7)).ok
        assert scheduling(c, b)["Status"] == "ELIGIBLE"

        # The node goes away while the dialog is open: the orchestrator's 404, in words.
        await node_dialog(pilot, "C")
        edge_b.stop()
        gone = httpx.put(f"{c.api}{NODES}/{b}", json={"Action": "delete"}, timeout=5)
        assert gone.status_code == 200, gone.text
        await pilot.press("y")
        entry = await outcome(pilot, posted, 8)
        assert not entry.ok
        assert entry.message == f"node '{b}' not found: check `bacedge node list`"
        assert notified(app, f"node '{b}' not found")
        await until(pilot, lambda: "not in the last answer" in text_of(info), "the detail")
        await pilot.press("escape")
        await until(pilot, lambda: table.keys == [a], "the table without it")
        assert app.is_running and app.link.ok


async def test_disconnect_banner_then_recovery(own_cluster: Cluster) -> None:
    c = own_cluster
    orchestrator = c.orchestrator(True)
    c.wait_nodes(1)
    first = c.submit(noop_job(unique("before")))
    c.wait_state(first, "Completed")
    app = make_app(c, start="jobs", refresh_interval=0.2)
    async with app.run_test(size=(140, 40)) as pilot:
        table = await until(
            pilot, lambda: isinstance(app.screen, JobsScreen) and jobs_table(app), "the jobs screen"
        )
        await until(pilot, lambda: table.cells(first) is not None, "the first job")
        banner = app.screen.query_one(ConnectionBanner)
        assert not banner.display or not banner.has_class("-shown")

        orchestrator.kill()
        await until(pilot, lambda: banner.has_class("-shown"), "the disconnected banner")
        assert app.link.status == "down"
        assert "Disconnected" in text_of(banner)
        assert "retrying in" in text_of(banner)
        assert table.cells(first) is not None, "the last data stays on screen"
        assert "offline" in text_of(app.screen.query_one("#header-right", Static))

        c.orchestrator(True)  # same data dir and ports: the cluster comes back
        await until(pilot, lambda: app.link.ok, "the TUI to reconnect by itself", timeout=60)
        await until(pilot, lambda: not banner.has_class("-shown"), "the banner to go")
        after = c.submit(noop_job(unique("after")))
        await until(pilot, lambda: table.cells(after) is not None, "a job submitted afterwards")
        assert app.is_running


async def test_logs_screen_follow_filter_next_error_and_save(
    cluster: Cluster, tmp_path: Path
) -> None:
    job_id = cluster.submit(wasm_job(unique("logs"), "hello", ["one", "error-two", "three"]))
    cluster.wait_state(job_id, "Completed")
    app = make_app(cluster, start="jobs")
    async with app.run_test(size=(120, 30)) as pilot:
        table = await until(
            pilot, lambda: isinstance(app.screen, JobsScreen) and jobs_table(app), "the jobs screen"
        )
        await until(pilot, lambda: table.cells(job_id) is not None, "the job")
        table.select_key(job_id)
        await pilot.press("l")
        await until(pilot, lambda: isinstance(app.screen, LogsScreen), "the logs screen")
        view = app.screen.query_one(LogView)
        await until(pilot, lambda: (2, "hello from wasm") in list(view.lines()), "the logs")
        assert [t for k, t in view.lines() if k == 1][:3] == ["one", "error-two", "three"]

        await pilot.press("f")
        assert not view.follow
        await pilot.press("g", "n")
        assert view.marked_text() is not None
        assert ERROR_RE.search(view.marked_text() or "") or view.marked_text() == "hello from wasm"

        await pilot.press("slash")
        app.screen.query_one("#log-input", Input).value = "t"
        await pilot.press("enter")
        await until(pilot, lambda: view.shown < view.total, "the filter")
        assert all("t" in text.lower() for _, text in view.lines())

        target = tmp_path / "saved.txt"
        await pilot.press("w")
        app.screen.query_one("#log-input", Input).value = str(target)
        await pilot.press("enter")
        await until(pilot, target.exists, "the saved file")
        assert target.read_text().splitlines() == [t for _, t in view.lines()]


async def test_submit_validates_before_sending(cluster: Cluster, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "Name: broken\nType: batch\nTasks:\n  - Name: main\n    Engine:\n      Type: docker\n"
    )
    good = tmp_path / "good.yaml"
    name = unique("submitted")
    good.write_text(
        f"Name: {name}\nType: batch\nTasks:\n  - Name: main\n    Engine: {{Type: noop}}\n"
    )
    posted: list[Message] = []
    app = make_app(cluster, start="jobs")
    async with app.run_test(size=(140, 40), message_hook=posted.append) as pilot:
        await until(pilot, lambda: app.data.loaded, "the first poll")
        await pilot.press("ctrl+n")
        dialog = await until(
            pilot, lambda: isinstance(app.screen, SubmitScreen) and app.screen, "the dialog"
        )
        await until(pilot, lambda: len(dialog.query("#submit")) == 1, "the dialog's buttons")
        field = dialog.query_one("#path", Input)
        field.value = str(bad)
        await pilot.pause()  # the dialog re-lays itself out on a change: click after that
        await pilot.click("#submit")
        problems = text_of(dialog.query_one("#problems", Static))
        assert "Tasks[0].Engine.Params.Image" in problems, problems
        assert isinstance(app.screen, SubmitScreen), "not sent"
        assert not any(isinstance(m, ActionStarted) for m in posted)
        field.value = str(good)
        await pilot.pause()
        submit = dialog.query_one("#submit")  # a Button ignores clicks for 0.2 s after one
        await until(pilot, lambda: not submit.has_class("-active"), "the button released")
        await pilot.click("#submit")
        done = await until(
            pilot, lambda: [m for m in posted if isinstance(m, ActionFinished)], "the submission"
        )
        assert done[0].entry.ok
        assert done[0].entry.command == f"bacedge job run --no-wait --api {cluster.api} {good}"
        job_id = await until(
            pilot,
            lambda: next((j.ID for j in app.data.jobs.values() if j.Name == name), None),
            "the submitted job in the TUI",
        )
        cluster.wait_state(job_id, "Completed")


async def test_results_tab_downloads_into_a_folder_even_read_only(
    cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the default folder is ./job-<id>
    job_id = cluster.submit(
        wasm_job(
            unique("results"),
            "io",
            ["/input.txt", "/outputs/copy.txt"],
            files={"/input.txt": "edge data\n"},
            results={"outputs": "/outputs"},
        )
    )
    cluster.wait_state(job_id, "Completed")
    (execution,) = cluster.executions(job_id)
    posted: list[Message] = []
    app = make_app(cluster, start="jobs", read_only=True)  # downloading changes nothing
    async with app.run_test(size=(140, 40), message_hook=posted.append) as pilot:
        await until(pilot, lambda: job_id in app.data.jobs, "the job")
        app.selected_job = job_id
        commands = [name for name, _, _ in BacedgeCommands(app.screen)._commands()]
        assert any(c.startswith("Download results of job") for c in commands)
        app.open_job(job_id)
        screen = await until(
            pilot, lambda: isinstance(app.screen, JobDetailScreen) and app.screen, "the job"
        )
        assert isinstance(screen, JobDetailScreen)
        await pilot.press("left_square_bracket")  # Results is the last tab
        assert screen.tabs.active == "results"
        table = screen.query_one("#job-results", KeyedTable)
        await until(pilot, lambda: table.row_count == 1, "the completed execution")
        cells = table.cells(execution["ID"])
        assert cells is not None
        url = execution["PublishedResult"]["Params"]["URL"]  # the node's, on :6001
        assert cells[0].text == display_id(execution["ID"]) and cells[1].text in ("c1", "c2")
        assert [c.text for c in cells[2:4]] == ["urlDownload", url]
        assert cells[4].text == "", "the size is known once downloaded"

        async def download(overwrite: bool = False) -> ActionFinished:
            seen = sum(isinstance(m, ActionFinished) for m in posted)
            await pilot.press("d")
            dialog = await until(
                pilot, lambda: isinstance(app.screen, DownloadScreen) and app.screen, "the dialog"
            )
            assert isinstance(dialog, DownloadScreen)
            assert dialog.query_one("#folder", Input).value == folder
            await pilot.press("enter")
            if overwrite:  # a folder that is not empty: asked first, like --force
                assert app.screen is dialog
                assert str(dialog.query_one("#ok", Button).label) == "Overwrite"
                assert "not empty" in text_of(dialog.query_one("#problems", Static))
                await pilot.press("enter")
            done = await until(
                pilot,
                lambda: [m for m in posted if isinstance(m, ActionFinished)][seen:],
                "the download",
            )
            return done[0]

        folder = f"./job-{job_id.removeprefix('j-')[:8]}"
        finished = await download()
        assert finished.entry.ok, finished.entry.message
        assert finished.entry.command == (
            f"bacedge job get {job_id} --output-dir {folder} --api {cluster.api}"
        )
        out = tmp_path / folder
        assert (out / "stdout").read_text() == "edge data\n"
        assert (out / "exitCode").read_text().strip() == "0"
        assert (out / "outputs" / "copy.txt").read_text() == "edge data\n"
        status = screen.query_one("#results-status", Static)
        assert f"to {out}" in text_of(status)
        await until(pilot, lambda: table.cells(execution["ID"])[4].text != "", "the size")  # type: ignore[index]

        (out / "stdout").write_text("stale\n")
        finished = await download(overwrite=True)
        assert finished.entry.ok and finished.entry.command.endswith(
            f"--output-dir {folder} --force --api {cluster.api}"
        )
        assert (out / "stdout").read_text() == "edge data\n"
