"""The node actions both node screens offer (list and detail): each key asks about the node
the screen is showing or has under its cursor."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from textual.screen import Screen

from edge.models import NodeState

if TYPE_CHECKING:
    from tui.app import BacedgeApp


class NodeActions(Screen[None]):
    """Mixin for the node screens: each says which node an action is about."""

    def target_node(self) -> NodeState | None:
        raise NotImplementedError

    def _node_action(self, action: str) -> None:
        node = self.target_node()
        if node is not None:
            cast("BacedgeApp", self.app).confirm_node_action(node, action)

    def action_approve_node(self) -> None:
        self._node_action("approve")

    def action_reject_node(self) -> None:
        self._node_action("reject")

    def action_delete_node(self) -> None:
        self._node_action("delete")

    def action_cordon_node(self) -> None:
        self._node_action("cordon")

    def action_uncordon_node(self) -> None:
        self._node_action("uncordon")

    def action_drain_node(self) -> None:
        self._node_action("drain")
