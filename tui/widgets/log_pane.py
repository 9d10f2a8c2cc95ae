"""A job's logs: the streaming worker, the LogView, a status line and the prompts.

Used by the Logs screen and by the job detail's Logs tab. The stream is a worker reading
`AsyncApiClient.stream_logs(follow=True)`; lines are handed to the view in batches every
50 ms, so a chatty task cannot flood the UI with one repaint per line. When the connection
breaks the pane says so and reconnects with backoff, replaying the log from the start.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import TYPE_CHECKING, cast

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Input, Static
from textual.worker import Worker

from edge.cli.output import display_id
from edge.client import LOG_STDERR, LOG_STDOUT, ApiError, ApiUnreachable, ClientError

from ..client import Backoff
from .log_view import LogView

if TYPE_CHECKING:
    from tui.app import BacedgeApp

__all__ = ["LogPane"]

_FLUSH_S = 0.05
_STREAMS = [
    (frozenset({LOG_STDOUT, LOG_STDERR}), "stdout+stderr"),
    (frozenset({LOG_STDOUT}), "stdout"),
    (frozenset({LOG_STDERR}), "stderr"),
]


def compile_pattern(text: str) -> re.Pattern[str] | None:
    """A case-insensitive regex from what the user typed; literal text if it is not one."""
    if not text:
        return None
    try:
        return re.compile(text, re.IGNORECASE)
    except re.error:
        return re.compile(re.escape(text), re.IGNORECASE)


class LogPane(Vertical):
    HELP_GROUP = "Logs"
    BINDINGS = [
        Binding("f", "toggle_follow", "Follow", id="logs.follow"),
        Binding("slash", "prompt('filter')", "Filter", id="logs.filter"),
        Binding("h", "prompt('highlight')", "Highlight", id="logs.highlight"),
        Binding("n", "next_error", "Next error", id="logs.next_error"),
        Binding("N", "previous_error", "Prev error", id="logs.previous_error"),
        Binding("s", "cycle_streams", "Streams", id="logs.streams"),
        Binding("w", "prompt('save')", "Save", id="logs.save"),
        Binding("g", "top", "Top", show=False, id="logs.top"),
        Binding("G", "bottom", "Bottom", show=False, id="logs.bottom"),
        Binding("escape", "clear", "Clear filter", show=False, id="logs.clear"),
    ]
    DEFAULT_CSS = """
    LogPane { height: 1fr; }
    LogPane > #log-status { height: 1; background: $boost; padding: 0 1; }
    """

    def __init__(self, max_lines: int = 100_000, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.max_lines = max_lines
        self.job_id: str | None = None
        self.execution_id: str | None = None
        self._pending: list[tuple[int, str]] = []
        self._flush_scheduled = False
        self._state = "idle"
        self._prompt: str | None = None
        self._filter_text = ""
        self._highlight_text = ""
        self._streams = 0
        self._worker: Worker[None] | None = None

    def compose(self) -> ComposeResult:
        yield Static(id="log-status")
        field = Input(id="log-input")
        field.display = False  # out of the focus chain until a prompt needs it
        yield field
        yield LogView(self.max_lines, id="log-view")

    @property
    def view(self) -> LogView:
        return self.query_one(LogView)

    @property
    def _app(self) -> BacedgeApp:
        return cast("BacedgeApp", self.app)

    def on_mount(self) -> None:
        self._status()

    # -- streaming ------------------------------------------------------------
    def open(self, job_id: str, execution_id: str | None = None, *, force: bool = False) -> None:
        """Stream this job's (or execution's) logs, unless already showing them."""
        same = (job_id, execution_id) == (self.job_id, self.execution_id)
        if same and self._worker is not None and not force:
            return
        self.close()
        self.job_id, self.execution_id = job_id, execution_id
        self.view.clear()
        self.view.follow = True
        self._worker = self._stream(job_id, execution_id)

    def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            self._worker = None
        self._flush()
        self._state = "idle"

    @work(group="logs", exit_on_error=False)
    async def _stream(self, job_id: str, execution_id: str | None) -> None:
        backoff = Backoff(1.0, 15.0)
        replay = False
        while True:
            self._set_state("connecting")
            try:
                if replay:
                    self._flush()
                    self.view.clear()
                async for kind, line in self._app.api.stream_logs(
                    job_id, execution_id=execution_id, follow=True
                ):
                    if self._state != "streaming":
                        self._set_state("streaming")
                        backoff.reset()
                    self._pending.append((kind, line))
                    if not self._flush_scheduled:
                        self._flush_scheduled = True
                        self.set_timer(_FLUSH_S, self._flush)
                self._flush()
                self._set_state("ended")
                return
            except ApiUnreachable as exc:
                self._flush()
                delay = backoff.next()
                self._set_state(f"disconnected ({exc.message}); retrying in {delay:g}s")
                await asyncio.sleep(delay)
                replay = True
            except ApiError as exc:
                self._flush()
                if exc.status != 400:
                    self._set_state(f"error: {exc.message or exc.status}")
                    return
                # Bad request for logs: usually no execution placed yet. Ask again later.
                delay = backoff.next()
                self._set_state(f"waiting: {exc.message}; asking again in {delay:g}s")
                await asyncio.sleep(delay)
            except ClientError as exc:
                self._flush()
                self._set_state(f"error: {exc}")
                return
            except Exception as exc:  # a broken frame or socket must not end the TUI
                self._flush()
                self._set_state(f"error: {type(exc).__name__}: {exc}")
                return

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._pending:
            batch, self._pending = self._pending, []
            self.view.append(batch)

    def _set_state(self, state: str) -> None:
        self._state = state
        self._status()

    # -- status ---------------------------------------------------------------
    @on(LogView.Changed)
    def _view_changed(self) -> None:
        self._status()

    def _status(self) -> None:
        if not self.is_mounted:
            return
        view = self.view
        text = Text(no_wrap=True, overflow="ellipsis")
        if self.job_id is None:
            text.append("no job selected: pick one on the Jobs screen (2) and press l", "dim")
        else:
            text.append(f"job {display_id(self.job_id)}", "bold")
            if self.execution_id:
                text.append(f" · execution {display_id(self.execution_id)}")
            text.append(f" · {view.shown:,}")
            if view.shown != view.total:
                text.append(f" of {view.total:,}")
            text.append(" lines")
            if view.dropped:
                text.append(f" ({view.dropped:,} older dropped)", "dim")
            text.append(" · ")
            text.append(
                "following" if view.follow else "paused", "green" if view.follow else "yellow"
            )
            text.append(f" · {self._state}", "dim")
            if self._streams:
                text.append(f" · {_STREAMS[self._streams][1]} only")
            if self._filter_text:
                text.append(f" · filter /{self._filter_text}/", "bold")
            if self._highlight_text:
                text.append(f" · highlight /{self._highlight_text}/")
        self.query_one("#log-status", Static).update(text)

    # -- actions --------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "clear":  # let escape reach the screen (back) when nothing to clear
            busy = self._filter_text or self._highlight_text or self._streams
            return bool(self._prompt is not None or busy)
        return True

    def action_toggle_follow(self) -> None:
        self.view.follow = not self.view.follow
        self._status()

    def action_next_error(self) -> None:
        if not self.view.next_error():
            self.notify("No more errors below", severity="warning", timeout=2, markup=False)
        self._status()

    def action_previous_error(self) -> None:
        if not self.view.next_error(backwards=True):
            self.notify("No more errors above", severity="warning", timeout=2, markup=False)
        self._status()

    def action_cycle_streams(self) -> None:
        self._streams = (self._streams + 1) % len(_STREAMS)
        self.view.set_filter(compile_pattern(self._filter_text), _STREAMS[self._streams][0])
        self._status()

    def action_top(self) -> None:
        self.view.follow = False
        self.view.scroll_home(animate=False, force=True)
        self._status()

    def action_bottom(self) -> None:
        self.view.follow = True
        self._status()

    def action_clear(self) -> None:
        if self._prompt is not None:
            self._hide_prompt()
            return
        if self._filter_text or self._highlight_text or self._streams:
            self._filter_text = self._highlight_text = ""
            self._streams = 0
            self.view.set_filter(None, _STREAMS[0][0])
            self.view.set_highlight(None)
            self._status()

    def action_prompt(self, kind: str) -> None:
        field = self.query_one("#log-input", Input)
        self._prompt = kind
        if kind == "filter":
            field.placeholder = "show only lines matching (regex or text; empty shows all)"
            field.value = self._filter_text
        elif kind == "highlight":
            field.placeholder = "highlight (regex or text; empty for none)"
            field.value = self._highlight_text
        else:
            field.placeholder = "save the shown lines to this file"
            name = display_id(self.job_id or "logs")
            field.value = f"bacedge-{name}-logs.txt"
        field.display = True
        field.focus()

    def _hide_prompt(self) -> None:
        field = self.query_one("#log-input", Input)
        field.display = False
        self._prompt = None
        self.view.focus()

    @on(Input.Submitted, "#log-input")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        kind, value = self._prompt, event.value.strip()
        self._hide_prompt()
        if kind == "filter":
            self._filter_text = value
            self.view.set_filter(compile_pattern(value), _STREAMS[self._streams][0])
        elif kind == "highlight":
            self._highlight_text = value
            self.view.set_highlight(compile_pattern(value))
        elif kind == "save" and value:
            self.save(Path(value).expanduser())
        self._status()

    def save(self, path: Path) -> None:
        try:
            count = self.view.save(path)
        except OSError as exc:
            self.notify(
                f"Cannot save to {path}: {exc.strerror or exc}", severity="error", markup=False
            )
            return
        self.notify(f"Saved {count:,} lines to {path}", markup=False)
