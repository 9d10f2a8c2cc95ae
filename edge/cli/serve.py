"""`bacedge serve`: run the orchestrator, a compute node, or both in one process."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from edge import eventloop
from edge.config import ConfigError, load_config, parse_key_values
from edge.logsetup import setup_logging


def _split(value: str | None) -> list[str] | None:
    if not value:
        return None
    return [part.strip() for part in value.split(",") if part.strip()]


@click.command()
@click.option("--orchestrator", is_flag=True, help="Run the orchestrator (the default role).")
@click.option("--compute", is_flag=True, help="Run a compute node.")
@click.option(
    "--store",
    is_flag=True,
    help="Run the device's local S3 store ([store]; 127.0.0.1:9000 unless configured). "
    "Alone, it runs only the store.",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="TOML config file [default: /etc/bacedge/config.toml as root, "
    "~/.config/bacedge/config.toml otherwise].",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where state lives [default: /var/lib/bacedge as root, ~/.local/share/bacedge otherwise].",
)
@click.option("--api-host", help="Address the HTTP API binds to [default: 127.0.0.1].")
@click.option("--api-port", type=int, help="HTTP API port [default: 1234].")
@click.option("--nats-host", help="Address the embedded NATS binds to [default: 127.0.0.1].")
@click.option("--nats-port", type=int, help="Embedded NATS port [default: 4222].")
@click.option("--store-port", type=int, help="Local S3 store port [default: 9000].")
@click.option(
    "--orchestrators",
    metavar="URL[,URL]",
    help="NATS URL(s) of the orchestrator a compute node joins.",
)
@click.option(
    "--join",
    metavar="TOKEN",
    help="A one-time join token (bacedge node token create): the node gets its own NATS "
    "identity at its first start and keeps it [env: BACEDGE_JOIN_TOKEN].",
)
@click.option("--labels", metavar="k=v[,k=v]", help="Labels of this node.")
@click.option("--name", help="Node name (a label; the node ID stays stable).")
@click.option(
    "--engines",
    metavar="NAME[,NAME]",
    help="Execution engines to enable [default: every engine that works here: noop, wasm "
    "when wasmer-sdk loads, docker when Podman answers].",
)
@click.option(
    "--allowed-local-paths", metavar="PATH[,PATH]", help="Host paths local input sources may read."
)
@click.option("--heartbeat-interval", type=float, help="Seconds between heartbeats.")
@click.option(
    "--podman-socket",
    metavar="PATH",
    help="Rootless Podman API socket for docker tasks (enables the docker engine).",
)
def serve(config_file: Path | None, **flags: Any) -> None:
    """Start bacedge: `--orchestrator --compute` is a single-node cluster."""
    orchestrator = bool(flags.pop("orchestrator"))
    compute = bool(flags.pop("compute"))
    store = bool(flags.pop("store"))
    if not orchestrator and not compute and not store:
        orchestrator = True  # as in Bacalhau: `serve` alone is an orchestrator
    try:
        overrides = {
            "node.data_dir": flags["data_dir"],
            "api.host": flags["api_host"],
            "api.port": flags["api_port"],
            "nats.host": flags["nats_host"],
            "nats.port": flags["nats_port"],
            "compute.orchestrators": _split(flags["orchestrators"]),
            "node.labels": parse_key_values(_split(flags["labels"]) or [])
            if flags["labels"]
            else None,
            "node.name": flags["name"],
            "compute.engines": _split(flags["engines"]),
            "compute.allowed_local_paths": _split(flags["allowed_local_paths"]),
            "compute.heartbeat_interval": flags["heartbeat_interval"],
            "compute.podman_socket": flags["podman_socket"],
            "compute.join_token": flags["join"],
            "store.enabled": True if store else None,
            "store.port": flags["store_port"],
        }
        config = load_config(config_file, overrides)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    setup_logging(config.log.level, config.log.format)

    from edge.runtime import Runtime, StartupError, serve_forever
    from edge.transport.server import NatsServerError

    def ready(runtime: Runtime) -> None:
        wanted = (("orchestrator", orchestrator), ("compute", compute))
        roles = [r for r, on in (*wanted, ("store", config.store.enabled)) if on]
        lines = [f"bacedge is running ({' + '.join(roles)}), data in {config.data_dir}"]
        lines += [f"  {name + ':':6} {value}" for name, value in runtime.endpoints()]
        click.echo("\n".join(lines), err=True)
        sys.stderr.flush()

    runtime = Runtime(config, orchestrator=orchestrator, compute=compute)
    try:
        eventloop.run(serve_forever(runtime, ready))
    except (StartupError, NatsServerError, ConfigError) as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        pass
