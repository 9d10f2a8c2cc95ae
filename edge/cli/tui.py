"""`bacedge tui`: the terminal UI, attached to an orchestrator through its HTTP API."""

from __future__ import annotations

from pathlib import Path

import click

from edge.cli.common import Connection, connection_options
from edge.config import ConfigError, load_config


@click.command()
@connection_options
@click.option("--read-only", is_flag=True, help="Look, do not touch: every action is disabled.")
@click.option(
    "--refresh",
    type=click.FloatRange(min=0.2),
    metavar="SECONDS",
    help="Seconds between live refreshes [default: [tui] refresh_interval, 2].",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="TOML config file with [tui] settings [default: the usual config file].",
)
def tui(
    connection: Connection, read_only: bool, refresh: float | None, config_file: Path | None
) -> None:
    """Watch and manage the cluster in a terminal UI (keys: ? for help, q to quit)."""
    try:
        config = load_config(config_file)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    from tui import ClusterTarget, run

    target = ClusterTarget(
        api=connection.api,
        api_key=connection.api_key,
        username=connection.username,
        password=connection.password,
        verify=connection.verify,
        profile=connection.profile,
    )
    run(
        target,
        read_only=read_only,
        refresh_interval=refresh or config.tui.refresh_interval,
        log_lines=config.tui.log_lines,
    )
