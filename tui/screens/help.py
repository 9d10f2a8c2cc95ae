"""`?`: the keys of the screen underneath, grouped by where they apply."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from .base import WRITE_ACTIONS

FILTER_HELP = """\
Filters (/): words are ANDed. Free text matches anywhere in a row;
key:value matches one field by prefix, a,b means either, -key:value negates.
  jobs:        state:failed  type:daemon  label:site=a  engine:wasm  name:  id:
  executions:  state:  desired:  job:  node:  id:
  nodes:       status:disconnected  approval:pending  label:k=v  engine:  gpu:
Example: state:running,queued -type:ops label:site=plant-a"""


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,q", "close", "Close", id="help.close"),
    ]

    def __init__(self, rows: list[tuple[str, str, str]], note: str = "") -> None:
        super().__init__()
        self.rows = rows
        self.note = note  # why some actions are not listed (read-only, the key's rights)

    def compose(self) -> ComposeResult:
        table = Table(box=None, padding=(0, 2), show_header=True, header_style="bold")
        table.add_column("Key", style="bold cyan", no_wrap=True)
        table.add_column("Action")
        table.add_column("Where", style="dim")
        table.add_row("enter", "Open the row under the cursor", "tables")
        for key, description, where in self.rows:
            table.add_row(key, description, where)
        with Vertical(id="dialog", classes="dialog wide"):
            yield Static(Text("Keys", "bold"))
            with VerticalScroll():
                yield Static(table)
                yield Static(Text(FILTER_HELP, "dim"))
                if self.note:
                    yield Static(Text(self.note, "yellow"))
            yield Static(Text("ctrl+p opens the command palette · escape closes", "dim"))

    def action_close(self) -> None:
        self.dismiss(None)


def binding_rows(
    bindings: list[tuple[str, Binding, str]],
    allowed: Callable[[str], bool],
    key_display: Callable[[Binding], str],
) -> list[tuple[str, str, str]]:
    """(keys, description, where) for each distinct binding; writes the user may not make
    (`allowed(action)` false: read-only, or credentials without the capability) dropped.

    The bindings of a compact group (the screens' number keys) share one row, `1-6` and
    `Screens: Overview, Jobs, ...`, so that the keys that work everywhere fit on a small
    terminal too.
    """
    seen: set[tuple[str, str]] = set()
    rows: list[tuple[str, str, str]] = []
    groups: dict[Binding.Group, tuple[int, list[str], list[str]]] = {}
    for key, binding, where in bindings:
        if binding.id is None and not binding.show:
            continue  # a widget's own keys (table cursor movement and the like)
        action = binding.action.split("(")[0]
        if action in WRITE_ACTIONS and not allowed(action):
            continue
        description = binding.description or binding.action
        if (key, description) in seen:
            continue
        seen.add((key, description))
        group = binding.group
        if group is None or not group.compact:
            rows.append((key_display(binding), description, where))
            continue
        if group not in groups:
            groups[group] = (len(rows), [], [])
            rows.append(("", "", where))
        _, keys, names = groups[group]
        keys.append(key_display(binding))
        names.append(description)
    for group, (index, keys, names) in groups.items():
        rows[index] = (_keys_text(keys), f"{group.description}: {', '.join(names)}", rows[index][2])
    return rows


def _keys_text(keys: list[str]) -> str:
    """`1-6` for number keys in a row, else the keys one after another."""
    if len(keys) > 2 and all(len(k) == 1 and k.isdigit() for k in keys):
        first = int(keys[0])
        if [int(k) for k in keys] == list(range(first, first + len(keys))):
            return f"{keys[0]}-{keys[-1]}"
    return " ".join(keys)
