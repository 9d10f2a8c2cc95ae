"""`bacedge wasm run`: ship a local WebAssembly module as a Bacalhau wasm job and run it.

The module travels inline (a `data:` URI) and is mounted at `/main.wasm`, so the job works on
any node with the wasm engine and needs no shared storage.
"""

from __future__ import annotations

import base64
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from edge.cli.common import BacedgeGroup, api_options, handle_errors
from edge.cli.job import WaitOutcome, finish, print_outputs, run_options, submit
from edge.cli.output import dump
from edge.cli.placement import apply_placement, echo_node_details, placement_options
from edge.client import ApiClient
from edge.models import JobStateType

WASM_MAGIC = b"\0asm"
ENTRY_MODULE = "main.wasm"
ENTRY_TARGET = "/main.wasm"
DEFAULT_INPUT_DIR = "/inputs"


@click.group(cls=BacedgeGroup)
def wasm() -> None:
    """Run WebAssembly (WASI) modules."""


def key_value(text: str, what: str) -> tuple[str, str]:
    """`KEY=VALUE` from an option (`--env`, `--labels`), or a usage error naming it."""
    key, eq, value = text.partition("=")
    if not eq or not key.strip():
        raise click.BadParameter(f"{text!r}: use KEY=VALUE", param_hint=what)
    return key.strip(), value


_INPUT_HINT = "'-i' / '--input'"
_S3_OPTIONS = {
    "endpoint": "Endpoint",
    "region": "Region",
    "filter": "Filter",
    "versionid": "VersionID",
    "version": "VersionID",
    "checksum-sha256": "ChecksumSHA256",
    "checksumsha256": "ChecksumSHA256",
}


def _split_spec(spec: str, hint: str) -> tuple[str, str, bool, dict[str, str]]:
    """Bacalhau's `SOURCE[,dst=TARGET][,opt=KEY=VALUE][,rw]` (also `src=SOURCE`)."""
    source, target, read_write = "", "", False
    options: dict[str, str] = {}
    for i, part in enumerate(p.strip() for p in spec.split(",")):
        key, eq, value = part.partition("=")
        key = key.strip().lower()
        if not eq and i == 0:
            source = part
        elif key in ("src", "source") and eq:
            source = value
        elif key in ("dst", "target", "destination") and eq:
            target = value
        elif (key == "opt" and value.lower() == "rw") or (not eq and key in ("rw", "readwrite")):
            read_write = True
        elif key == "opt" and "=" in value:
            name, _, option = value.partition("=")
            options[name.strip().lower()] = option.strip()
        elif eq and key in _S3_OPTIONS:
            options[key] = value.strip()
        else:
            raise click.BadParameter(
                f"{spec!r}: unknown part {part!r} (use SOURCE[,dst=/target][,opt=KEY=VALUE])",
                param_hint=hint,
            )
    return source.strip(), target.strip(), read_write, options


def parse_input(spec: str) -> dict[str, Any]:
    """`-i SOURCE[,dst=/target][,opt=K=V][,rw]` -> an InputSource, by SOURCE's scheme:
    `s3://BUCKET/KEY` (s3; options endpoint, region, filter, versionid, checksum-sha256),
    `http(s)://...` (urlDownload), `file://PATH` or a plain path (local).

    A local path is made absolute here because it is read on the compute node, where the
    caller's working directory means nothing. Default target: /inputs/<name> for paths and
    URLs, /inputs for S3 (a prefix is a folder of objects).
    """
    source, target, read_write, options = _split_spec(spec, _INPUT_HINT)
    if not source:
        raise click.BadParameter(f"{spec!r}: no source", param_hint=_INPUT_HINT)
    lowered = source.lower()
    if lowered.startswith("s3://"):
        bucket, _, key = source[5:].partition("/")
        if not bucket:
            raise click.BadParameter(f"{spec!r}: use s3://BUCKET/KEY", param_hint=_INPUT_HINT)
        params: dict[str, Any] = {"Bucket": bucket, "Key": key}
        for name, value in options.items():
            if name not in _S3_OPTIONS:
                known = ", ".join(sorted(_S3_OPTIONS))
                raise click.BadParameter(
                    f"{spec!r}: unknown s3 option {name!r} (known: {known})",
                    param_hint=_INPUT_HINT,
                )
            params[_S3_OPTIONS[name]] = value
        return _input({"Type": "s3", "Params": params}, target or DEFAULT_INPUT_DIR, spec)
    if lowered.startswith(("http://", "https://")):
        name = os.path.basename(source.split("?", 1)[0].rstrip("/")) or "download"
        url_source = {"Type": "urlDownload", "Params": {"URL": source}}
        return _input(url_source, target or f"{DEFAULT_INPUT_DIR}/{name}", spec)
    path = source.removeprefix("file://")
    absolute = os.path.abspath(os.path.expanduser(path))
    if not target:
        target = f"{DEFAULT_INPUT_DIR}/{os.path.basename(absolute.rstrip('/')) or 'input'}"
    local = {"Type": "local", "Params": {"SourcePath": absolute, "ReadWrite": read_write}}
    return _input(local, target, spec)


def _input(source: dict[str, Any], target: str, spec: str) -> dict[str, Any]:
    if not target.startswith("/"):
        raise click.BadParameter(
            f"{spec!r}: the target {target!r} must be an absolute path", param_hint=_INPUT_HINT
        )
    return {"Source": source, "Target": target}


def parse_publisher(spec: str) -> dict[str, Any]:
    """`-p local|noop|s3managed` or `-p s3://BUCKET/KEY[,opt=endpoint=...][,opt=region=...]
    [,opt=encoding=gzip|plain]` -> a Publisher spec, as Bacalhau's `-p`."""
    hint = "'-p' / '--publisher'"
    source, _target, _rw, options = _split_spec(spec, hint)
    if source.lower().startswith("s3://"):
        bucket, _, key = source[5:].partition("/")
        if not bucket:
            raise click.BadParameter(f"{spec!r}: use s3://BUCKET/KEY", param_hint=hint)
        params: dict[str, Any] = {"Bucket": bucket, "Key": key or "{jobID}/{executionID}"}
        names = {"endpoint": "Endpoint", "region": "Region", "encoding": "Encoding"}
        for name, value in options.items():
            if name == "compress":
                params["Encoding"] = "gzip" if value.lower() in ("1", "true", "yes") else "plain"
            elif name in names:
                params[names[name]] = value
            else:
                raise click.BadParameter(
                    f"{spec!r}: unknown option {name!r} (endpoint, region, encoding)",
                    param_hint=hint,
                )
        return {"Type": "s3", "Params": params}
    kind = source.lower()
    if kind not in ("local", "noop", "s3managed") or options:
        raise click.BadParameter(
            f"{spec!r}: use local, noop, s3managed or s3://BUCKET/KEY[,opt=KEY=VALUE]",
            param_hint=hint,
        )
    return {"Type": kind}


def parse_output(spec: str) -> dict[str, str]:
    """`-o NAME:PATH` (or just `PATH`, named after its last part) -> a ResultPath."""
    name, colon, path = spec.partition(":")
    if not colon:
        path, name = spec, os.path.basename(spec.rstrip("/"))
    if not path.startswith("/") or not name:
        raise click.BadParameter(
            f"{spec!r}: use NAME:/absolute/path", param_hint="'-o' / '--output'"
        )
    return {"Name": name, "Path": path}


def build_wasm_job(
    module: bytes,
    args: tuple[str, ...] | list[str],
    *,
    name: str | None = None,
    env: dict[str, str] | None = None,
    inputs: list[dict[str, Any]] | None = None,
    outputs: list[dict[str, str]] | None = None,
    timeout: int | None = None,
    labels: dict[str, str] | None = None,
    entrypoint: str | None = None,
    publisher: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A Bacalhau batch job running `module` with the wasm engine (one task, one node)."""
    data_uri = "data:application/wasm;base64," + base64.b64encode(module).decode("ascii")
    params: dict[str, Any] = {"EntryModule": ENTRY_MODULE, "Parameters": list(args)}
    if entrypoint:
        params["Entrypoint"] = entrypoint
    task: dict[str, Any] = {
        "Name": "main",
        "Engine": {"Type": "wasm", "Params": params},
        "InputSources": [
            {"Source": {"Type": "inline", "Params": {"URL": data_uri}}, "Target": ENTRY_TARGET},
            *(inputs or []),
        ],
    }
    if env:
        task["Env"] = dict(env)
    if outputs:
        task["ResultPaths"] = list(outputs)
    if publisher:
        task["Publisher"] = publisher
    if timeout:
        task["Timeouts"] = {"ExecutionTimeout": timeout}
    # No default Name: a fixed one would make each run a new version of the same job.
    job: dict[str, Any] = {"Type": "batch", "Count": 1, "Tasks": [task]}
    if name:
        job["Name"] = name
    if labels:
        job["Labels"] = dict(labels)
    return job


def _exit_code(outcome: WaitOutcome) -> int:
    codes = [ex.RunOutput.ExitCode for ex in outcome.executions if ex.RunOutput is not None]
    return next((c for c in codes if c), 0)


def exit_like_task(
    outcome: WaitOutcome,
    *,
    follow: bool,
    id_only: bool,
    node_details: ApiClient | None = None,
) -> NoReturn:
    """Prints the task's output (unless it was followed), then with `node_details` (a client)
    the nodes that ran it, and exits with its exit code; a failure without one exits 1 with
    the reason. Shared by `wasm run` and `docker run`."""
    if not follow and not id_only:
        print_outputs(outcome.executions)
    if node_details is not None and not id_only:
        echo_node_details(node_details, outcome.executions)
    code = _exit_code(outcome)
    if outcome.state != JobStateType.COMPLETED:
        try:
            finish(outcome)
        except click.ClickException as exc:
            exc.show()  # the reason on stderr, then the task's own code if it had one
            sys.exit(code or 1)
    sys.exit(code)


@wasm.command("run", context_settings={"show_default": True})
@handle_errors
@api_options
@run_options
@click.option("--env", "-e", multiple=True, metavar="KEY=VALUE", help="Environment variable.")
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
    "--output",
    "-o",
    "outputs",
    multiple=True,
    metavar="NAME:PATH",
    help="Result path to publish.",
)
@click.option(
    "--publisher",
    "-p",
    metavar="TYPE|s3://BUCKET/KEY",
    help="Publisher for results: local, noop, s3managed or s3://BUCKET/KEY[,opt=K=V].",
)
@click.option("--timeout", type=click.IntRange(min=1), metavar="SECONDS", help="Execution timeout.")
@click.option("--name", help="Job name (default: the job ID).")
@click.option("--labels", "-l", multiple=True, metavar="KEY=VALUE", help="Job label.")
@click.option("--entrypoint", metavar="FUNCTION", help="Exported function to call (_start).")
@placement_options
@click.option("--dry-run", is_flag=True, help="Print the job spec (YAML) instead of submitting it.")
@click.argument("module", type=click.Path(exists=True, dir_okay=False), metavar="FILE.wasm")
@click.argument("args", nargs=-1)
def run_wasm(
    client: ApiClient,
    module: str,
    args: tuple[str, ...],
    wait: bool,
    id_only: bool,
    follow: bool,
    env: tuple[str, ...],
    inputs: tuple[str, ...],
    outputs: tuple[str, ...],
    publisher: str | None,
    timeout: int | None,
    name: str | None,
    labels: tuple[str, ...],
    entrypoint: str | None,
    constraints: str | None,
    target: str,
    priority: int | None,
    node_details: bool,
    dry_run: bool,
) -> None:
    """Run FILE.wasm on a compute node; put task arguments after `--`.

    Waits, prints the task's stdout (and stderr on stderr) and exits with its exit code.
    """
    data = Path(module).read_bytes()
    if not data.startswith(WASM_MAGIC):
        raise click.ClickException(f"{module}: not a WebAssembly module (no \\0asm header)")
    spec = build_wasm_job(
        data,
        args,
        name=name,
        env=dict(key_value(e, "'--env'") for e in env),
        inputs=[parse_input(i) for i in inputs],
        outputs=[parse_output(o) for o in outputs],
        timeout=timeout,
        labels=dict(key_value(label, "'--labels'") for label in labels),
        entrypoint=entrypoint,
        publisher=parse_publisher(publisher) if publisher else None,
    )
    apply_placement(spec, constraints=constraints, target=target, priority=priority)
    if dry_run:
        click.echo(dump(spec, "yaml"), nl=False)
        return
    outcome = submit(client, spec, wait=wait, id_only=id_only, follow=follow)
    if outcome is not None:
        details = client if node_details else None
        exit_like_task(outcome, follow=follow, id_only=id_only, node_details=details)
