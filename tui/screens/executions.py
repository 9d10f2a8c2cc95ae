"""Screen 4: executions across jobs (active jobs and the most recently changed ones)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from textual import on
from textual.binding import Binding, BindingType
from textual.widgets import DataTable

from edge.cli.output import display_id
from edge.models import Execution

from ..client import Needs
from ..filters import Field
from ..views import (
    EXECUTION_COLUMNS,
    EXECUTION_FIELDS,
    SortSpec,
    execution_haystack,
    execution_row,
    node_name,
)
from ..widgets.cells import Cell
from .base import TableScreen

# The API lists executions per job; this many recently modified jobs (plus every active one)
# are covered, so the screen stays cheap on an orchestrator with a long history.
RECENT_JOBS = 200


class ExecutionsScreen(TableScreen[Execution]):
    TITLE_TEXT = "Executions"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open", "Job detail", id="executions.open"),
        Binding("l", "logs", "Logs", id="executions.logs"),
    ]
    COLUMNS = EXECUTION_COLUMNS
    FIELDS: ClassVar[Mapping[str, Field[Execution]]] = EXECUTION_FIELDS
    DEFAULT_SORT = SortSpec("modified")
    NOUN = "executions"
    TABLE_ID = "executions-table"

    def haystack(self, item: Execution) -> str:
        return execution_haystack(item)

    def items(self) -> Mapping[str, Execution]:
        return {e.ID: e for e in self.bapp.data.all_executions() if e.ID}

    def row(self, key: str, item: Execution) -> tuple[Cell, ...]:
        data = self.bapp.data
        node = data.nodes.get(item.NodeID)
        node_label = (node_name(node) if node is not None else "") or display_id(item.NodeID)
        return execution_row(item, data.job_name(item.JobID), node_label, self.now_ns())

    def status_extra(self) -> str:
        return f"active jobs and the {RECENT_JOBS} most recently changed"

    def needs(self) -> Needs:
        return Needs(recent_executions=RECENT_JOBS)

    def selected(self) -> Execution | None:
        key = self.table.selected_key
        return self.items().get(key) if key else None

    @on(DataTable.RowHighlighted)
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        execution = self.selected()
        if execution is not None:
            self.bapp.selected_job = execution.JobID
            self.bapp.selected_execution = execution.ID

    @on(DataTable.RowSelected)
    def _selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open()

    def action_open(self) -> None:
        execution = self.selected()
        if execution is not None:
            self.bapp.open_job(execution.JobID)

    def action_logs(self) -> None:
        execution = self.selected()
        if execution is not None:
            self.bapp.open_logs(execution.JobID, execution.ID)
