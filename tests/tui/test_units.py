"""The TUI's parts on their own: filters, keyed diffs, the fetcher, overview figures, logs."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from textual.app import App, ComposeResult

from edge.client import LOG_STDERR, LOG_STDOUT, ApiError, ApiUnreachable
from edge.models import Job, JobState, JobStateType, NodeState
from edge.models.compat import Server, server_from_version
from tui.client import BULK_PAGE, DELTA_OVERLAP_NS, Fetcher, Needs, PollResult
from tui.data import ClusterData
from tui.filters import FilterError, parse_filter
from tui.views import (
    JOB_COLUMNS,
    JOB_FIELDS,
    SortSpec,
    age_expiry,
    gpu_summary,
    job_haystack,
    job_row,
    node_row,
    overview,
    sort_keys,
)
from tui.widgets import Cell, Column, KeyedTable, LogView

from .fake_api import (
    BACALHAU_EXECUTION_STATES,
    BACALHAU_JOB_ID,
    NOW_NS,
    PEER_ID,
    SECOND,
    BacalhauApi,
    FakeApi,
    _job,
    bacalhau_version,
)

ROOT = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------- filters


def _jobs() -> list[Job]:
    return FakeApi().jobs


def _match(text: str) -> list[str]:
    f = parse_filter(text, JOB_FIELDS, job_haystack)
    return [j.Name for j in _jobs() if f.matches(j)]


def test_filter_language() -> None:
    assert _match("state:failed") == ["nightly-compact"]
    assert _match("state:run,queue") == [
        "thermal-camera-infer",
        "log-shipper",
        "calibrate-sensors",
    ]
    assert _match("type:daemon") == ["log-shipper"]
    assert _match("label:site=plant-b") == ["log-shipper"]
    assert _match("label:site=plant-a,plant-b type:service") == ["thermal-camera-infer"]
    assert _match("label:team") == ["thermal-camera-infer"]
    assert _match("-state:completed -state:running engine:wasm") == [
        "nightly-compact",
        "calibrate-sensors",
    ]
    assert _match('"camera infer"') == []
    assert _match("camera infer") == ["thermal-camera-infer"]
    assert _match("[bracketed]") == ["[bracketed] name"]
    assert _match("") == [j.Name for j in _jobs()]
    with pytest.raises(FilterError, match="unknown filter 'colour'"):
        _match("colour:red")
    with pytest.raises(FilterError, match="needs a value"):
        _match("state:")
    with pytest.raises(FilterError, match="cannot read"):
        _match('"unclosed')


def test_sorting_is_stable_and_by_any_column() -> None:
    rows = {j.ID: job_row(j, None, NOW_NS) for j in _jobs()}
    by_age = sort_keys(rows, JOB_COLUMNS, SortSpec("age"))
    created = [next(j for j in _jobs() if j.ID == k).CreateTime for k in by_age]
    assert created == sorted(created, reverse=True), "newest first"
    by_state = sort_keys(rows, JOB_COLUMNS, SortSpec("state"))
    assert rows[by_state[0]][3].text == "Failed", "failures first"
    names = [rows[k][1].text for k in sort_keys(rows, JOB_COLUMNS, SortSpec("name", True))]
    assert names == sorted(names, key=str.lower, reverse=True)


def test_age_expiry_tracks_when_the_text_changes() -> None:
    start = NOW_NS - 125 * SECOND  # "2m ago" until 180 s
    assert age_expiry(start, NOW_NS) == start + 180 * SECOND
    assert age_expiry(NOW_NS - 5 * SECOND, NOW_NS) == NOW_NS + SECOND
    assert age_expiry(0, NOW_NS) > NOW_NS * 2


# --------------------------------------------------------------------------- overview


def test_overview_figures_and_needs_attention() -> None:
    api = FakeApi()
    executions = [e for items in api.executions.values() for e in items]
    stats = overview(api.jobs, api.nodes, executions, NOW_NS)
    assert (stats.nodes_total, stats.nodes_connected, stats.nodes_pending) == (4, 3, 1)
    assert stats.gpus == {"NVIDIA H100 80GB HBM3": (1, 2)}, "allocated and total by model"
    assert stats.cpu == (7.0, 16.0), "approved, connected nodes only"
    assert stats.jobs_by_state["Running"] == 2 and stats.jobs_total == 8
    assert sum(stats.completions) == 2 and len(stats.completions) == 30
    kinds = {(a.kind, a.why.split(":")[0]) for a in stats.attention}
    assert ("node", "waiting for approval") in kinds
    assert ("node", "no heartbeat for 45s") in kinds
    assert ("job", "queued for 15m") in kinds
    assert any(a.kind == "execution" and a.why == "exit code 3" for a in stats.attention)
    assert stats.attention[0].severity == "error", "errors first"


# --------------------------------------------------------------------------- fetcher


async def test_full_sync_pages_then_incremental_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tui.client.FIRST_PAGE", 3)
    monkeypatch.setattr("tui.client.BULK_PAGE", 2)
    api = FakeApi()
    fetcher = Fetcher(api)
    data = ClusterData()
    pages = 0
    while True:
        result = await fetcher.poll(Needs(), data.jobs, data.executions_marks, NOW_NS)
        fetcher.commit(result)
        data.apply(result)
        pages += 1
        if not fetcher.syncing:
            break
    assert pages == 4 and len(data.jobs) == 8 and data.jobs_complete
    assert data.nodes and fetcher.watermark == max(j.ModifyTime for j in api.jobs)

    # Nothing changed: the delta reads one short page and changes nothing.
    result = await fetcher.poll(Needs(), data.jobs, data.executions_marks, NOW_NS)
    fetcher.commit(result)
    data.apply(result)
    assert not data.changed_jobs and result.incremental is True

    # A job changes on the server: the next poll brings it, and only it is marked changed.
    job = api.jobs[3]
    api.jobs[3] = job.model_copy(
        update={"State": JobState(StateType=JobStateType.RUNNING), "ModifyTime": NOW_NS}
    )
    result = await fetcher.poll(Needs(), data.jobs, data.executions_marks, NOW_NS)
    fetcher.commit(result)
    data.apply(result)
    assert data.changed_jobs == {job.ID}
    assert data.jobs[job.ID].State.StateType == JobStateType.RUNNING
    assert all(j.ModifyTime >= fetcher.watermark - DELTA_OVERLAP_NS for j in result.jobs)


async def test_servers_without_modified_ordering_get_full_lists() -> None:
    class OldServer(FakeApi):
        async def list_jobs(self, *args: Any, **kwargs: Any) -> tuple[list[Job], str | None]:
            if kwargs.get("order_by"):
                raise ApiError(400, "cannot order jobs by 'modified_at'")
            return await super().list_jobs(*args, **kwargs)

    fetcher = Fetcher(OldServer())
    data = ClusterData()
    for _ in range(2):
        result = await fetcher.poll(Needs(), data.jobs, data.executions_marks, NOW_NS)
        fetcher.commit(result)
        data.apply(result)
    assert fetcher.incremental is False and len(data.jobs) == 8
    assert BULK_PAGE >= 8


async def test_executions_are_fetched_for_what_is_shown_and_cached() -> None:
    api = FakeApi()
    fetcher = Fetcher(api)
    data = ClusterData()
    result = await fetcher.poll(Needs(), data.jobs, data.executions_marks, NOW_NS)
    fetcher.commit(result)
    data.apply(result)
    assert data.executions == {}
    done = api.jobs[1].ID  # completed long ago: fetched once, then cached
    active = api.jobs[0].ID  # running: fetched on every poll
    calls: list[str] = []
    original = api.job_executions

    async def counting(job_id: str) -> list[Any]:
        calls.append(job_id)
        return await original(job_id)

    api.job_executions = counting  # type: ignore[method-assign]
    for _ in range(3):
        result = await fetcher.poll(
            Needs(executions_for=(done, active)), data.jobs, data.executions_marks, NOW_NS
        )
        fetcher.commit(result)
        data.apply(result)
    assert calls.count(done) == 1 and calls.count(active) == 3
    assert len(data.executions[active]) == 1


# --------------------------------------------------------------------------- Bacalhau servers


def test_server_version_in_every_shape() -> None:
    bacalhau = server_from_version(bacalhau_version("v1.5.1"))
    assert bacalhau == Server("Bacalhau", "v1.5.1", (1, 5, 1))
    assert bacalhau.legacy_execution_states and bacalhau.label == "Bacalhau v1.5.1"
    lower = server_from_version({"major": "1", "minor": "7", "gitversion": "v1.7.0-rc2"})
    assert lower.release == (1, 7, 0) and not lower.legacy_execution_states
    wrapped = {"BuildVersionInfo": {"GitVersion": "v0.1.0", "Product": "bacedge"}}
    for answer in (wrapped, wrapped["BuildVersionInfo"]):  # bacedge's old and flat answers
        ours = server_from_version(answer)
        assert ours.product == "bacedge" and ours.label == "v0.1.0"
        assert not ours.legacy_execution_states
    assert server_from_version({"Version": {"Major": "1", "Minor": "4"}}).release == (1, 4, 0)
    assert server_from_version({}) == Server()
    assert not Server().legacy_execution_states


@pytest.mark.parametrize("version", ["v1.5.1", "v1.4.2", "v1.7.0"])
async def test_execution_states_mean_what_the_server_meant(version: str) -> None:
    """Bacalhau up to 1.5 sent 7 for Completed, which is Publishing today: read by version."""
    api = BacalhauApi(version)
    fetcher = Fetcher(api)
    data = ClusterData()
    for _ in range(2):
        needs = Needs(executions_for=(BACALHAU_JOB_ID,), job=BACALHAU_JOB_ID)
        result = await fetcher.poll(needs, data.jobs, data.executions_marks, NOW_NS)
        fetcher.commit(result)
        data.apply(result)
    expected = list(BACALHAU_EXECUTION_STATES)
    if version == "v1.7.0":
        expected[-1] = "Running"
    assert [e.state.label for e in data.executions[BACALHAU_JOB_ID]] == expected
    assert data.detail is not None
    assert [e.state.label for e in data.detail.executions] == expected
    assert [h.state_text for h in data.detail.history] == [f"New → {s}" for s in expected]
    assert data.version == f"Bacalhau {version}"


async def test_executions_wait_for_the_server_version() -> None:
    """Without the version, an execution state cannot be read: none is shown until it is."""

    class Flaky(BacalhauApi):
        failures = 1

        async def agent_version(self) -> dict[str, Any]:
            if self.failures:
                self.failures -= 1
                raise ApiUnreachable(self.base_url, "connection reset")
            return await super().agent_version()

    fetcher = Fetcher(Flaky("v1.5.1"))
    data = ClusterData()
    needs = Needs(executions_for=(BACALHAU_JOB_ID,), job=BACALHAU_JOB_ID)
    result = await fetcher.poll(needs, data.jobs, data.executions_marks, NOW_NS)
    fetcher.commit(result)
    data.apply(result)
    assert data.jobs and data.nodes and not data.executions and data.detail is None
    result = await fetcher.poll(needs, data.jobs, data.executions_marks, NOW_NS)
    fetcher.commit(result)
    data.apply(result)
    assert [e.state.label for e in data.executions[BACALHAU_JOB_ID]][:2] == [
        "Completed",
        "Failed",
    ]


def test_bacalhau_gpu_memory_is_read_as_mib_and_unmeasured_use_is_not_shown() -> None:
    t4_node = next(n for n in BacalhauApi("v1.5.1").nodes if n.Info.NodeID == PEER_ID)
    assert gpu_summary(t4_node) == "Tesla T4 15.0 GiB"  # Memory: 15360 (MiB), no "0%"
    cells = [c.text for c in node_row(t4_node)]
    assert cells[0] == "QmXaXu9N"  # the 46-character peer ID, shortened as Bacalhau does
    assert "Tesla T4 15.0 GiB" in cells and "0 B" not in " ".join(cells)
    ours = FakeApi().nodes[0]  # bacedge measures use: shown per GPU
    assert gpu_summary(ours) == "2x H100 80GB HBM3 80.0 GiB 35% 75%"


def test_unreadable_nodes_are_counted_not_dropped_silently() -> None:
    api = FakeApi()
    data = ClusterData()
    result = PollResult(nodes=[*api.nodes, NodeState.model_validate({"Peers": ["x"]})])
    data.apply(result)
    assert len(data.nodes) == 4 and data.nodes_unreadable == 1


# --------------------------------------------------------------------------- keyed table


class TableApp(App[None]):
    def compose(self) -> ComposeResult:
        yield KeyedTable([Column("id", "ID"), Column("n", "N")], id="t")


def _rows(values: dict[str, int]) -> dict[str, tuple[Cell, ...]]:
    return {k: (Cell(k), Cell(str(v), "", v)) for k, v in values.items()}


async def test_keyed_table_patches_rows_and_keeps_the_cursor() -> None:
    app = TableApp()
    async with app.run_test(size=(40, 10)) as pilot:
        table = app.query_one(KeyedTable)
        first = _rows({f"k{i:02d}": i for i in range(20)})
        diff = table.apply(first, list(first))
        assert diff.added == 20 and table.row_count == 20
        await pilot.pause()
        table.move_cursor(row=7)
        await pilot.pause()
        assert table.selected_key == "k07"

        changed = dict(first)
        changed["k03"] = (Cell("k03"), Cell("300", "", 300))  # one cell changes
        changed["new"] = (Cell("new"), Cell("-1", "", -1))  # one row arrives on top
        del changed["k15"]  # one row goes
        order = ["new", *[k for k in first if k != "k15"]]
        diff = table.apply(changed, order)
        assert (diff.added, diff.removed, diff.updated, diff.rebuilt) == (1, 1, 1, False)
        assert diff.reordered and table.keys == order
        assert table.selected_key == "k07" and table.cursor_row == 8
        assert table.get_row("k03")[1].text == "300"

        again = table.apply(changed, order)
        assert not again.changed, "the same rows again change nothing"

        many = _rows({f"x{i}": i for i in range(600)})
        assert not table.apply(many, list(many)).rebuilt, "20 rows removed: patched"
        few = _rows({f"x{i}": i for i in range(10)})
        rebuilt = table.apply(few, list(few))  # a narrow filter: one rebuild beats 590 removals
        assert rebuilt.rebuilt and table.keys == list(few)


# --------------------------------------------------------------------------- log view


class LogApp(App[None]):
    def compose(self) -> ComposeResult:
        yield LogView(max_lines=20_000, id="log")


async def test_log_view_stays_capped_and_usable_at_100k_lines(tmp_path: Path) -> None:
    app = LogApp()
    async with app.run_test(size=(80, 20)) as pilot:
        view = app.query_one(LogView)
        for start in range(0, 100_000, 1000):
            view.append(
                (LOG_STDERR if i % 1000 == 999 else LOG_STDOUT, f"line {i}\n")
                for i in range(start, start + 1000)
            )
        await pilot.pause()
        assert view.total <= 20_000 and view.dropped >= 80_000
        assert list(view.lines())[-1] == (LOG_STDERR, "line 99999")
        assert view.is_vertical_scroll_end, "following the end"

        view.set_filter(re.compile(r"line 9999\d"))
        await pilot.pause()
        assert [t for _, t in view.lines()] == [f"line {i}" for i in range(99990, 100000)]
        view.set_filter(None, streams=[LOG_STDERR])
        assert view.shown == view.total // 1000 or view.shown >= 19
        view.set_filter(None, streams=[LOG_STDOUT, LOG_STDERR])

        view.follow = False
        view.scroll_home(animate=False, force=True)
        await pilot.pause()
        assert view.next_error()
        assert view.marked_text() is not None and view.marked_text().endswith("999")  # type: ignore[union-attr]
        first = view.mark
        assert view.next_error() and view.mark is not None and first is not None
        assert view.mark > first
        assert view.next_error(backwards=True) and view.mark == first

        # Appending more while scrolled up leaves the view where it is.
        y = view.scroll_y
        view.append([(LOG_STDOUT, "more\n")] * 100)
        await pilot.pause()
        assert view.scroll_y == y

        out = tmp_path / "log.txt"
        assert view.save(out) == view.total
        assert out.read_text().splitlines()[-1] == "more"


# --------------------------------------------------------------------------- dependency rule


def test_tui_never_imports_the_orchestrator_or_the_compute_agent() -> None:
    forbidden = ("edge.orchestrator", "edge.compute", "edge.runtime", "edge.transport")
    for path in sorted((ROOT / "tui").rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                assert not name.startswith(forbidden), f"{path.relative_to(ROOT)} imports {name}"
    # And at run time, nothing pulls them in indirectly.
    code = (
        "import sys, tui, tui.app, tui.commands, edge.cli.tui\n"
        f"bad = [m for m in sys.modules if m.startswith({forbidden!r})]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_wire_models_parse_the_fake_cluster() -> None:
    # The canned data is made of the real models; a row renders for every job.
    for job in _jobs():
        cells = job_row(job, (0, 1), NOW_NS)
        assert cells[0].sort == job.ID
    assert _job(99, "x", JobStateType.PENDING).Tasks[0].Engine.Type == "wasm"


def test_cells_show_control_characters_escaped_and_measure_what_is_shown() -> None:
    """A job or node name is anyone's text: its escape sequences are shown, never sent
    to the terminal (Rich and Textual pass ESC through), and the column fits them."""
    cell = Cell("job\x1b]0;title\x07\u202e")
    assert cell.text == "job\\x1b]0;title\\x07\\u202e"
    assert cell.width == len(cell.text)
    assert Cell("plain name").text == "plain name"
