"""Messages the app posts about itself; tests read them through `run_test(message_hook=)`."""

from __future__ import annotations

from textual.message import Message

from .state import CommandEntry, Link

__all__ = ["ActionFinished", "ActionStarted", "DataRefreshed", "LinkChanged"]


class DataRefreshed(Message):
    """A poll was applied and the active screen redrawn from it."""

    def __init__(self, generation: int, seconds: float) -> None:
        super().__init__()
        self.generation = generation
        self.seconds = seconds  # time to apply it (diff and widget updates)


class LinkChanged(Message):
    """The connection to the orchestrator changed (lost, restored, erroring)."""

    def __init__(self, link: Link) -> None:
        super().__init__()
        self.link = link


class ActionStarted(Message):
    """A confirmed action is being sent; `command` is its CLI equivalent."""

    def __init__(self, command: str) -> None:
        super().__init__()
        self.command = command


class ActionFinished(Message):
    """An action came back; the entry is also in the command log."""

    def __init__(self, entry: CommandEntry) -> None:
        super().__init__()
        self.entry = entry
