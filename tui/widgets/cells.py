"""Table cells that know their width and how they sort.

DataTable measures every new cell; a plain string is parsed as markup first, which makes
loading 10,000 rows slow and turns `[...]` in job names into styles. A Cell is plain text
with a style, a width computed once, and a sort value, and compares equal when it would
render the same, which is what the keyed row diffs rely on. Its text is `printable`: a
job or node name with escape sequences in it is shown escaped, never sent to the terminal.
"""

from __future__ import annotations

from typing import Any

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.text import Text

from edge.cli.output import printable

__all__ = ["Cell"]


class Cell:
    __slots__ = ("sort", "style", "text", "width")

    def __init__(self, text: str, style: str = "", sort: Any = None) -> None:
        self.text = text = printable(text)
        self.style = style
        self.sort = text.lower() if sort is None else sort
        self.width = cell_len(text)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Cell)
            and self.text == other.text
            and self.style == other.style
            and self.sort == other.sort
        )

    def __hash__(self) -> int:
        return hash((self.text, self.style))

    def __repr__(self) -> str:
        return f"Cell({self.text!r})"

    def __str__(self) -> str:
        return self.text

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement(self.width, self.width)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield Text(self.text, style=self.style, no_wrap=True, overflow="ellipsis", end="")
