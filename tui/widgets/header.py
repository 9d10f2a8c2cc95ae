"""The header line: which cluster this is, where we are, and whether data is live."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Static

if TYPE_CHECKING:
    from tui.app import BacedgeApp

__all__ = ["ClusterHeader"]


class ClusterHeader(Horizontal):
    """`bacedge ▸ cluster (api) ▸ Screen` on the left, fleet size and live state on the right."""

    DEFAULT_CSS = """
    ClusterHeader {
        dock: top;
        height: 1;
        background: $panel;
        color: $foreground;
    }
    ClusterHeader > #header-left { width: 1fr; height: 1; }
    ClusterHeader > #header-right { width: auto; height: 1; }
    """

    def __init__(self, title: str) -> None:
        super().__init__()
        self.title = title

    def compose(self) -> ComposeResult:
        yield Static(id="header-left")
        yield Static(id="header-right")

    @property
    def _app(self) -> BacedgeApp:
        return cast("BacedgeApp", self.app)

    def on_mount(self) -> None:
        for name in ("link", "paused", "generation", "title_suffix"):
            self.watch(self.app, name, self.update_text, init=False)
        self.update_text()

    def update_text(self) -> None:
        app = self._app
        left = Text(no_wrap=True, overflow="ellipsis")
        left.append(" bacedge ", "bold reverse")
        left.append(" ▸ ", "dim")
        left.append(app.target.name, "bold")
        left.append(" ▸ ", "dim")
        left.append(self.title, "bold")
        suffix = app.title_suffix.get(self.title, "")
        if suffix:
            left.append(f" {suffix}")
        if app.target.profile:  # the address last: cut first when the terminal is narrow
            left.append(f"  {app.target.api}", "dim")
        right = Text(no_wrap=True)
        data = app.data
        if data.loaded:
            connected = sum(1 for n in data.nodes.values() if n.connected)
            right.append(f"nodes {connected}/{len(data.nodes)}  ")
            more = "" if data.jobs_complete else "+"
            right.append(f"jobs {len(data.jobs):,}{more}  ")
        if data.version:
            right.append(f"{data.version}  ", "dim")
        if app.read_only:
            right.append("READ-ONLY ", "bold yellow")
        elif app.allowed is not None and not app.allowed & {"write:job", "write:node"}:
            right.append("READ-ONLY KEY ", "bold yellow")
        link = app.link
        if app.paused:
            right.append("⏸ paused ", "bold yellow")
        elif link.status == "ok":
            right.append(f"● live {app.refresh_interval:g}s ", "green")
        elif link.status == "connecting":
            right.append("○ connecting ", "yellow")
        else:
            right.append("✖ offline " if link.status == "down" else "✖ error ", "bold red")
        self.query_one("#header-left", Static).update(left)
        self.query_one("#header-right", Static).update(right)
