"""What every main screen shares: header, banner, footer, data hooks, filterable tables."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar, cast

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Static

from ..client import Needs
from ..filters import Field, Filter, FilterError, parse_filter
from ..views import SortSpec, sort_keys
from ..widgets import ClusterHeader, ConnectionBanner
from ..widgets.cells import Cell
from ..widgets.table import Column, KeyedTable

if TYPE_CHECKING:
    from tui.app import BacedgeApp

T = TypeVar("T")

# Actions that change the cluster, with the capability each needs: hidden in --read-only
# and when the credentials lack that capability.
WRITE_ACTIONS: Mapping[str, str] = {
    "stop_job": "write:job",
    "rerun_job": "write:job",
    "submit_job": "write:job",
    "approve_node": "write:node",
    "reject_node": "write:node",
    "delete_node": "write:node",
    "cordon_node": "write:node",
    "uncordon_node": "write:node",
    "drain_node": "write:node",
}


class BaseScreen(Screen[None]):
    """A main screen: the app calls `refresh_data()` after each poll while it is shown."""

    TITLE_TEXT: ClassVar[str] = ""

    def compose(self) -> ComposeResult:
        yield ClusterHeader(self.TITLE_TEXT)
        yield ConnectionBanner()
        yield from self.compose_body()
        yield Footer()

    def compose_body(self) -> ComposeResult:
        yield from ()

    @property
    def bapp(self) -> BacedgeApp:
        return cast("BacedgeApp", self.app)

    def needs(self) -> Needs:
        """What the next poll should fetch for this screen beyond jobs and nodes."""
        return Needs()

    def refresh_data(self) -> None:
        """Show the app's current data; called after every applied poll."""

    def on_screen_resume(self) -> None:
        self.bapp.redraw(self)
        self.bapp.screen_changed(self)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return self.bapp.may(action)

    def now_ns(self) -> int:
        return self.bapp.now_ns()


class TableScreen(BaseScreen, Generic[T]):
    """A screen around one KeyedTable with `/` filtering and sorting by any column."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "Filter", id="table.filter"),
        Binding("s", "sort", "Sort", id="table.sort"),
        Binding("S", "reverse_sort", "Reverse", show=False, id="table.reverse"),
        Binding("escape", "clear_filter", "Clear filter", show=False, id="table.clear"),
    ]
    COLUMNS: ClassVar[list[Column]] = []
    FIELDS: ClassVar[Mapping[str, Field[Any]]] = {}
    DEFAULT_SORT: ClassVar[SortSpec] = SortSpec("id")
    NOUN: ClassVar[str] = "rows"
    TABLE_ID: ClassVar[str] = "table"

    def __init__(self) -> None:
        super().__init__()
        self.sort_spec = self.DEFAULT_SORT
        self.filter: Filter[T] | None = None
        self._last_rows: dict[str, tuple[Cell, ...]] = {}
        self._last_order: list[str] = []
        self._last_sort: SortSpec | None = None

    def compose_body(self) -> ComposeResult:
        field = Input(placeholder=self.filter_help(), id="filter")
        field.display = False  # out of the focus chain until `/`
        yield field
        yield Static(id="table-status")
        yield KeyedTable(self.COLUMNS, id=self.TABLE_ID)

    def on_mount(self) -> None:
        self.table.focus()

    @property
    def table(self) -> KeyedTable:
        return self.query_one(KeyedTable)

    def filter_help(self) -> str:
        keys = " ".join(f"{k}:" for k in self.FIELDS)
        return f"filter: free text, {keys} (a,b = either; -key:v = not); Enter applies"

    def haystack(self, item: T) -> str:
        return ""

    # -- data ------------------------------------------------------------------
    def items(self) -> Mapping[str, T]:
        """The objects to list, by row key."""
        return {}

    def row(self, key: str, item: T) -> tuple[Cell, ...]:
        raise NotImplementedError

    def refresh_data(self) -> None:
        if not self.is_mounted:
            return
        items = self.items()
        matches = self.filter.matches if self.filter is not None else None
        column = next((i for i, c in enumerate(self.COLUMNS) if c.key == self.sort_spec.column), 0)
        previous = self._last_rows
        rows: dict[str, tuple[Cell, ...]] = {}
        resort = self._last_sort != self.sort_spec
        for key, item in items.items():
            if matches is not None and not matches(item):
                continue
            cells = self.row(key, item)
            rows[key] = cells
            if not resort:
                before = previous.get(key)
                if before is None or (before is not cells and before[column] != cells[column]):
                    resort = True
        if resort or len(rows) != len(previous):
            order = sort_keys(rows, self.COLUMNS, self.sort_spec)
        else:
            order = self._last_order  # same rows, same sort values: same order
        self.table.apply(rows, order)
        self._last_rows, self._last_order, self._last_sort = rows, order, self.sort_spec
        self.update_status(len(rows), len(items))

    def update_status(self, shown: int, total: int) -> None:
        text = Text(no_wrap=True, overflow="ellipsis")
        count = f"{shown:,}" if shown == total else f"{shown:,} of {total:,}"
        text.append(f" {count} {self.NOUN}", "bold")
        text.append(f" · sort {self.sort_spec.describe(self.COLUMNS)}")
        if self.filter:
            text.append(f" · filter: {self.filter.text}", "bold yellow")
        extra = self.status_extra()
        if extra:
            text.append(f" · {extra}", "dim")
        warning = self.status_warning()
        if warning:
            text.append(f" · {warning}", "bold red")
        self.query_one("#table-status", Static).update(text)

    def status_extra(self) -> str:
        return ""

    def status_warning(self) -> str:
        """Something about the rows the user must not miss (rows that could not be read)."""
        return ""

    # -- filter and sort -------------------------------------------------------
    def action_filter(self) -> None:
        field = self.query_one("#filter", Input)
        field.display = True
        field.value = self.filter.text if self.filter else ""
        field.focus()

    def action_clear_filter(self) -> None:
        field = self.query_one("#filter", Input)
        field.display = False
        if self.filter is not None:
            self.filter = None
            self.bapp.redraw(self)
        self.table.focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "clear_filter":  # escape goes on to "back" when there is no filter
            shown = self.query_one("#filter", Input).display
            return bool(shown or self.filter is not None)
        return super().check_action(action, parameters)

    def set_filter(self, text: str) -> bool:
        """Apply a filter typed by the user; False (and a message) when it cannot be read."""
        text = text.strip()
        if not text:
            self.filter = None
        else:
            try:
                self.filter = parse_filter(text, self.FIELDS, self.haystack)
            except FilterError as exc:
                self.notify(str(exc), severity="error", timeout=5, markup=False)
                return False
        self.bapp.redraw(self)
        return True

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if self.set_filter(event.value):
            field = self.query_one("#filter", Input)
            if not self.filter:
                field.display = False
            self.table.focus()

    def set_sort(self, column: str, reverse: bool | None = None) -> None:
        if reverse is None:
            reverse = not self.sort_spec.reverse if self.sort_spec.column == column else False
        self.sort_spec = SortSpec(column, reverse)
        self.bapp.redraw(self)

    def action_sort(self) -> None:
        keys = [c.key for c in self.COLUMNS]
        index = keys.index(self.sort_spec.column) if self.sort_spec.column in keys else -1
        self.set_sort(keys[(index + 1) % len(keys)], reverse=False)

    def action_reverse_sort(self) -> None:
        self.set_sort(self.sort_spec.column, not self.sort_spec.reverse)

    @on(DataTable.HeaderSelected)
    def _header_clicked(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        self.set_sort(str(event.column_key.value))
