"""SVG snapshots of the main screens at 80x24 and 160x48 (pytest-textual-snapshot).

The data is canned (tests/tui/fake_api.py) and the clock fixed, so every run draws the
same picture. After a deliberate change to the UI: `pytest tests/tui --snapshot-update`,
then look at the SVGs under __snapshots__/ before committing them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from textual.pilot import Pilot

from tui import BacedgeApp, ClusterTarget
from tui.screens import JobDetailScreen, NodeDetailScreen
from tui.widgets import KeyedTable, LogView

from .fake_api import NOW, BacalhauApi, FakeApi, published_results

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((160, 48), id="160x48")]
Snap = Callable[..., bool]


@pytest.fixture(autouse=True)
def utc() -> Iterator[None]:
    """Times in the history and summary are local; pin the zone so they render the same."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield
    if before is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = before
    time.tzset()


def make_app(start: str = "overview", api: FakeApi | None = None, **options: Any) -> BacedgeApp:
    return BacedgeApp(
        ClusterTarget("http://10.1.0.2:1234", profile="plant-a"),
        api=api or FakeApi(),
        clock=lambda: NOW,
        start=start,
        refresh_interval=3600,
        **options,
    )


async def _loaded(pilot: Pilot[Any]) -> None:
    app = pilot.app
    assert isinstance(app, BacedgeApp)
    while not app.data.loaded:
        await pilot.pause(0.02)
    app.poll_now()  # a second poll with the screen's needs (execution counts, details)
    while app._poll_worker is not None:
        await pilot.pause(0.02)
    await pilot.pause()


def then(
    *steps: Callable[[Pilot[Any]], Awaitable[None]],
) -> Callable[[Pilot[Any]], Awaitable[None]]:
    async def run(pilot: Pilot[Any]) -> None:
        await _loaded(pilot)
        for step in steps:
            await step(pilot)
            await _loaded(pilot)

    return run


def press(*keys: str) -> Callable[[Pilot[Any]], Awaitable[None]]:
    async def run(pilot: Pilot[Any]) -> None:
        await pilot.press(*keys)
        await pilot.pause()

    return run


def select(table_id: str, row: int) -> Callable[[Pilot[Any]], Awaitable[None]]:
    async def run(pilot: Pilot[Any]) -> None:
        table = pilot.app.screen.query_one(f"#{table_id}", KeyedTable)
        table.move_cursor(row=row)
        await pilot.pause()

    return run


async def _logs_loaded(pilot: Pilot[Any]) -> None:
    view = pilot.app.screen.query_one(LogView)
    while view.total < 7:
        await pilot.pause(0.02)


async def _node_detail(pilot: Pilot[Any]) -> None:
    while not isinstance(pilot.app.screen, NodeDetailScreen):
        await pilot.pause(0.02)


@pytest.mark.parametrize("size", SIZES)
def test_overview(snap_compare: Snap, size: tuple[int, int]) -> None:
    assert snap_compare(make_app("overview"), terminal_size=size, run_before=then())


@pytest.mark.parametrize("size", SIZES)
def test_jobs(snap_compare: Snap, size: tuple[int, int]) -> None:
    assert snap_compare(
        make_app("jobs"), terminal_size=size, run_before=then(select("jobs-table", 2))
    )


@pytest.mark.parametrize("size", SIZES)
def test_job_detail(snap_compare: Snap, size: tuple[int, int]) -> None:
    run = then(select("jobs-table", 4), press("enter"))
    assert snap_compare(make_app("jobs"), terminal_size=size, run_before=run)


def test_job_detail_executions_tab(snap_compare: Snap) -> None:
    run = then(
        select("jobs-table", 7),
        press("enter"),
        press("right_square_bracket", "right_square_bracket"),
    )
    assert snap_compare(make_app("jobs"), terminal_size=(160, 48), run_before=run)


def test_job_detail_results_tab(snap_compare: Snap) -> None:
    api = FakeApi()
    job = published_results(api)

    async def open_results(pilot: Pilot[Any]) -> None:
        app = pilot.app
        assert isinstance(app, BacedgeApp)
        app.open_job(job.ID)
        while not isinstance(app.screen, JobDetailScreen):
            await pilot.pause(0.02)

    run = then(open_results, press("left_square_bracket"))  # Results, the last tab
    assert snap_compare(make_app("jobs", api=api), terminal_size=(160, 30), run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_executions(snap_compare: Snap, size: tuple[int, int]) -> None:
    assert snap_compare(make_app("executions"), terminal_size=size, run_before=then())


@pytest.mark.parametrize("size", SIZES)
def test_nodes(snap_compare: Snap, size: tuple[int, int]) -> None:
    assert snap_compare(make_app("nodes"), terminal_size=size, run_before=then())


def test_node_detail_with_gpus(snap_compare: Snap) -> None:
    run = then(press("enter"), _node_detail)
    assert snap_compare(make_app("nodes"), terminal_size=(160, 48), run_before=run)


@pytest.mark.parametrize("size", SIZES)
def test_logs(snap_compare: Snap, size: tuple[int, int]) -> None:
    run = then(
        select("jobs-table", 6), press("l"), _logs_loaded, press("h"), press(*"error", "enter")
    )
    assert snap_compare(make_app("jobs"), terminal_size=size, run_before=run)


def test_help(snap_compare: Snap) -> None:
    assert snap_compare(
        make_app("jobs"), terminal_size=(80, 24), run_before=then(press("question_mark"))
    )


def test_confirm_stop(snap_compare: Snap) -> None:
    run = then(select("jobs-table", 6), press("x"))
    assert snap_compare(make_app("jobs"), terminal_size=(80, 24), run_before=run)


def test_read_only_jobs(snap_compare: Snap) -> None:
    app = make_app("jobs", read_only=True)
    assert snap_compare(app, terminal_size=(80, 24), run_before=then())


# Attached to Bacalhau: its peer-style node IDs, GPU memory in MiB and no measured use, and
# a v1.5.1 server's execution states in the old numbering.


@pytest.mark.parametrize("size", SIZES)
def test_bacalhau_nodes(snap_compare: Snap, size: tuple[int, int]) -> None:
    app = make_app("nodes", api=BacalhauApi("v1.7.0"))
    assert snap_compare(app, terminal_size=size, run_before=then())


def test_bacalhau_node_detail_t4(snap_compare: Snap) -> None:
    app = make_app("nodes", api=BacalhauApi("v1.7.0"))
    run = then(press("enter"), _node_detail)
    assert snap_compare(app, terminal_size=(160, 48), run_before=run)


def test_bacalhau_151_executions(snap_compare: Snap) -> None:
    app = make_app("executions", api=BacalhauApi("v1.5.1"))
    assert snap_compare(app, terminal_size=(160, 48), run_before=then())
