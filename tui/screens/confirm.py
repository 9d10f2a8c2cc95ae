"""The confirmation every action goes through, showing the equivalent CLI command.

An action may also ask for a few optional lines (a node action's reason, a drain's
deadline): each is an `Ask`, checked before the dialog lets the action go ahead, and the
command shown follows what is typed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static


@dataclass(frozen=True)
class Ask:
    """An optional line the dialog asks for; an empty answer means "not given"."""

    key: str
    label: str
    placeholder: str = ""
    check: Callable[[str], str] | None = None  # what is wrong with an answer, or ""


class ConfirmScreen(ModalScreen["dict[str, str] | None"]):
    """Answers the lines typed (an empty dict when none are asked) only for an explicit yes,
    None otherwise. Cancel is focused, so Enter is safe; in a field, Enter moves on."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes", id="confirm.yes"),
        Binding("n", "answer(False)", "No", id="confirm.no"),
        Binding("escape", "answer(False)", "Cancel", id="confirm.cancel"),
    ]

    def __init__(
        self,
        title: str,
        question: str,
        command: str,
        verb: str,
        asks: Sequence[Ask] = (),
        command_for: Callable[[Mapping[str, str]], str] | None = None,
    ) -> None:
        super().__init__()
        self.title_text = title
        self.question = question
        self.command = command
        self.verb = verb
        self.asks = list(asks)
        self.command_for = command_for

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="dialog"):
            yield Static(Text(self.title_text, "bold"), id="dialog-title")
            yield Static(Text(self.question), id="dialog-question")
            for ask in self.asks:
                yield Label(ask.label, classes="dialog-label")
                yield Input(placeholder=ask.placeholder, id=f"ask-{ask.key}")
            problem = Static(id="dialog-problem")
            problem.display = False
            yield problem
            yield Static(self._command_text(), id="dialog-command")
            with Horizontal(id="dialog-buttons"):
                yield Button("Cancel", id="cancel")
                yield Button(f"{self.verb} (y)", id="ok", variant="error")

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()

    def answers(self) -> dict[str, str]:
        """What is typed in each field, trimmed."""
        return {a.key: self.query_one(f"#ask-{a.key}", Input).value.strip() for a in self.asks}

    def problems(self) -> list[str]:
        """What is wrong with the answers, one line per field."""
        out = []
        answers = self.answers()
        for ask in self.asks:
            value = answers[ask.key]
            problem = ask.check(value) if ask.check is not None and value else ""
            if problem:
                out.append(f"{ask.label}: {problem}")
        return out

    def _command_text(self) -> Text:
        return Text.assemble(("$ ", "dim"), (self.command, "bold"))

    @on(Input.Changed)
    def _typed(self, event: Input.Changed) -> None:
        event.stop()
        self.query_one("#dialog-problem", Static).display = False
        if self.command_for is not None:
            self.command = self.command_for(self.answers())
            self.query_one("#dialog-command", Static).update(self._command_text())

    @on(Input.Submitted)
    def _next(self, event: Input.Submitted) -> None:
        """Enter in a field: the next field, then the action's button (never the action)."""
        event.stop()
        fields = list(self.query(Input))
        index = fields.index(event.input)
        if index + 1 < len(fields):
            fields[index + 1].focus()
        else:
            self.query_one("#ok", Button).focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.action_answer(event.button.id == "ok")

    def action_answer(self, yes: bool) -> None:
        if not yes:
            self.dismiss(None)
            return
        problems = self.problems()
        if problems:
            shown = self.query_one("#dialog-problem", Static)
            shown.update(Text("\n".join(problems), "red"))
            shown.display = True
            return
        self.dismiss(self.answers())
