"""The banner shown while the orchestrator cannot be reached: what failed, when we retry."""

from __future__ import annotations

import time
from datetime import datetime
from typing import TYPE_CHECKING, cast

from rich.text import Text
from textual.widgets import Static

if TYPE_CHECKING:
    from tui.app import BacedgeApp

__all__ = ["ConnectionBanner"]


class ConnectionBanner(Static):
    """Hidden while polls succeed; counts down to the next retry while they fail."""

    DEFAULT_CSS = """
    ConnectionBanner {
        dock: top;
        height: auto;
        display: none;
        background: $error 70%;
        color: $text;
        padding: 0 1;
    }
    ConnectionBanner.-error { background: $warning 60%; }
    ConnectionBanner.-shown { display: block; }
    """

    @property
    def _app(self) -> BacedgeApp:
        return cast("BacedgeApp", self.app)

    def on_mount(self) -> None:
        self.watch(self.app, "link", self.update_text, init=False)
        self.set_interval(1.0, self._tick)
        self.update_text()

    def _tick(self) -> None:
        if self.has_class("-shown"):
            self.update_text()

    def update_text(self) -> None:
        link = self._app.link
        shown = link.status in ("down", "error")
        self.set_class(shown, "-shown")
        self.set_class(link.status == "error", "-error")
        if not shown:
            return
        text = Text()
        if link.status == "down":
            text.append("✖ Disconnected: ", "bold")
        else:
            text.append("✖ Error: ", "bold")
        text.append(link.message)
        wait = max(0, round(link.retry_at - time.monotonic()))
        text.append(f"\n  retrying in {wait}s (attempt {link.attempt})", "bold")
        if self._app.data.loaded and link.last_ok:
            when = datetime.fromtimestamp(link.last_ok).strftime("%H:%M:%S")
            text.append(f" · showing data from {when}")
        text.append(" · ctrl+r retries now")
        self.update(text)
