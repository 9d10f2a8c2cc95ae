"""Screen 5: the fleet, with each node's capacity and GPUs; approve, reject, delete, cordon,
uncordon and drain the node under the cursor."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from textual import on
from textual.binding import Binding, BindingType
from textual.widgets import DataTable

from edge.models import NodeState

from ..filters import Field
from ..views import NODE_COLUMNS, NODE_FIELDS, SortSpec, node_haystack, node_row
from ..widgets.cells import Cell
from .base import TableScreen
from .node_actions import NodeActions


class NodesScreen(NodeActions, TableScreen[NodeState]):
    TITLE_TEXT = "Nodes"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open", "Detail", id="nodes.open"),
        Binding("a", "approve_node", "Approve", id="nodes.approve"),
        Binding("r", "reject_node", "Reject", id="nodes.reject"),
        Binding("d", "delete_node", "Delete", id="nodes.delete"),
        Binding("C", "cordon_node", "Cordon", id="nodes.cordon"),
        Binding("U", "uncordon_node", "Uncordon", id="nodes.uncordon"),
        Binding("D", "drain_node", "Drain", id="nodes.drain"),
    ]
    COLUMNS = NODE_COLUMNS
    FIELDS: ClassVar[Mapping[str, Field[NodeState]]] = NODE_FIELDS
    DEFAULT_SORT = SortSpec("name")
    NOUN = "nodes"
    TABLE_ID = "nodes-table"

    def haystack(self, item: NodeState) -> str:
        return node_haystack(item)

    def items(self) -> Mapping[str, NodeState]:
        return self.bapp.data.nodes

    def row(self, key: str, item: NodeState) -> tuple[Cell, ...]:
        return node_row(item)

    def status_extra(self) -> str:
        pending = sum(1 for n in self.items().values() if n.Membership.value == "PENDING")
        return f"{pending} waiting for approval" if pending else "Enter detail · a approve"

    def status_warning(self) -> str:
        data = self.bapp.data
        if not data.nodes_unreadable:
            return ""
        server = f" from {data.version}" if data.version else ""
        return (
            f"{data.nodes_unreadable} nodes not shown: their shape{server} is not one "
            "this TUI can read"
        )

    def selected(self) -> NodeState | None:
        key = self.table.selected_key
        return self.bapp.data.nodes.get(key) if key else None

    @on(DataTable.RowSelected)
    def _selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open()

    @on(DataTable.RowHighlighted)
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value is not None:
            self.bapp.selected_node = str(event.row_key.value)

    def action_open(self) -> None:
        node = self.selected()
        if node is not None:
            self.bapp.open_node(node.Info.NodeID)

    def target_node(self) -> NodeState | None:
        return self.selected()
