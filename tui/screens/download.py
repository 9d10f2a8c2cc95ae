"""Where to download a job's results: a folder, written into only when empty or confirmed."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

from edge.download import occupied

GetCommand = Callable[[str, bool], list[str]]
"""(folder, overwrite) -> the `bacedge job get` command line that does the same."""


class DownloadScreen(ModalScreen["tuple[str, bool] | None"]):
    """Dismisses with (folder as typed, overwrite), or None. A folder that is not empty takes a
    second press, on the button that turned into Overwrite (`bacedge job get --force`)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="download.cancel"),
    ]

    def __init__(self, question: str, folder: str, command: GetCommand) -> None:
        super().__init__()
        self.question = question
        self.initial = folder
        self.command = command
        self.overwrite = False  # the user saw the folder is not empty and went on

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="dialog wide"):
            yield Static(Text("Download results", "bold"))
            yield Static(Text(self.question), id="dialog-question")
            yield Input(self.initial, placeholder="output folder", id="folder")
            yield Static(id="dialog-command")
            yield Static(id="problems")
            with Horizontal(id="dialog-buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Download", id="ok", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#folder", Input).focus()
        self._show_command()

    def _folder(self) -> str:
        return self.query_one("#folder", Input).value.strip()

    def _show_command(self) -> None:
        line = shlex.join(self.command(self._folder() or "DIR", self.overwrite))
        self.query_one("#dialog-command", Static).update(
            Text.assemble(("$ ", "dim"), (line, "bold"))
        )

    @on(Input.Changed, "#folder")
    def _changed(self) -> None:
        self.overwrite = False
        button = self.query_one("#ok", Button)
        button.label, button.variant = "Download", "primary"
        self.query_one("#problems", Static).update("")
        self._show_command()

    @on(Input.Submitted, "#folder")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._go()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "ok":
            self._go()
        else:
            self.dismiss(None)

    def _go(self) -> None:
        text = self._folder()
        problems = self.query_one("#problems", Static)
        if not text:
            problems.update(Text("Enter the folder to download into.", "bold red"))
            return
        folder = Path(text).expanduser()
        if occupied(folder) and not self.overwrite:
            self.overwrite = True
            button = self.query_one("#ok", Button)
            button.label, button.variant = "Overwrite", "error"
            problems.update(
                Text(
                    f"{folder} is not empty: files of the same names will be replaced. "
                    "Press Overwrite to go ahead (--force), or choose another folder.",
                    "bold yellow",
                )
            )
            self._show_command()
            return
        self.dismiss((text, self.overwrite))

    def action_cancel(self) -> None:
        self.dismiss(None)
