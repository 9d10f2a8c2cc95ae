"""Screen 6: one job's (or execution's) logs, followed live."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType

from ..widgets import LogPane
from .base import BaseScreen


class LogsScreen(BaseScreen):
    TITLE_TEXT = "Logs"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="logs_screen.back"),
    ]

    def compose_body(self) -> ComposeResult:
        yield LogPane(self.bapp.log_lines, id="logs-pane")

    @property
    def pane(self) -> LogPane:
        return self.query_one(LogPane)

    def refresh_data(self) -> None:
        if not self.is_mounted:
            return
        target = self.bapp.log_target
        if target is None and self.bapp.selected_job:
            target = (self.bapp.selected_job, self.bapp.selected_execution)
        if target is not None:
            self.pane.open(*target)
            self.bapp.log_target = target

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        self.pane.view.focus()

    def action_back(self) -> None:
        self.bapp.go_back()
