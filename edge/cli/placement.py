"""Where a `docker run` or `wasm run` job goes, with `bacalhau docker run`'s options:
`--constraints` (alias `--selector`/`-s`), `--target all` (an ops job: every matching
node), `--priority`; and `--node-details`, what ran where once it finished."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import click

from edge import selectors
from edge.cli.output import (
    Cell,
    colour_enabled,
    display_id,
    labels_text,
    render_table,
    state_colour,
)
from edge.client import ApiClient, ClientError
from edge.models import Execution, NodeState


def parse_selector(text: str) -> list[dict[str, Any]]:
    """A Kubernetes-style label selector ('env=prod,zone in (a,b),!gpu') -> Constraints."""
    try:
        return [c.wire() for c in selectors.parse(text)]
    except selectors.SelectorError as exc:
        raise click.BadParameter(str(exc), param_hint="'--constraints' / '-s'") from None


def placement_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--constraints/--selector/-s, --target, --priority and --node-details."""
    func = click.option(
        "--node-details",
        is_flag=True,
        help="Once the job finished, print the nodes that ran it (on stderr).",
    )(func)
    func = click.option(
        "--priority",
        type=click.IntRange(min=0),
        help="Scheduling priority: higher is planned first.",
    )(func)
    func = click.option(
        "--target",
        type=click.Choice(["any", "all"], case_sensitive=False),
        default="any",
        help="any: a batch job on any matching node(s); all: once on every matching node "
        "(an ops job).",
    )(func)
    return click.option(
        "--constraints",
        "--selector",
        "-s",
        "constraints",
        metavar="SELECTOR",
        help="Node label selector, e.g. 'zone=a,arch in (arm64,amd64)'; a favour_ key "
        "prefers matching nodes instead of requiring them.",
    )(func)


def apply_placement(
    job: dict[str, Any], *, constraints: str | None, target: str, priority: int | None
) -> dict[str, Any]:
    """The options above set on a job built by `build_*_job`."""
    if constraints:
        job["Constraints"] = parse_selector(constraints)
    if target.lower() == "all":
        if int(job.get("Count", 1)) > 1:
            raise click.BadParameter(
                "--target all runs once on every matching node: drop --count",
                param_hint="'--target'",
            )
        job["Type"] = "ops"
        job["Count"] = 1
    if priority is not None:
        job["Priority"] = priority
    return job


def node_details(client: ApiClient, executions: Sequence[Execution], colour: bool) -> str:
    """What ran where: each execution's node, its name and labels, and how it ended."""
    nodes: dict[str, NodeState | None] = {}
    for execution in executions:
        if execution.NodeID not in nodes:
            try:
                nodes[execution.NodeID] = client.get_node(execution.NodeID)
            except ClientError:
                nodes[execution.NodeID] = None  # gone since, or a server that hides nodes
    rows: list[list[str | Cell]] = []
    for execution in executions:
        node = nodes.get(execution.NodeID)
        labels = node.Info.Labels if node is not None else {}
        host = node.Info.ComputeNodeInfo.Inventory.Hostname if node is not None else ""
        state = execution.ComputeState.StateType.label
        rows.append(
            [
                display_id(execution.NodeID),
                labels.get("name", "") or host,
                display_id(execution.ID),
                str(execution.PartitionIndex),
                Cell(state, state_colour(state)),
                labels_text(labels, 60),
            ]
        )
    headers = ["NODE", "NAME", "EXECUTION", "PARTITION", "STATE", "LABELS"]
    return render_table(headers, rows, colour)


def echo_node_details(client: ApiClient, executions: Sequence[Execution]) -> None:
    """`--node-details`: on stderr, as stdout holds the task's own output."""
    click.echo(node_details(client, executions, colour_enabled(err=True)), err=True)
