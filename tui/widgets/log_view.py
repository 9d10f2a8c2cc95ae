"""A log view that stays fast at 100,000 lines (the Toolong pattern).

Lines live in a list capped at `max_lines` (the oldest are dropped in chunks, so appending
is amortised O(1)); only the lines on screen are rendered, through `render_line` and an LRU
cache of strips. A filter keeps a list of matching line numbers, updated as lines arrive,
so scrolling a filtered view is as cheap as an unfiltered one.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.cache import LRUCache
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from edge.cli.output import printable
from edge.client import LOG_STDERR, LOG_STDOUT

__all__ = ["ERROR_RE", "LogView"]

ERROR_RE = re.compile(
    r"\b(error|errors|fail|failed|failure|fatal|panic|exception|traceback|critical)\b",
    re.IGNORECASE,
)
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f]")
_GUTTER = {LOG_STDOUT: ("│ ", "dim"), LOG_STDERR: ("┃ ", "bold red")}


class LogView(ScrollView, can_focus=True):
    """Lines of (stream, text); stdout and stderr are told apart by the gutter and colour."""

    DEFAULT_CSS = """
    LogView {
        height: 1fr;
        background: $surface;
        scrollbar-gutter: stable;
    }
    """
    COMPONENT_CLASSES = {"logview--stderr", "logview--match", "logview--mark"}

    follow: reactive[bool] = reactive(True)

    class Changed(Message):
        """Lines were added, dropped or re-filtered (the status line recounts)."""

    def __init__(
        self,
        max_lines: int = 100_000,
        *,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(id=id, classes=classes)
        self.max_lines = max(1, max_lines)
        self._lines: list[tuple[int, str]] = []
        self._first = 0  # number of the first kept line; numbers never change
        self._dropped = 0
        self._view: list[int] | None = None  # matching line numbers when filtering
        self._filter: re.Pattern[str] | None = None
        self._highlight: re.Pattern[str] | None = None
        self._streams = frozenset({LOG_STDOUT, LOG_STDERR})
        self._width = 0
        self._mark: int | None = None  # line number picked by next/previous error
        self._cache: LRUCache[tuple[int, int], Strip] = LRUCache(2048)

    # -- content --------------------------------------------------------------
    @property
    def total(self) -> int:
        """Lines kept in the buffer."""
        return len(self._lines)

    @property
    def dropped(self) -> int:
        """Old lines dropped to stay within max_lines."""
        return self._dropped

    @property
    def shown(self) -> int:
        return len(self._lines) if self._view is None else len(self._view)

    @property
    def filter_pattern(self) -> re.Pattern[str] | None:
        return self._filter

    @property
    def streams(self) -> frozenset[int]:
        return self._streams

    def clear(self) -> None:
        self._lines = []
        self._first = 0
        self._dropped = 0
        self._view = [] if self._filtering else None
        self._mark = None
        self._width = 0
        self._cache.clear()
        self.virtual_size = Size(0, 0)
        self.scroll_to(0, 0, animate=False, force=True)
        self.refresh()
        self.post_message(self.Changed())

    def append(self, entries: Iterable[tuple[int, str]]) -> None:
        """Add lines as they came off the stream: one line per frame, with or without its
        newline (bacedge sends none, Bacalhau may); a frame holding several lines is split."""
        new: list[tuple[int, str]] = []
        for kind, text in entries:
            if text.endswith("\n"):
                text = text[:-1]
            for piece in text.split("\n"):
                new.append((kind, _CONTROL.sub("�", piece.rstrip("\r").expandtabs())))
        if not new:
            return
        start = self._first + len(self._lines)
        self._lines.extend(new)
        widest = max(cell_len(text) for _, text in new) + 2
        self._width = max(self._width, widest)
        if self._view is not None:
            self._view.extend(
                start + i for i, (kind, text) in enumerate(new) if self._keep(kind, text)
            )
        self._trim()
        self._resize()
        self.post_message(self.Changed())

    def _trim(self) -> None:
        """Drop the oldest lines past the cap, a tenth of it at a time (amortised O(1))."""
        if len(self._lines) <= self.max_lines:
            return
        chunk = min(len(self._lines), len(self._lines) - self.max_lines + self.max_lines // 10)
        del self._lines[:chunk]
        self._first += chunk
        self._dropped += chunk
        if self._view is not None:
            del self._view[: bisect.bisect_left(self._view, self._first)]
        if self._mark is not None and self._mark < self._first:
            self._mark = None
        self._cache.clear()

    def _resize(self) -> None:
        at_end = self.follow or self.is_vertical_scroll_end
        self.virtual_size = Size(self._width, self.shown)
        if at_end and self.follow:
            self.scroll_end(animate=False, immediate=True, x_axis=False, force=True)
        self.refresh()

    def lines(self) -> Iterator[tuple[int, str]]:
        """The shown lines (filter applied), oldest first."""
        if self._view is None:
            yield from self._lines
        else:
            for number in self._view:
                yield self._lines[number - self._first]

    # -- filter and highlight -------------------------------------------------
    @property
    def _filtering(self) -> bool:
        return self._filter is not None or self._streams != {LOG_STDOUT, LOG_STDERR}

    def _keep(self, kind: int, text: str) -> bool:
        if kind not in self._streams:
            return False
        return self._filter is None or self._filter.search(text) is not None

    def set_filter(
        self, pattern: re.Pattern[str] | None, streams: Iterable[int] | None = None
    ) -> None:
        """Show only lines matching `pattern` (and from `streams`); None shows all."""
        self._filter = pattern
        if streams is not None:
            self._streams = frozenset(streams) or frozenset({LOG_STDOUT, LOG_STDERR})
        if self._filtering:
            first = self._first
            self._view = [
                first + i for i, (kind, text) in enumerate(self._lines) if self._keep(kind, text)
            ]
        else:
            self._view = None
        self._cache.clear()
        self.virtual_size = Size(self._width, self.shown)
        if self.follow:
            self.scroll_end(animate=False, immediate=True, x_axis=False, force=True)
        self.refresh()
        self.post_message(self.Changed())

    def set_highlight(self, pattern: re.Pattern[str] | None) -> None:
        self._highlight = pattern
        self._cache.clear()
        self.refresh()

    # -- navigation -----------------------------------------------------------
    def _number_at(self, index: int) -> int | None:
        if index < 0 or index >= self.shown:
            return None
        return self._first + index if self._view is None else self._view[index]

    def _index_of(self, number: int) -> int:
        if self._view is None:
            return number - self._first
        return bisect.bisect_left(self._view, number)

    def next_error(self, backwards: bool = False) -> bool:
        """Move to the next (or previous) stderr line or line that reads like an error."""
        top = int(self.scroll_y)
        if self._mark is not None:
            start = self._index_of(self._mark) + (-1 if backwards else 1)
        else:
            start = top + (-1 if backwards else 0)
        step = -1 if backwards else 1
        index = start
        while 0 <= index < self.shown:
            number = self._number_at(index)
            assert number is not None
            kind, text = self._lines[number - self._first]
            if kind == LOG_STDERR or ERROR_RE.search(text):
                self._mark = number
                self.follow = False
                self._cache.clear()
                height = max(1, self.scrollable_content_region.height)
                self.scroll_to(y=max(0, index - height // 3), animate=False, force=True)
                self.refresh()
                return True
            index += step
        return False

    @property
    def mark(self) -> int | None:
        return self._mark

    def marked_text(self) -> str | None:
        if self._mark is None or self._mark < self._first:
            return None
        return self._lines[self._mark - self._first][1]

    def save(self, path: Path) -> int:
        """Write the shown lines to `path`; returns how many were written."""
        count = 0
        with path.open("w", encoding="utf-8") as handle:
            for _, text in self.lines():
                handle.write(text + "\n")
                count += 1
        return count

    def watch_follow(self, follow: bool) -> None:
        self.post_message(self.Changed())
        if follow:
            self._mark = None
            self._cache.clear()
            self.scroll_end(animate=False, immediate=True, x_axis=False, force=True)

    def on_mouse_scroll_up(self) -> None:
        self.follow = False

    # -- rendering ------------------------------------------------------------
    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._cache.clear()

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.size.width
        number = self._number_at(scroll_y + y)
        base = self.rich_style
        if number is None:
            return Strip.blank(width, base)
        strip = self._cache.get((number, 0))
        if strip is None:
            strip = self._render_number(number, base)
            self._cache[(number, 0)] = strip
        return strip.crop_extend(scroll_x, scroll_x + width, base)

    def _render_number(self, number: int, base: Style) -> Strip:
        kind, text = self._lines[number - self._first]
        gutter, gutter_style = _GUTTER.get(kind, ("  ", ""))
        line = Text(printable(text, tabs=True), no_wrap=True, end="")  # never raw escapes
        if kind == LOG_STDERR:
            line.stylize(self.get_component_rich_style("logview--stderr", partial=True))
        match_style = self.get_component_rich_style("logview--match", partial=True)
        for pattern in (self._filter, self._highlight):
            if pattern is not None:
                line.highlight_regex(pattern, match_style)
        if number == self._mark:
            line.stylize(self.get_component_rich_style("logview--mark", partial=True))
        segments = [Segment(gutter, base + Style.parse(gutter_style))]
        segments += [
            Segment(seg.text, base + seg.style if seg.style else base)
            for seg in line.render(self.app.console)
        ]
        return Strip(segments)
