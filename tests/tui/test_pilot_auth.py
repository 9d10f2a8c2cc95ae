"""The TUI against a real orchestrator with API users: it offers only what the key allows."""

from __future__ import annotations

from typing import Any

import httpx
from textual.message import Message
from textual.widgets import Static

from tests.integration.cluster import Cluster, wait_until
from tui import BacedgeApp, ClusterTarget
from tui.commands import BacedgeCommands
from tui.messages import ActionStarted
from tui.screens import ConfirmScreen, JobsScreen, NodesScreen
from tui.widgets import KeyedTable

from .conftest import text_of, unique, until

JOBS = "/api/v1/orchestrator/jobs"
TOKEN = "tui-admin-token"
VIEWER = "viewer-0123456789abcdef"
JOBBER = "jobber-0123456789abcdef"
JOB_ACTIONS = {"stop_job", "rerun_job", "submit_job"}
NODE_ACTIONS = {"approve_node", "reject_node", "delete_node", "cordon_node", "drain_node"}


def _start(cluster: Cluster) -> None:
    config = cluster.root / "auth.toml"
    config.write_text(
        f'[[api.auth.users]]\nalias = "viewer"\napi_key = "{VIEWER}"\n'
        'capabilities = [{ actions = ["read:*"] }]\n\n'
        f'[[api.auth.users]]\nalias = "jobber"\napi_key = "{JOBBER}"\n'
        'capabilities = [{ actions = ["read:*", "write:job"] }]\n'
    )
    cluster.orchestrator(
        True, "--engines", "noop", "--config", str(config), BACEDGE_API_AUTH_TOKEN=TOKEN
    )


def _admin(cluster: Cluster, method: str, path: str, **kw: Any) -> Any:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    response = httpx.request(method, f"{cluster.api}{path}", headers=headers, timeout=10, **kw)
    assert response.status_code == 200, response.text
    return response.json()


def _actions(app: BacedgeApp) -> set[str]:
    return {b.binding.action for b in app.screen.active_bindings.values()}


def _commands(app: BacedgeApp) -> list[str]:
    return [name for name, _, _ in BacedgeCommands(app.screen)._commands()]


async def test_a_read_only_key_hides_every_write_action(own_cluster: Cluster) -> None:
    cluster = own_cluster
    _start(cluster)
    job = {
        "Name": unique("auth"),
        "Tasks": [{"Engine": {"Type": "noop", "Params": {"SleepSeconds": 600}}}],
    }
    job_id = _admin(cluster, "PUT", JOBS, json={"Job": job})["JobID"]

    def state() -> tuple[str, int]:
        body = _admin(cluster, "GET", f"{JOBS}/{job_id}")["Job"]
        return body["State"]["StateType"], body["Version"]

    wait_until(lambda: state()[0] == "Running", 30, "the job to run")
    posted: list[Message] = []
    app = BacedgeApp(ClusterTarget(cluster.api, api_key=VIEWER), refresh_interval=0.3, start="jobs")
    async with app.run_test(size=(140, 40), message_hook=posted.append) as pilot:
        table = await until(
            pilot,
            lambda: (
                isinstance(app.screen, JobsScreen)
                and app.screen.query("#jobs-table").first(KeyedTable)
            ),
            "the jobs screen",
        )
        await until(pilot, lambda: table.cells(job_id) is not None, "the job, read with the key")
        assert app.allowed == {"read:job", "read:node", "read:agent"}
        table.select_key(job_id)
        await pilot.pause()
        assert not _actions(app) & JOB_ACTIONS, "no job action in the footer"
        await pilot.press("x", "R", "ctrl+n")
        await pilot.pause()
        assert isinstance(app.screen, JobsScreen), "no dialog opened"
        app.confirm_stop(app.data.jobs[job_id])  # a direct call is refused as well
        await pilot.pause()
        assert isinstance(app.screen, JobsScreen)
        assert not [c for c in _commands(app) if c.startswith(("Stop", "Rerun", "Submit"))]
        assert "READ-ONLY KEY" in text_of(app.screen.query_one("#header-right", Static))
        await pilot.press("5")
        await until(pilot, lambda: isinstance(app.screen, NodesScreen), "the nodes screen")
        await pilot.pause()
        assert not _actions(app) & NODE_ACTIONS, "no node action in the footer"
        assert not [c for c in _commands(app) if c.startswith(("Cordon", "Drain", "Approve"))]
        assert not any(isinstance(m, ActionStarted) for m in posted), "nothing was sent"
    assert state() == ("Running", 1), "the job was neither stopped nor rerun"

    # A key with write:job gets the job actions, and still no node action.
    app = BacedgeApp(ClusterTarget(cluster.api, api_key=JOBBER), refresh_interval=0.3, start="jobs")
    async with app.run_test(size=(140, 40)) as pilot:
        table = await until(
            pilot,
            lambda: (
                isinstance(app.screen, JobsScreen)
                and app.screen.query("#jobs-table").first(KeyedTable)
            ),
            "the jobs screen",
        )
        await until(pilot, lambda: table.cells(job_id) is not None, "the job")
        table.select_key(job_id)
        await pilot.pause()
        assert {"stop_job", "submit_job"} <= _actions(app)
        assert "READ-ONLY" not in text_of(app.screen.query_one("#header-right", Static))
        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the stop dialog")
        await pilot.press("escape")
        await pilot.press("5")
        await until(pilot, lambda: isinstance(app.screen, NodesScreen), "the nodes screen")
        await pilot.pause()
        assert not _actions(app) & NODE_ACTIONS
    assert state() == ("Running", 1)
    _admin(cluster, "DELETE", f"{JOBS}/{job_id}")
