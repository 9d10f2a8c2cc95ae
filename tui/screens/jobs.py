"""Screen 2: every job, filterable and sortable, with stop and rerun."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from textual import on
from textual.binding import Binding, BindingType
from textual.widgets import DataTable

from edge.models import Execution, Job

from ..client import Needs
from ..filters import Field
from ..views import (
    JOB_COLUMNS,
    JOB_FIELDS,
    SortSpec,
    age_expiry,
    execution_counts,
    job_haystack,
    job_row,
)
from ..widgets.cells import Cell
from .base import TableScreen


class JobsScreen(TableScreen[Job]):
    TITLE_TEXT = "Jobs"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open", "Detail", id="jobs.open"),
        Binding("l", "logs", "Logs", id="jobs.logs"),
        Binding("x", "stop_job", "Stop", id="jobs.stop"),
        Binding("R", "rerun_job", "Rerun", id="jobs.rerun"),
    ]
    COLUMNS = JOB_COLUMNS
    FIELDS: ClassVar[Mapping[str, Field[Job]]] = JOB_FIELDS
    DEFAULT_SORT = SortSpec("age")
    NOUN = "jobs"
    TABLE_ID = "jobs-table"

    def __init__(self) -> None:
        super().__init__()
        # A row is rebuilt only when its job, its executions or its age text changed:
        # (job, executions, age text expiry, cells), by job ID.
        self._rows: dict[str, tuple[Job, object, int, tuple[Cell, ...]]] = {}
        self._now = 0
        self._executions: Mapping[str, list[Execution]] = {}

    def haystack(self, item: Job) -> str:
        return job_haystack(item)

    def items(self) -> Mapping[str, Job]:
        return self.bapp.data.jobs

    def row(self, key: str, item: Job) -> tuple[Cell, ...]:
        executions = self._executions.get(key)
        cached = self._rows.get(key)
        now = self._now
        if cached is not None and cached[0] is item and cached[1] is executions and now < cached[2]:
            return cached[3]
        cells = job_row(item, execution_counts(executions), now)
        self._rows[key] = (item, executions, age_expiry(item.CreateTime, now), cells)
        return cells

    def refresh_data(self) -> None:
        if not self.is_mounted:
            return
        data = self.bapp.data
        self._now = self.now_ns()
        self._executions = data.executions
        if len(self._rows) > len(data.jobs) * 2 + 100:
            self._rows = {k: v for k, v in self._rows.items() if k in data.jobs}
        super().refresh_data()

    def status_extra(self) -> str:
        if not self.bapp.data.jobs_complete and self.bapp.data.loaded:
            return "loading more jobs…"
        return "Enter detail · l logs · / filter · s sort"

    def needs(self) -> Needs:
        if not self.is_mounted:
            return Needs()
        return Needs(executions_for=tuple(self.table.visible_keys()))

    def selected(self) -> Job | None:
        key = self.table.selected_key
        return self.bapp.data.jobs.get(key) if key else None

    @on(DataTable.RowHighlighted)
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value:
            self.bapp.selected_job = str(event.row_key.value)

    @on(DataTable.RowSelected)
    def _selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if event.row_key.value:
            self.bapp.open_job(str(event.row_key.value))

    def action_open(self) -> None:
        job = self.selected()
        if job is not None:
            self.bapp.open_job(job.ID)

    def action_logs(self) -> None:
        job = self.selected()
        if job is not None:
            self.bapp.open_logs(job.ID)

    def action_stop_job(self) -> None:
        job = self.selected()
        if job is not None:
            self.bapp.confirm_stop(job)

    def action_rerun_job(self) -> None:
        job = self.selected()
        if job is not None:
            self.bapp.confirm_rerun(job)
