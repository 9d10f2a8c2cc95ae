"""The command palette (ctrl+p): screens, refresh, actions on the selection, jobs and nodes.

The selection is the job and the node last under the cursor (or opened): the palette offers
stopping and rerunning that job, and cordoning, uncordoning or draining that node (what its
state allows: the keys send any of them and show the server's refusal).

Write actions are not offered at all in --read-only or when the credentials lack their
capability (`write:job`, `write:node`), so the palette never shows what the keys would
refuse; downloading a job's results changes nothing, so it is always offered.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, cast

from textual.command import DiscoveryHit, Hit, Hits, Provider

from edge.cli.output import display_id
from edge.models import NodeScheduling, NodeState

from .actions import NODE_ACTIONS, node_label

if TYPE_CHECKING:
    from .app import BacedgeApp

__all__ = ["BacedgeCommands"]

_MAX_OBJECT_HITS = 20


class BacedgeCommands(Provider):
    @property
    def _app(self) -> BacedgeApp:
        return cast("BacedgeApp", self.app)

    def _commands(self) -> list[tuple[str, str, Callable[[], object]]]:
        app = self._app
        out: list[tuple[str, str, Callable[[], object]]] = []
        for key, mode, title in app.screen_keys():
            out.append((f"Go to {title}", f"screen {key}", partial(app.action_show, mode)))
        out += [
            ("Refresh now", "fetch everything again (ctrl+r)", app.action_refresh_now),
            (
                "Resume live refresh" if app.paused else "Pause live refresh",
                "stop or restart polling (p)",
                app.action_toggle_pause,
            ),
            ("Show command log", "the CLI equivalent of each action (c)", app.action_command_log),
            ("Show keys", "key bindings of this screen (?)", app.action_help),
        ]
        job = app.data.jobs.get(app.selected_job or "")
        name = (job.Name or display_id(job.ID)) if job is not None else ""
        if job is not None:
            out.append(
                (
                    f"Download results of job {name}",
                    "into a folder, as bacedge job get (d on the job)",
                    partial(app.download_results, job.ID),
                )
            )
        if app.can("write:job"):
            out.append(
                ("Submit a job from a file", "validated before it is sent", app.action_submit_job)
            )
            if job is not None:
                out.append((f"Stop job {name}", display_id(job.ID), partial(app.confirm_stop, job)))
                out.append(
                    (f"Rerun job {name}", display_id(job.ID), partial(app.confirm_rerun, job))
                )
        if app.can("write:node"):
            node = app.data.nodes.get(app.selected_node or "")
            if node is not None:
                out += _scheduling_commands(app, node)
            pending = [n for n in app.data.nodes.values() if n.Membership.value == "PENDING"]
            for node in pending[:_MAX_OBJECT_HITS]:
                out.append(
                    (
                        f"Approve node {display_id(node.Info.NodeID)}",
                        "waiting for approval",
                        partial(app.confirm_node_action, node, "approve"),
                    )
                )
        return out

    async def discover(self) -> Hits:
        for name, help_text, callback in self._commands():
            yield DiscoveryHit(name, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, help_text, callback in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, help=help_text)
        app = self._app
        found = 0
        for job in app.data.jobs.values():
            label = f"Open job {job.Name} {job.ID}" if job.Name else f"Open job {job.ID}"
            score = matcher.match(label)
            if score > 0:
                yield Hit(score, matcher.highlight(label), partial(app.open_job, job.ID))
                found += 1
                if found >= _MAX_OBJECT_HITS:
                    break
        found = 0
        for node in app.data.nodes.values():
            label = f"Open node {node.Info.NodeID} {node.Info.Labels.get('name', '')}".rstrip()
            score = matcher.match(label)
            if score > 0:
                yield Hit(score, matcher.highlight(label), partial(app.open_node, node.Info.NodeID))
                found += 1
                if found >= _MAX_OBJECT_HITS:
                    break


_SCHEDULING_KEYS = {"cordon": "C", "uncordon": "U", "drain": "D"}


def _scheduling_commands(
    app: BacedgeApp, node: NodeState
) -> list[tuple[str, str, Callable[[], object]]]:
    """Cordon or uncordon, and drain (again, for a new deadline) unless it is drained, for
    the selected node."""
    status = node.Scheduling.Status
    actions = ["cordon" if status == NodeScheduling.ELIGIBLE else "uncordon"]
    if status != NodeScheduling.DRAINED:
        actions.append("drain")
    return [
        (
            f"{action.capitalize()} node {node_label(node)}",
            f"{NODE_ACTIONS[action][1]} ({_SCHEDULING_KEYS[action]})",
            partial(app.confirm_node_action, node, action),
        )
        for action in actions
    ]
