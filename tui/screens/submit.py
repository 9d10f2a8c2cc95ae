"""Submit a job from a YAML or JSON file, validated here before anything is sent."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

from edge.jobspec import SpecError, parse_spec_text, validate_job_spec


def check_spec_file(path: Path) -> tuple[dict[str, Any] | None, list[str]]:
    """The spec, or the problems with it (each `Field.Path: message`), read from a file."""
    where = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, [f"{where}: no such file"]
    except IsADirectoryError:
        return None, [f"{where}: is a directory, not a job spec file"]
    except UnicodeDecodeError:
        return None, [f"{where}: not a text file (expected YAML or JSON)"]
    except OSError as exc:
        return None, [f"{where}: {exc.strerror or exc}"]
    try:
        spec = parse_spec_text(text, where)
    except SpecError as exc:
        return None, exc.problems
    problems = validate_job_spec(spec)
    return (None, problems) if problems else (spec, [])


class SubmitScreen(ModalScreen["tuple[str, dict[str, Any]] | None"]):
    """Dismisses with (path, spec) once the file is valid and the user presses Submit."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="submit.cancel"),
    ]

    def __init__(self, command_prefix: list[str], path: str = "") -> None:
        super().__init__()
        self.command_prefix = command_prefix
        self.initial = path

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="dialog wide"):
            yield Static(Text("Submit a job", "bold"))
            yield Input(self.initial, placeholder="path to a job spec (YAML or JSON)", id="path")
            yield Static(id="submit-command")
            yield Static(id="problems")
            with Horizontal(id="dialog-buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Validate", id="validate")
                yield Button("Submit", id="submit", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#path", Input).focus()
        self._command()

    def _path(self) -> str:
        return self.query_one("#path", Input).value.strip()

    def _command(self) -> None:
        import shlex

        command = shlex.join([*self.command_prefix, self._path() or "FILE"])
        self.query_one("#submit-command", Static).update(
            Text.assemble(("$ ", "dim"), (command, "bold"))
        )

    @on(Input.Changed, "#path")
    def _changed(self) -> None:
        self._command()
        self.query_one("#problems", Static).update("")

    def validate(self) -> tuple[dict[str, Any] | None, list[str]]:
        path = self._path()
        if not path:
            spec, problems = None, ["enter the path of a job spec file"]
        else:
            spec, problems = check_spec_file(Path(path).expanduser())
        out = self.query_one("#problems", Static)
        if problems:
            text = Text("Not submitted, the spec has problems:\n", "bold red")
            for problem in problems:
                text.append(f"  • {problem}\n", "red")
            out.update(text)
        else:
            out.update(Text("✔ valid job spec", "green"))
        return spec, problems

    @on(Input.Submitted, "#path")
    def _enter(self) -> None:
        self.validate()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "cancel":
            self.dismiss(None)
        elif event.button.id == "validate":
            self.validate()
        elif event.button.id == "submit":
            spec, problems = self.validate()
            if spec is not None and not problems:
                self.dismiss((self._path(), spec))

    def action_cancel(self) -> None:
        self.dismiss(None)
