"""The confirmation every action goes through, showing the equivalent CLI command."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static


class ConfirmScreen(ModalScreen[bool]):
    """Answers True only for an explicit yes; Cancel is focused, so Enter is safe."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes", id="confirm.yes"),
        Binding("n", "answer(False)", "No", id="confirm.no"),
        Binding("escape", "answer(False)", "Cancel", id="confirm.cancel"),
    ]

    def __init__(self, title: str, question: str, command: str, verb: str) -> None:
        super().__init__()
        self.title_text = title
        self.question = question
        self.command = command
        self.verb = verb

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="dialog"):
            yield Static(Text(self.title_text, "bold"), id="dialog-title")
            yield Static(Text(self.question), id="dialog-question")
            yield Static(Text.assemble(("$ ", "dim"), (self.command, "bold")), id="dialog-command")
            with Horizontal(id="dialog-buttons"):
                yield Button("Cancel", id="cancel")
                yield Button(f"{self.verb} (y)", id="ok", variant="error")

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "ok")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)
