"""The node actions a user can take, worded once for the CLI (`bacedge node ...`) and the
TUI (its confirmation dialogs and notifications), which both offer them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class NodeAction:
    name: str  # what the API calls it (`PUT /api/v1/orchestrator/nodes` Action)
    done: str  # what the node is afterwards, for "Node X <done>"
    help: str  # what it does, one sentence
    deadline: bool = False  # takes a --deadline too


NODE_ACTIONS: tuple[NodeAction, ...] = (
    NodeAction("approve", "approved", "Let a node join the fleet and receive work."),
    NodeAction("reject", "rejected", "Refuse a node; it gets no work."),
    NodeAction("delete", "deleted", "Forget a node (it must rejoin and be approved again)."),
    NodeAction(
        "cordon",
        "cordoned: it gets no new work",
        "Give a node no new work; what it runs keeps running (bacedge addition).",
    ),
    NodeAction(
        "uncordon",
        "takes work again",
        "Let a cordoned, draining or drained node take work again (bacedge addition).",
    ),
    NodeAction(
        "drain",
        "draining",
        "Move work off a node: it gets no new work, its service and daemon work moves to "
        "other nodes now, its batch work finishes or moves at --deadline (bacedge addition).",
        deadline=True,
    ),
)
