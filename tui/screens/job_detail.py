"""Screen 3: one job, in tabs: summary, spec (YAML), executions, history, logs."""

from __future__ import annotations

from typing import ClassVar

from rich.syntax import Syntax
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Static, TabbedContent, TabPane

from edge.cli.output import describe_job, display_id, dump
from edge.models import Job

from ..client import Needs
from ..views import (
    EXECUTION_COLUMNS,
    HISTORY_COLUMNS,
    SortSpec,
    execution_row,
    history_key,
    history_row,
    node_name,
    sort_keys,
    state_style,
)
from ..widgets import LogPane
from ..widgets.table import KeyedTable
from .base import BaseScreen

TABS = ["summary", "spec", "executions", "history", "logs"]


class JobDetailScreen(BaseScreen):
    TITLE_TEXT = "Job"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="job.back"),
        Binding("x", "stop_job", "Stop", id="job.stop"),
        Binding("R", "rerun_job", "Rerun", id="job.rerun"),
        Binding("l", "tab('logs')", "Logs", id="job.logs"),
        Binding("right_square_bracket", "next_tab(1)", "Next tab", id="job.next_tab"),
        Binding("left_square_bracket", "next_tab(-1)", "Prev tab", show=False, id="job.prev_tab"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.job_id: str | None = None
        self._spec_shown: tuple[str, int] | None = None

    def compose_body(self) -> ComposeResult:
        yield Static(id="job-title")
        with TabbedContent(id="job-tabs", initial="summary"):
            with TabPane("Summary", id="summary"), VerticalScroll():
                yield Static(id="job-summary")
            with TabPane("Spec", id="spec"), VerticalScroll():
                yield Static(id="job-spec")
            with TabPane("Executions", id="executions"):
                yield KeyedTable(EXECUTION_COLUMNS, id="job-executions")
            with TabPane("History", id="history"):
                yield KeyedTable(HISTORY_COLUMNS, id="job-history")
            with TabPane("Logs", id="logs"):
                yield LogPane(self.bapp.log_lines, id="job-logs")

    def show(self, job_id: str) -> None:
        """Point the screen at a job (the app then polls its detail at once)."""
        if job_id != self.job_id:
            self.job_id = job_id
            self._spec_shown = None
            if self.is_mounted:
                self.query_one("#job-logs", LogPane).close()
                self.bapp.redraw(self)

    def needs(self) -> Needs:
        return Needs(job=self.job_id) if self.job_id else Needs()

    @property
    def tabs(self) -> TabbedContent:
        return self.query_one("#job-tabs", TabbedContent)

    def refresh_data(self) -> None:
        if not self.is_mounted:
            return
        data = self.bapp.data
        title = self.query_one("#job-title", Static)
        if self.job_id is None:
            title.update(Text(" No job selected: press 2 for jobs, then Enter on one.", "yellow"))
            return
        detail = data.detail
        job: Job | None = None
        if detail is not None and self.job_id in (detail.job.ID, detail.job.Name):
            job = detail.job
        if job is None:
            job = data.jobs.get(self.job_id)
        if job is None:
            message = data.detail_error or "loading…"
            title.update(Text(f" {self.job_id}: {message}", "yellow"))
            return
        self.bapp.title_suffix = {**self.bapp.title_suffix, "Job": display_id(job.ID)}
        state = job.State.StateType.value
        head = Text(" ")
        head.append(job.Name or job.ID, "bold")
        head.append(f"  {job.ID}  ", "dim")
        head.append(state, state_style(state))
        if job.State.Message:
            head.append(f"  {job.State.Message}")
        title.update(head)
        executions = detail.executions if detail is not None and detail.job.ID == job.ID else []
        history = detail.history if detail is not None and detail.job.ID == job.ID else []
        now = self.now_ns()
        self.query_one("#job-summary", Static).update(
            Text(describe_job(job, None, executions, colour=False, now_ns=now))
        )
        spec_key = (job.ID, job.Version)
        if self._spec_shown != spec_key:
            spec = dump(job, "yaml")
            self.query_one("#job-spec", Static).update(
                Syntax(spec, "yaml", theme="ansi_dark", word_wrap=False, background_color="default")
            )
            self._spec_shown = spec_key
        rows = {
            e.ID: execution_row(e, job.Name or display_id(job.ID), self._node(e.NodeID), now)
            for e in executions
            if e.ID
        }
        self.query_one("#job-executions", KeyedTable).apply(
            rows, sort_keys(rows, EXECUTION_COLUMNS, SortSpec("age", reverse=True))
        )
        items = {history_key(i, h): history_row(h) for i, h in enumerate(history)}
        self.query_one("#job-history", KeyedTable).apply(items, list(items))
        if self.tabs.active == "logs":
            self.query_one("#job-logs", LogPane).open(job.ID)

    def _node(self, node_id: str) -> str:
        node = self.bapp.data.nodes.get(node_id)
        return (node_name(node) if node is not None else "") or display_id(node_id)

    @on(TabbedContent.TabActivated)
    def _tab_changed(self, event: TabbedContent.TabActivated) -> None:
        pane = self.query_one("#job-logs", LogPane)
        if event.pane.id == "logs" and self.job_id:
            job = self.bapp.data.jobs.get(self.job_id)
            pane.open(job.ID if job is not None else self.job_id)
            pane.view.focus()
        else:
            pane.close()
            pane.job_id = None

    @on(DataTable.RowHighlighted, "#job-executions")
    def _execution_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value:
            self.bapp.selected_execution = str(event.row_key.value)

    @on(DataTable.RowSelected, "#job-executions")
    def _execution_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if self.job_id and event.row_key.value:
            self.bapp.open_logs(self.job_id, str(event.row_key.value))

    def action_tab(self, tab: str) -> None:
        self.tabs.active = tab

    def action_next_tab(self, step: int) -> None:
        current = TABS.index(self.tabs.active) if self.tabs.active in TABS else 0
        self.tabs.active = TABS[(current + step) % len(TABS)]

    def action_back(self) -> None:
        self.bapp.go_back()

    def _job(self) -> Job | None:
        return self.bapp.data.jobs.get(self.job_id or "")

    def action_stop_job(self) -> None:
        job = self._job()
        if job is not None:
            self.bapp.confirm_stop(job)

    def action_rerun_job(self) -> None:
        job = self._job()
        if job is not None:
            self.bapp.confirm_rerun(job)
