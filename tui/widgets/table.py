"""A DataTable that is updated by keyed diffs, never cleared and refilled.

Each refresh hands `apply()` the rows a screen wants, by key, in order. Rows that went away
are removed, new ones added, changed cells updated with `update_cell`, and the order fixed
with one sort; the cursor stays on the same key and at the same height on the screen, so a
live refresh never moves what the user is looking at.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey, RowKey

from .cells import Cell

__all__ = ["Column", "Diff", "KeyedTable"]

# Removing a row renumbers every row after it; past this many removals one rebuild is cheaper.
_REBUILD_AT = 256


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    width: int | None = None  # None: as wide as the widest cell
    order: tuple[str, str] = ("↑", "↓")  # how ascending and descending read for this column


@dataclass(frozen=True)
class Diff:
    added: int = 0
    removed: int = 0
    updated: int = 0
    reordered: bool = False
    rebuilt: bool = False

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed or self.updated or self.reordered)


class KeyedTable(DataTable[Cell]):
    DEFAULT_CSS = """
    KeyedTable {
        height: 1fr;
    }
    """

    def __init__(
        self,
        columns: Sequence[Column],
        *,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(
            id=id,
            classes=classes,
            cursor_type="row",
            zebra_stripes=True,
            cursor_foreground_priority="renderable",
        )
        self._columns = list(columns)
        self._shown: dict[str, tuple[Cell, ...]] = {}  # exactly the cells in the table
        self._order: list[str] = []  # keys in table order
        self.last_diff = Diff()

    def on_mount(self) -> None:
        for column in self._columns:
            self.add_column(column.label, key=column.key, width=column.width)

    @property
    def keys(self) -> list[str]:
        """Row keys in display order."""
        return list(self._order)

    @property
    def selected_key(self) -> str | None:
        """The key of the row under the cursor, if any."""
        if not self._order or self.cursor_row < 0 or self.cursor_row >= len(self._order):
            return None
        return self._order[self.cursor_row]

    def cells(self, key: str) -> tuple[Cell, ...] | None:
        return self._shown.get(key)

    def select_key(self, key: str) -> bool:
        """Move the cursor to a row by key; False when it is not shown."""
        if key not in self._shown:
            return False
        self.move_cursor(row=self._order.index(key))
        return True

    def visible_keys(self) -> list[str]:
        """The keys of the rows on screen now (for fetching details only where looked at)."""
        top = max(0, int(self.scroll_y))
        height = max(1, self.scrollable_content_region.height)
        return self._order[top : top + height + 1]

    def apply(self, rows: Mapping[str, Sequence[Cell]], order: Sequence[str]) -> Diff:
        """Make the table show `order` (keys of `rows`), touching only what changed."""
        order = [k for k in order if k in rows]
        cursor_key = self.selected_key
        offset = self.cursor_row - int(self.scroll_y)
        gone = [k for k in self._order if k not in rows]
        diff: Diff
        with self.app.batch_update():
            if len(gone) > _REBUILD_AT and len(gone) * 4 > len(self._order):
                diff = self._rebuild(rows, order, len(gone))
            else:
                diff = self._patch(rows, order, gone)
            if cursor_key is not None and cursor_key in self._shown:
                row = self._index_of(cursor_key)
                if row != self.cursor_row:
                    self.move_cursor(row=row, scroll=False)
                target = max(0, row - offset)
                if target != int(self.scroll_y):
                    self.scroll_to(y=target, animate=False, immediate=True, force=True)
        self.last_diff = diff
        return diff

    def _index_of(self, key: str) -> int:
        return self.get_row_index(key)

    def _rebuild(self, rows: Mapping[str, Sequence[Cell]], order: list[str], gone: int) -> Diff:
        self.clear()
        self._shown = {}
        for key in order:
            cells = tuple(rows[key])
            self.add_row(*cells, key=key)
            self._shown[key] = cells
        self._order = list(order)
        return Diff(added=len(order), removed=gone, rebuilt=True)

    def _patch(self, rows: Mapping[str, Sequence[Cell]], order: list[str], gone: list[str]) -> Diff:
        for key in gone:
            self.remove_row(key)
            del self._shown[key]
        if gone:
            dropped = set(gone)
            self._order = [k for k in self._order if k not in dropped]
        column_keys = [c.key for c in self._columns]
        added = updated = 0
        for key in order:
            cells = tuple(rows[key])
            old = self._shown.get(key)
            if old is cells:
                continue
            if old is None:
                self.add_row(*cells, key=key)
                self._order.append(key)
                added += 1
            elif old != cells:
                kept = []  # exactly the objects the table holds (the sort below finds them)
                for index, (before, after) in enumerate(zip(old, cells, strict=False)):
                    if before == after:
                        kept.append(before)
                        continue
                    column = self.columns[ColumnKey(column_keys[index])]
                    wider = after.width > column.content_width
                    self.update_cell(key, column_keys[index], after, update_width=wider)
                    kept.append(after)
                cells = tuple(kept)
                updated += 1
            else:
                continue
            self._shown[key] = cells
        reordered = self._order != order
        if reordered:
            first = column_keys[0]
            position = {id(self._shown[k][0]): i for i, k in enumerate(order)}
            self.sort(first, key=lambda cell: position[id(cell)])
            self._order = list(order)
        return Diff(added=added, removed=len(gone), updated=updated, reordered=reordered)

    def _update_dimensions(self, new_rows: Iterable[RowKey], *args: Any, **kwargs: Any) -> None:
        """Column widths from Cell.width instead of measuring every cell as a renderable.

        DataTable measures each new cell through Rich, which dominates loading thousands of
        rows. Cells know their width, so this takes the widths directly and lets DataTable
        do the rest with nothing left to measure. Anything that is not a plain one-line
        Cell row, or a DataTable that works differently, goes through DataTable's own path.
        """
        rows = list(new_rows)
        try:
            columns = self.ordered_columns
            widths = [c.content_width for c in columns]
            for row_key in rows:
                row = self.rows.get(row_key)
                if row is None:
                    continue  # removed before the table went idle
                if row.label is not None or row.auto_height:
                    raise _Unusual
                for index, cell in enumerate(self.get_row(row_key)):
                    if not isinstance(cell, Cell):
                        raise _Unusual
                    if cell.width > widths[index]:
                        widths[index] = cell.width
        except (_Unusual, AttributeError, IndexError, KeyError):
            super()._update_dimensions(rows, *args, **kwargs)
            return
        for column, width in zip(columns, widths, strict=False):
            column.content_width = width
        super()._update_dimensions((), *args, **kwargs)


class _Unusual(Exception):
    """A row the fast width path does not handle."""
