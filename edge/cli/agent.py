"""`bacedge agent ...`: ask the node behind the API about itself."""

from __future__ import annotations

from typing import Any

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
    """Whether the agent answers (`Status: OK`), its local S3 store's health if it runs one,
    and on an appliance the boot health check's verdict."""
    answer = client.agent_alive()
    if output != "table":
        echo_data(answer, output)
        return
    click.echo(f"Status: {answer.get('Status', 'OK')}")
    store = answer.get("Store")
    if isinstance(store, dict):
        click.echo(f"Store:  {describe_store_health(store)}")
    appliance = answer.get("Appliance")
    if isinstance(appliance, dict):
        click.echo(
            f"Appliance: {appliance.get('line', '?')} (checked {appliance.get('checked', '?')})"
        )


def describe_store_health(store: dict[str, Any]) -> str:
    """`alive since T (seaweedfs at URL, 0 restarts)`, plus the last error when there is one."""
    state = "alive" if store.get("alive") else "DOWN"
    restarts = int(store.get("restarts") or 0)
    text = (
        f"{state} since {store.get('since', '?')} ({store.get('backend', '?')} at "
        f"{store.get('endpoint', '?')}, {restarts} restart{'' if restarts == 1 else 's'})"
    )
    error = store.get("last_error")
    return f"{text}; last error: {error}" if error else text


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
