"""`bacedge node ...`: see the fleet and decide which nodes may join it."""

from __future__ import annotations

from datetime import datetime, timezone

import click

from edge.cli.common import (
    BacedgeGroup,
    api_options,
    echo_data,
    handle_errors,
    output_option,
    wide_option,
)
from edge.cli.output import colour_enabled, describe_node, nodes_table
from edge.client import ApiClient
from edge.models.durations import parse_duration
from edge.models.node_actions import NODE_ACTIONS


@click.group(cls=BacedgeGroup)
def node() -> None:
    """List, inspect, approve, reject, cordon and drain compute nodes."""


@node.command("list")
@handle_errors
@api_options
@output_option
@wide_option
@click.option(
    "--filter-approval",
    type=click.Choice(["PENDING", "APPROVED", "REJECTED"], case_sensitive=False),
    help="Only nodes with this approval.",
)
@click.option(
    "--filter-status",
    type=click.Choice(["CONNECTED", "DISCONNECTED"], case_sensitive=False),
    help="Only nodes with this connection status.",
)
@click.option("--labels", help="Label selector, e.g. 'arch=arm64,gpu!=none'.")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many nodes.")
@click.option("--order-by", help="id, type, available_cpu, available_memory, ...")
@click.option("--order-reversed", "--reverse", "reverse", is_flag=True, help="Reverse the order.")
def list_nodes(
    client: ApiClient,
    output: str,
    wide: bool,
    filter_approval: str | None,
    filter_status: str | None,
    labels: str | None,
    limit: int | None,
    order_by: str | None,
    reverse: bool,
) -> None:
    """List the nodes the orchestrator knows."""
    nodes, _ = client.list_nodes(
        limit=limit,
        order_by=order_by,
        reverse=reverse,
        labels=labels,
        filter_approval=filter_approval.upper() if filter_approval else None,
        filter_status=filter_status.upper() if filter_status else None,
    )
    if output != "table":
        echo_data(nodes, output)
        return
    click.echo(nodes_table(nodes, colour_enabled(), wide))


@node.command("describe")
@handle_errors
@api_options
@output_option
@click.argument("node_id", metavar="ID")
def describe(client: ApiClient, output: str, node_id: str) -> None:
    """Show a node: approval, connection, capacity, GPUs, engines."""
    state = client.get_node(node_id)
    if output != "table":
        echo_data(state, output)
        return
    click.echo(describe_node(state, colour_enabled()))


def _action(client: ApiClient, node_id: str, action: str, message: str | None, done: str) -> None:
    answer = client.node_action(node_id, action, message)
    success = answer.get("Success", True)
    if not success:
        reason = answer.get("Error") or "the orchestrator refused"
        raise click.ClickException(f"cannot {action} node {node_id}: {reason}")
    click.echo(f"Node {node_id} {done}")


_MESSAGE = click.option("--message", "-m", help="Why; recorded with the decision.")


def _simple_action(action: str, done: str, help_text: str) -> None:
    @node.command(action, help=help_text)
    @handle_errors
    @api_options
    @_MESSAGE
    @click.argument("node_id", metavar="ID")
    def command(client: ApiClient, message: str | None, node_id: str) -> None:
        _action(client, node_id, action, message, done)


for _spec in NODE_ACTIONS:
    if not _spec.deadline:
        _simple_action(_spec.name, _spec.done, _spec.help)


def _duration(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    return value


@node.command("drain", help=next(a.help for a in NODE_ACTIONS if a.name == "drain"))
@handle_errors
@api_options
@_MESSAGE
@click.option(
    "--deadline",
    metavar="DURATION",
    callback=_duration,
    help="When batch and ops work still running on the node is stopped and placed "
    "elsewhere, e.g. 10m or 1h (default: it may finish).",
)
@click.argument("node_id", metavar="ID")
def drain(client: ApiClient, message: str | None, deadline: str | None, node_id: str) -> None:
    answer = client.node_action(node_id, "drain", message, deadline)
    if not answer.get("Success", True):
        reason = answer.get("Error") or "the orchestrator refused"
        raise click.ClickException(f"cannot drain node {node_id}: {reason}")
    until = f"; batch work moves in {deadline}" if deadline else "; batch work may finish"
    click.echo(f"Node {node_id} draining{until}. Watch it with `bacedge node describe {node_id}`")


@node.group("token", cls=BacedgeGroup)
def token() -> None:
    """One-time join tokens: a compute node started with `--join TOKEN` gets its own NATS
    identity, allowed to speak and hear only as itself."""


@token.command("create")
@handle_errors
@api_options
@click.option(
    "--ttl",
    metavar="DURATION",
    callback=_duration,
    help="How long the token may be used, e.g. 30m or 168h (default 24h, at most 30 days).",
)
def create_token(client: ApiClient, ttl: str | None) -> None:
    """Print a join token, alone on the last line (a script can take `| tail -1`)."""
    answer = client.create_join_token(ttl)
    expires = datetime.fromtimestamp(int(answer["ExpiresAt"]) / 1e9, timezone.utc)
    click.echo(
        f"Join token {answer['ID']}, for one node, until {expires:%Y-%m-%d %H:%M:%S} UTC. "
        "On the node: bacedge serve --compute --orchestrators nats://HOST:4222 --join TOKEN",
        err=True,
    )
    if answer.get("Warning"):
        click.echo(f"warning: {answer['Warning']}", err=True)
    click.echo(answer["Token"])
