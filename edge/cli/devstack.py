"""`bacedge devstack`: an orchestrator and N compute nodes in one process, for trying
things out and for benchmarks (the TUI benchmark runs 500 nodes this way; the scale
benchmark 20,000 simulated ones)."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import sys
import tempfile
from pathlib import Path

import click

from edge import eventloop
from edge.config import Config, ConfigError, load_config
from edge.logsetup import setup_logging

MAX_REAL = 5000  # each real node holds a ledger file (3 descriptors) and a thread
MAX_SIMULATED = 100_000


@click.command()
@click.option(
    "--computes",
    type=click.IntRange(min=0, max=MAX_SIMULATED),
    default=3,
    show_default=True,
    help=f"Compute nodes to run in this process (at most {MAX_REAL:,}, or "
    f"{MAX_SIMULATED:,} with --simulated).",
)
@click.option(
    "--simulated",
    is_flag=True,
    help="Run simulated nodes (sim-00001, ...: the real agent and protocol with the noop "
    "engine, a given inventory and one ledger file shared by all), for scale tests.",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Root for every node's data [default: a temporary directory, removed on exit].",
)
@click.option("--api-port", type=int, default=1234, show_default=True, help="HTTP API port.")
@click.option("--nats-port", type=int, default=4222, show_default=True, help="NATS port.")
@click.option(
    "--engines", default="noop", show_default=True, metavar="NAME[,NAME]", help="Engines offered."
)
@click.option(
    "--heartbeat-interval",
    type=click.FloatRange(min=0.1),
    default=15.0,
    show_default=True,
    help="Seconds between each node's heartbeats.",
)
@click.option(
    "--orchestrators",
    metavar="URL[,URL]",
    help="Join an orchestrator that already runs (NATS URLs) instead of starting one.",
)
def devstack(
    computes: int,
    data_dir: Path | None,
    api_port: int,
    nats_port: int,
    engines: str,
    heartbeat_interval: float,
    orchestrators: str | None,
    simulated: bool,
) -> None:
    """Run a throwaway cluster: an orchestrator plus N compute nodes, in one process."""
    engine_list = [e.strip() for e in engines.split(",") if e.strip()]
    if simulated and engine_list != ["noop"]:
        raise click.UsageError("--simulated nodes run the noop engine only: drop --engines")
    if not simulated and computes > MAX_REAL:
        raise click.UsageError(
            f"--computes {computes} real nodes is more than {MAX_REAL:,} in one process: "
            "pass --simulated for more"
        )
    temporary = data_dir is None
    root = Path(tempfile.mkdtemp(prefix="bacedge-devstack-")) if data_dir is None else data_dir
    servers = [u.strip() for u in (orchestrators or "").split(",") if u.strip()]
    try:
        config = load_config(
            overrides={
                "node.data_dir": root / "orchestrator",
                "api.port": api_port,
                "nats.port": nats_port,
                "compute.engines": engine_list,
                "compute.heartbeat_interval": heartbeat_interval,
            }
        )
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    setup_logging(config.log.level, config.log.format)
    try:
        eventloop.run(_run(config, computes, root, servers, simulated))
    except KeyboardInterrupt:
        pass
    finally:
        if temporary:
            shutil.rmtree(root, ignore_errors=True)


async def _run(
    config: Config, computes: int, root: Path, servers: list[str], simulated: bool
) -> None:
    from edge.runtime import ComputeFleet, Runtime, StartupError
    from edge.transport.server import NatsServerError

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    runtime = Runtime(config, orchestrator=not servers, compute=False)
    fleet: ComputeFleet | None = None
    try:
        try:
            await runtime.start()
            servers = servers or runtime.nats_servers()
            fleet = ComputeFleet(
                config, computes, root / "computes", servers, runtime.token, simulated=simulated
            )
            await fleet.start()
        except (StartupError, NatsServerError, ConfigError) as exc:
            raise click.ClickException(str(exc)) from None
        eventloop.started()
        kind = "simulated compute node(s)" if simulated else "compute node(s)"
        lines = [f"bacedge devstack is running: {computes} {kind}, data in {root}"]
        if runtime.api_url:
            lines.append(f"  API:  {runtime.api_url}")
        lines.append(f"  NATS: {', '.join(fleet.servers)}")
        click.echo("\n".join(lines), err=True)
        sys.stderr.flush()
        await stop.wait()
    finally:
        if fleet is not None:
            await fleet.stop()
        await runtime.stop()
