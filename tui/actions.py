"""What the TUI changes on a cluster: each action's question, CLI equivalent and API call.

The app asks (`ConfirmScreen`), then sends the call and reports how it went. Node actions
come from the CLI's own table (`bacedge node approve ... uncordon`, then `drain`), so the
TUI says what the CLI says.
"""

from __future__ import annotations

import shlex
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from edge.cli.output import display_id
from edge.models import NodeState
from edge.models.durations import parse_duration
from edge.models.node_actions import NODE_ACTIONS as _ACTIONS

from .client import ApiLike
from .screens.confirm import Ask

__all__ = ["DEADLINE", "NODE_ACTIONS", "REASON", "ActionSpec", "node_action", "node_label"]


@dataclass(frozen=True)
class ActionSpec:
    """A change to the cluster: what the user is asked, the CLI equivalent, the API call.

    `asks` are optional lines the dialog asks for; `answered` makes the action with the
    answers (its command and call), so the dialog shows the command as it will run.
    """

    title: str
    question: str
    command: list[str]
    verb: str
    call: Callable[[ApiLike], Awaitable[dict[str, Any]]]
    done: str
    asks: tuple[Ask, ...] = ()
    answered: Callable[[Mapping[str, str]], ActionSpec] | None = None
    capability: str = "write:job"  # what the credentials need for it (edge.auth.ACTIONS)

    @property
    def command_text(self) -> str:
        return shlex.join(self.command)

    def with_answers(self, answers: Mapping[str, str]) -> ActionSpec:
        return self.answered(answers) if self.answered is not None else self


# action: (what it did, what it does), worded as the CLI words them.
NODE_ACTIONS: dict[str, tuple[str, str]] = {a.name: (a.done, a.help) for a in _ACTIONS}


def _duration_problem(text: str) -> str:
    try:
        parse_duration(text)
    except ValueError as exc:
        return str(exc)
    return ""


REASON = Ask("message", "Reason (optional)", "recorded with the decision")
DEADLINE = Ask(
    "deadline",
    "Deadline (optional)",
    "e.g. 10m: batch work still there then moves; empty: it may finish",
    _duration_problem,
)


def node_label(node: NodeState) -> str:
    """What questions and notifications call a node: its name label, else its short ID."""
    return node.Info.Labels.get("name") or display_id(node.Info.NodeID)


def node_action(
    node: NodeState,
    action: str,
    cli: Callable[..., list[str]],
    answers: Mapping[str, str] | None = None,
) -> ActionSpec:
    """`action` (a key of NODE_ACTIONS) on `node`, with the reason and deadline answered;
    `cli` makes the equivalent command line (`BacedgeApp.cli`)."""
    answers = answers or {}
    node_id = node.Info.NodeID
    label = node_label(node)
    done, explained = NODE_ACTIONS[action]
    message = answers.get(REASON.key, "")
    deadline = answers.get(DEADLINE.key, "") if action == "drain" else ""
    flags = ["--message", message] if message else []
    if action == "drain":
        flags += ["--deadline", deadline] if deadline else []
        done += f"; batch work moves in {deadline}" if deadline else "; batch work may finish"
    return ActionSpec(
        f"{action.capitalize()} node",
        f"{action.capitalize()} node {label} ({node_id})? {explained}",
        cli("node", action, node_id, *flags),
        action.capitalize(),
        lambda api: api.node_action(node_id, action, message or None, deadline or None),
        f"Node {label} {done}",
        (REASON, DEADLINE) if action == "drain" else (REASON,),
        partial(node_action, node, action, cli),
        "write:node",
    )
