"""`bacedge agent ...`: ask the node behind the API about itself."""

from __future__ import annotations

import click

from edge.cli.common import BacedgeGroup, api_options, echo_data, handle_errors, output_option
from edge.cli.output import describe_node_info, render_fields, render_mapping
from edge.client import ApiClient


@click.group(cls=BacedgeGroup)
def agent() -> None:
    """Health, version, identity and configuration of the node serving the API."""


@agent.command("alive")
@handle_errors
@api_options
@output_option
def alive(client: ApiClient, output: str) -> None:
    """Whether the agent answers (`Status: OK`)."""
    answer = client.agent_alive()
    if output != "table":
        echo_data(answer, output)
        return
    click.echo(f"Status: {answer.get('Status', 'OK')}")


@agent.command("version")
@handle_errors
@api_options
@output_option
def version(client: ApiClient, output: str) -> None:
    """The agent's build version."""
    answer = client.agent_version()
    if output != "table":
        echo_data(answer, output)
        return
    click.echo(render_mapping(answer))


@agent.command("node")
@handle_errors
@api_options
@output_option
def node_info(client: ApiClient, output: str) -> None:
    """The agent's own node info (ID, type, labels, engines)."""
    info = client.agent_node()
    if output != "table":
        echo_data(info, output)
        return
    click.echo(render_fields(describe_node_info(info)))


@agent.command("config")
@handle_errors
@api_options
@output_option
def config(client: ApiClient, output: str) -> None:
    """The agent's effective configuration (YAML unless --output json)."""
    answer = client.agent_config()
    echo_data(answer, "json" if output == "json" else "yaml")
