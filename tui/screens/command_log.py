"""Every action taken in this session, as the bacedge command that does the same."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from ..state import CommandEntry


class CommandLogScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,c,q", "dismiss", "Close", id="command_log.close"),
    ]

    def __init__(self, entries: list[CommandEntry]) -> None:
        super().__init__()
        self.entries = entries

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="dialog wide"):
            yield Static(Text("Command log: the CLI equivalent of each action", "bold"))
            with VerticalScroll():
                yield Static(self._table(), id="command-log")
            yield Static(Text("escape closes", "dim"))

    def _table(self) -> Table | Text:
        if not self.entries:
            return Text("No actions yet. Stopping a job or approving a node adds a line here.")
        table = Table.grid(padding=(0, 1))
        table.add_column(style="dim")
        table.add_column()
        table.add_column()
        for entry in self.entries:
            when = datetime.fromtimestamp(entry.at).strftime("%H:%M:%S")
            mark = Text("✔", "green") if entry.ok else Text("✖", "red")
            body = Text.assemble(("$ " + entry.command, "bold"), "\n", (entry.message, "dim"))
            table.add_row(when, mark, body)
        return table

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(None)
