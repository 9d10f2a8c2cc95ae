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


def parse_input(spec: str) -> dict[str, Any]:
    """`-i PATH[,dst=/target][,rw]` (also `src=PATH`) -> a `local` InputSource.

    The path is made absolute here because it is read on the compute node, where the
    caller's working directory means nothing. Default target: /inputs/<basename>.
    """
    source = ""
    target = ""
    read_write = False
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
        else:
            raise click.BadParameter(
                f"{spec!r}: unknown part {part!r} (use PATH[,dst=/target][,rw])",
                param_hint="'-i' / '--input'",
            )
    source = source.removeprefix("file://")
    if not source:
        raise click.BadParameter(f"{spec!r}: no source path", param_hint="'-i' / '--input'")
    absolute = os.path.abspath(os.path.expanduser(source))
    if not target:
        name = os.path.basename(absolute.rstrip("/")) or "input"
        target = f"{DEFAULT_INPUT_DIR}/{name}"
    if not target.startswith("/"):
        raise click.BadParameter(
            f"{spec!r}: the target {target!r} must be an absolute path",
            param_hint="'-i' / '--input'",
        )
    return {
        "Source": {"Type": "local", "Params": {"SourcePath": absolute, "ReadWrite": read_write}},
        "Target": target,
    }


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
    publisher: str | None = None,
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
        task["Publisher"] = {"Type": publisher}
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


def exit_like_task(outcome: WaitOutcome, *, follow: bool, id_only: bool) -> NoReturn:
    """Prints the task's output (unless it was followed) and exits with its exit code; a
    failure without one exits 1 with the reason. Shared by `wasm run` and `docker run`."""
    if not follow and not id_only:
        print_outputs(outcome.executions)
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
    metavar="PATH[,dst=/target]",
    help="Local path on the compute node to mount (default target /inputs/<name>).",
)
@click.option(
    "--output",
    "-o",
    "outputs",
    multiple=True,
    metavar="NAME:PATH",
    help="Result path to publish.",
)
@click.option("--publisher", "-p", metavar="TYPE", help="Publisher for results (e.g. local).")
@click.option("--timeout", type=click.IntRange(min=1), metavar="SECONDS", help="Execution timeout.")
@click.option("--name", help="Job name (default: the job ID).")
@click.option("--labels", "-l", multiple=True, metavar="KEY=VALUE", help="Job label.")
@click.option("--entrypoint", metavar="FUNCTION", help="Exported function to call (_start).")
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
        publisher=publisher,
    )
    outcome = submit(client, spec, wait=wait, id_only=id_only, follow=follow)
    if outcome is not None:
        exit_like_task(outcome, follow=follow, id_only=id_only)
