"""A node in full: identity, connection, scheduling (cordon, drain), capacity, each GPU, and
its executions; the node actions of the nodes screen."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import DataTable, Static

from edge.cli.output import describe_node, display_id
from edge.models import NodeState, format_bytes

from ..client import Needs
from ..views import EXECUTION_COLUMNS, SortSpec, execution_row, node_gpus, sort_keys
from ..widgets.cells import Cell
from ..widgets.table import Column, KeyedTable
from .base import BaseScreen
from .executions import RECENT_JOBS
from .node_actions import NodeActions

GPU_COLUMNS = [
    Column("index", "#"),
    Column("model", "MODEL"),
    Column("memory", "MEMORY"),
    Column("used", "USED"),
    Column("util", "UTIL"),
    Column("pci", "PCI"),
]


class NodeDetailScreen(NodeActions, BaseScreen):
    TITLE_TEXT = "Node"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="node.back"),
        Binding("a", "approve_node", "Approve", id="node.approve"),
        Binding("r", "reject_node", "Reject", id="node.reject"),
        Binding("d", "delete_node", "Delete", id="node.delete"),
        Binding("C", "cordon_node", "Cordon", id="node.cordon"),
        Binding("U", "uncordon_node", "Uncordon", id="node.uncordon"),
        Binding("D", "drain_node", "Drain", id="node.drain"),
    ]

    def __init__(self, node_id: str) -> None:
        super().__init__()
        self.node_id = node_id

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="node-top"):
            with VerticalScroll(id="node-info-scroll"):
                yield Static(id="node-info")
            yield KeyedTable(GPU_COLUMNS, id="node-gpus")
        yield Static(" Executions on this node", classes="section-title")
        yield KeyedTable(EXECUTION_COLUMNS, id="node-executions")

    def needs(self) -> Needs:
        return Needs(recent_executions=RECENT_JOBS)

    def refresh_data(self) -> None:
        if not self.is_mounted:
            return
        data = self.bapp.data
        node = data.nodes.get(self.node_id)
        self.bapp.title_suffix = {**self.bapp.title_suffix, "Node": display_id(self.node_id)}
        info = self.query_one("#node-info", Static)
        if node is None:
            info.update(Text(f"node {self.node_id} is not in the last answer", "yellow"))
            return
        info.update(Text(describe_node(node, colour=False)))
        rows = {  # used and utilization only where measured: Bacalhau does not
            str(g.Index): (
                Cell(str(g.Index), "", g.Index),
                Cell(g.Name),
                Cell(format_bytes(g.memory_bytes) if g.Memory else "", "", g.Memory),
                Cell(_text(g.memory_used_bytes, format_bytes), "", _sort(g.MemoryUsed)),
                Cell(_text(g.Utilization, "{}%".format), "", _sort(g.Utilization)),
                Cell(g.PCIAddress),
            )
            for g in node_gpus(node)
        }
        table = self.query_one("#node-gpus", KeyedTable)
        table.display = bool(rows)
        table.apply(rows, list(rows))
        now = self.now_ns()
        executions = {
            e.ID: execution_row(e, data.job_name(e.JobID), display_id(e.NodeID), now)
            for e in data.all_executions()
            if e.NodeID == self.node_id and e.ID
        }
        order = sort_keys(executions, EXECUTION_COLUMNS, SortSpec("modified"))
        self.query_one("#node-executions", KeyedTable).apply(executions, order)

    @on(DataTable.RowSelected, "#node-executions")
    def _open_execution(self, event: DataTable.RowSelected) -> None:
        event.stop()
        key = str(event.row_key.value or "")
        for execution in self.bapp.data.all_executions():
            if execution.ID == key:
                self.bapp.open_job(execution.JobID)
                return

    def action_back(self) -> None:
        self.dismiss()

    def target_node(self) -> NodeState | None:
        return self.bapp.data.nodes.get(self.node_id)


def _text(value: int | None, show: Callable[[int], str]) -> str:
    return "" if value is None else show(value)


def _sort(value: int | None) -> int:
    return -1 if value is None else value
