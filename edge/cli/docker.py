"""`bacedge docker run` (alias `bacedge podman run`): a Bacalhau docker job from the command
line, with `bacalhau docker run`'s options; compute nodes run it with rootless Podman."""

from __future__ import annotations

from typing import Any

import click

from edge.cli.common import BacedgeCommand, BacedgeGroup, api_options, handle_errors
from edge.cli.job import run_options, submit
from edge.cli.output import dump
from edge.cli.placement import apply_placement, placement_options
from edge.cli.wasm import (
    exit_like_task,
    key_value,
    parse_input,
    parse_output,
    parse_publisher,
)
from edge.client import ApiClient
from edge.models import NetworkType, ResourceError, parse_bytes, parse_cpu, parse_gpu

NETWORKS = [n.value for n in NetworkType]


def _resources(
    cpu: str | None, memory: str | None, disk: str | None, gpu: str | None
) -> dict[str, str]:
    """Resources as the spec writes them, checked here so a typo fails before submitting."""
    checks = (
        ("CPU", "--cpu", cpu, parse_cpu),
        ("Memory", "--memory", memory, lambda v: parse_bytes(v, "memory")),
        ("Disk", "--disk", disk, lambda v: parse_bytes(v, "disk")),
        ("GPU", "--gpu", gpu, parse_gpu),
    )
    out: dict[str, str] = {}
    for key, option, value, parse in checks:
        if not value:
            continue
        try:
            parse(value)
        except ResourceError as exc:
            raise click.BadParameter(str(exc), param_hint=f"'{option}'") from None
        out[key] = value
    return out


def build_docker_job(
    image: str,
    args: tuple[str, ...] | list[str],
    *,
    entrypoint: list[str] | None = None,
    env: dict[str, str] | None = None,
    workdir: str | None = None,
    inputs: list[dict[str, Any]] | None = None,
    outputs: list[dict[str, str]] | None = None,
    publisher: dict[str, Any] | None = None,
    resources: dict[str, str] | None = None,
    network: str | None = None,
    domains: list[str] | None = None,
    timeout: int | None = None,
    name: str | None = None,
    labels: dict[str, str] | None = None,
    constraints: list[dict[str, Any]] | None = None,
    count: int = 1,
) -> dict[str, Any]:
    """A Bacalhau batch job running IMAGE with the docker engine, as `bacalhau docker run`
    builds it: the arguments after the image are Parameters (the container's command)."""
    params: dict[str, Any] = {"Image": image}
    if entrypoint:
        params["Entrypoint"] = list(entrypoint)
    if args:
        params["Parameters"] = list(args)
    if env:
        params["EnvironmentVariables"] = [f"{k}={v}" for k, v in env.items()]
    if workdir:
        params["WorkingDirectory"] = workdir
    task: dict[str, Any] = {"Name": "main", "Engine": {"Type": "docker", "Params": params}}
    if inputs:
        task["InputSources"] = list(inputs)
    if outputs:
        task["ResultPaths"] = list(outputs)
    if publisher:
        task["Publisher"] = publisher
    if resources:
        task["Resources"] = dict(resources)
    if network or domains:
        task["Network"] = {"Type": network or "http", **({"Domains": domains} if domains else {})}
    if timeout:
        task["Timeouts"] = {"ExecutionTimeout": timeout}
    job: dict[str, Any] = {"Type": "batch", "Count": count, "Tasks": [task]}
    if name:
        job["Name"] = name
    if labels:
        job["Labels"] = dict(labels)
    if constraints:
        job["Constraints"] = list(constraints)
    return job


@click.command("run", cls=BacedgeCommand, context_settings={"show_default": True})
@handle_errors
@api_options
@run_options
@click.option(
    "--entrypoint",
    multiple=True,
    metavar="ARG",
    help="Override the image's entrypoint (repeat for each word).",
)
@click.option("--env", "-e", multiple=True, metavar="KEY=VALUE", help="Environment variable.")
@click.option("--workdir", "-w", metavar="PATH", help="Working directory inside the container.")
@click.option(
    "--input",
    "-i",
    "inputs",
    multiple=True,
    metavar="SOURCE[,dst=/target][,opt=K=V]",
    help="Input: s3://BUCKET/KEY, http(s)://URL or a path on the compute node (read-only; "
    "default target /inputs/<name>, /inputs for s3).",
)
@click.option(
    "--output", "-o", "outputs", multiple=True, metavar="NAME:PATH", help="Result path to publish."
)
@click.option(
    "--publisher",
    "-p",
    metavar="TYPE|s3://BUCKET/KEY",
    help="Publisher for results: local, noop, s3managed or s3://BUCKET/KEY[,opt=K=V].",
)
@click.option("--cpu", metavar="CORES", help="CPU to reserve, e.g. 500m or 2.")
@click.option("--memory", metavar="SIZE", help="Memory to reserve, e.g. 256Mb or 1Gb.")
@click.option("--disk", metavar="SIZE", help="Disk to reserve, e.g. 1Gb.")
@click.option("--gpu", metavar="N", help="GPUs to reserve.")
@click.option(
    "--network",
    type=click.Choice(NETWORKS, case_sensitive=False),
    help="Networking: none (the default on edge nodes), host, full, http (nodes must allow it).",
)
@click.option(
    "--domain", "domains", multiple=True, metavar="DOMAIN", help="Domain an http network may reach."
)
@click.option("--timeout", type=click.IntRange(min=1), metavar="SECONDS", help="Execution timeout.")
@click.option("--name", help="Job name (default: the job ID).")
@click.option("--labels", "-l", multiple=True, metavar="KEY=VALUE", help="Job label.")
@placement_options
@click.option("--count", type=click.IntRange(min=1), default=1, help="Partitions to run.")
@click.option("--dry-run", is_flag=True, help="Print the job spec (YAML) instead of submitting it.")
@click.argument("image")
@click.argument("args", nargs=-1)
def run_docker(
    client: ApiClient,
    image: str,
    args: tuple[str, ...],
    wait: bool,
    id_only: bool,
    follow: bool,
    entrypoint: tuple[str, ...],
    env: tuple[str, ...],
    workdir: str | None,
    inputs: tuple[str, ...],
    outputs: tuple[str, ...],
    publisher: str | None,
    cpu: str | None,
    memory: str | None,
    disk: str | None,
    gpu: str | None,
    network: str | None,
    domains: tuple[str, ...],
    timeout: int | None,
    name: str | None,
    labels: tuple[str, ...],
    constraints: str | None,
    target: str,
    priority: int | None,
    node_details: bool,
    count: int,
    dry_run: bool,
) -> None:
    """Run IMAGE on a compute node; put the command and its arguments after `--`.

    The image must be on the node (`bacedge image load` there) unless the node may pull from
    its registry. Waits, prints the task's stdout (and stderr on stderr) and exits with its
    exit code.
    """
    spec = build_docker_job(
        image,
        args,
        entrypoint=list(entrypoint),
        env=dict(key_value(e, "'--env'") for e in env),
        workdir=workdir,
        inputs=[parse_input(i) for i in inputs],
        outputs=[parse_output(o) for o in outputs],
        publisher=parse_publisher(publisher) if publisher else None,
        resources=_resources(cpu, memory, disk, gpu),
        network=network.lower() if network else None,
        domains=list(domains),
        timeout=timeout,
        name=name,
        labels=dict(key_value(label, "'--labels'") for label in labels),
        count=count,
    )
    apply_placement(spec, constraints=constraints, target=target, priority=priority)
    if dry_run:
        click.echo(dump(spec, "yaml"), nl=False)
        return
    outcome = submit(client, spec, wait=wait, id_only=id_only, follow=follow)
    if outcome is not None:
        details = client if node_details else None
        exit_like_task(outcome, follow=follow, id_only=id_only, node_details=details)


@click.group(cls=BacedgeGroup)
def docker() -> None:
    """Run container images (Bacalhau docker jobs, on rootless Podman)."""


@click.group(cls=BacedgeGroup)
def podman() -> None:
    """Run container images: the same as `bacedge docker`."""


docker.add_command(run_docker)
podman.add_command(run_docker)
