"""`bacedge job ...`: submit, watch and inspect jobs through the orchestrator API."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from edge.cli.common import (
    BacedgeGroup,
    api_options,
    echo_data,
    handle_errors,
    output_option,
    read_spec,
    wide_option,
)
from edge.cli.output import (
    colour_enabled,
    describe_job,
    display_id,
    executions_table,
    history_table,
    human_duration,
    jobs_table,
    paint_state,
    printable_lines,
    transfer_text,
    versions_table,
)
from edge.client import LOG_STDERR, ApiClient, ApiUnreachable, ClientError
from edge.models import Execution, Job, JobStateType, JobType

_POLL_FIRST = 0.2  # seconds; polls slow down to _POLL_MAX while nothing changes
_POLL_MAX = 1.0
_UNREACHABLE_GRACE = 30.0  # keep waiting through an orchestrator restart this long


@click.group(cls=BacedgeGroup)
def job() -> None:
    """Submit, watch and inspect jobs."""


# --------------------------------------------------------------------------- waiting


@dataclass
class WaitOutcome:
    job: Job
    executions: list[Execution] = field(default_factory=list)

    @property
    def state(self) -> JobStateType:
        return self.job.State.StateType


def _log(message: str) -> None:
    click.echo(printable_lines(message), err=True)


def _reached(job_obj: Job) -> bool:
    """Batch and ops jobs are awaited to the end; daemons and services only until running."""
    state = job_obj.State.StateType
    if state.terminal:
        return True
    return job_obj.Type in (JobType.DAEMON, JobType.SERVICE) and state == JobStateType.RUNNING


class _Watcher:
    """Polls a job and reports each job and execution state change once, on stderr."""

    def __init__(self, client: ApiClient, job_id: str, quiet: bool = False) -> None:
        self.client = client
        self.job_id = job_id
        self.quiet = quiet
        self.started = time.monotonic()
        self.colour = colour_enabled(err=True)
        self._job_state: JobStateType | None = None
        self._exec_states: dict[str, str] = {}
        self._unreachable_since: float | None = None

    def _say(self, what: str, state: str) -> None:
        if not self.quiet:
            elapsed = human_duration(time.monotonic() - self.started)
            _log(f"  {elapsed:>7}  {what}: {paint_state(state, self.colour)}")

    def poll(self) -> WaitOutcome | None:
        """The job now, having reported what changed; None while the API is unreachable."""
        try:
            job_obj, _, executions = self.client.get_job(self.job_id, include=("executions",))
            if executions is None:  # a server that ignores `include` still has the endpoint
                executions = self.client.job_executions(job_obj.ID or self.job_id)
        except ApiUnreachable:
            now = time.monotonic()
            if self._unreachable_since is None:
                self._unreachable_since = now
                _log("  lost contact with the orchestrator; retrying...")
            if now - self._unreachable_since > _UNREACHABLE_GRACE:
                raise
            return None
        if self._unreachable_since is not None:
            _log("  reconnected")
            self._unreachable_since = None
        for ex in sorted(executions, key=lambda e: e.CreateTime):
            label = ex.ComputeState.StateType.label
            if self._exec_states.get(ex.ID) != label:
                self._exec_states[ex.ID] = label
                message = ex.ComputeState.Message
                state = f"{label} ({message})" if message else label
                self._say(f"Execution {display_id(ex.ID)} on {display_id(ex.NodeID)}", state)
        if job_obj.State.StateType != self._job_state:
            self._job_state = job_obj.State.StateType
            detail = f" ({job_obj.State.Message})" if job_obj.State.Message else ""
            self._say(f"Job {display_id(job_obj.ID)}", self._job_state.value + detail)
        return WaitOutcome(job_obj, executions)

    def until(self, done: Callable[[WaitOutcome], bool]) -> WaitOutcome:
        delay = _POLL_FIRST
        while True:
            outcome = self.poll()
            if outcome is not None and done(outcome):
                return outcome
            time.sleep(delay)
            delay = min(_POLL_MAX, delay * 1.5)


def _started(outcome: WaitOutcome) -> bool:
    """Worth opening the log stream: an execution is running, or the job is already over."""
    if _reached(outcome.job):
        return True
    return any(
        ex.ComputeState.StateType.label in ("Running", "Publishing", "Completed", "Failed")
        for ex in outcome.executions
    )


def _follow_logs(client: ApiClient, job_id: str) -> None:
    """Streams logs until the server ends the stream; a broken stream only ends following."""
    try:
        for kind, line in client.stream_logs(job_id, follow=True):
            click.echo(line, nl=not line.endswith("\n"), err=kind == LOG_STDERR)
    except ClientError as exc:
        _log(f"  log stream ended: {exc}; still waiting for the job")


def print_outputs(executions: list[Execution]) -> None:
    """Each finished execution's stdout on stdout and stderr on stderr."""
    shown = [ex for ex in executions if ex.RunOutput is not None]
    for ex in shown:
        out = ex.RunOutput
        assert out is not None
        if len(shown) > 1:
            _log(f"--- {display_id(ex.ID)} on {display_id(ex.NodeID)} ---")
        if out.Stdout:
            click.echo(out.Stdout, nl=not out.Stdout.endswith("\n"))
        if out.Stderr:
            click.echo(out.Stderr, nl=not out.Stderr.endswith("\n"), err=True)


def submit(
    client: ApiClient,
    spec: Mapping[str, Any],
    *,
    wait: bool,
    id_only: bool,
    follow: bool,
    force: bool = False,
) -> WaitOutcome | None:
    """Submits a spec and, unless told not to, waits with progress on stderr.

    Returns the final state, or None when not waiting. Ctrl-C stops waiting, not the job.
    """
    answer = client.put_job(spec, force=force)
    job_id = str(answer.get("JobID") or answer.get("jobID") or "")
    if not job_id:
        raise click.ClickException(f"the orchestrator accepted the job but sent no JobID: {answer}")
    for warning in answer.get("Warnings") or []:
        _log(f"Warning: {warning}")
    waiting = wait or follow
    if id_only:
        click.echo(job_id)
    else:
        # While waiting, stdout is kept for the job's own output.
        click.echo(f"Job successfully submitted. Job ID: {job_id}", err=waiting)
    if not waiting:
        return None
    watcher = _Watcher(client, job_id, quiet=id_only)
    try:
        if not id_only:
            _log(f"Waiting for {job_id} (Ctrl+C stops waiting; the job keeps running):")
        if follow:
            watcher.until(_started)
            _follow_logs(client, job_id)
        return watcher.until(lambda o: _reached(o.job))
    except KeyboardInterrupt:
        _log(
            f"\nStopped waiting; {job_id} keeps running. "
            f"Check it with: bacedge job describe {job_id}"
        )
        sys.exit(130)


def finish(outcome: WaitOutcome) -> None:
    """Exit code 1 with the reason when the job failed or was stopped."""
    state = outcome.state
    if state in (JobStateType.FAILED, JobStateType.STOPPED):
        reason = outcome.job.State.Message
        if not reason:
            errors = [ex.RunOutput.ErrorMsg for ex in outcome.executions if ex.RunOutput]
            errors += [ex.ComputeState.Message for ex in outcome.executions]
            reason = next((e for e in errors if e), "")
        verb = "failed" if state == JobStateType.FAILED else "was stopped"
        raise click.ClickException(f"job {outcome.job.ID} {verb}{': ' + reason if reason else ''}")


def run_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--wait/--no-wait, --id-only, --follow: shared by `job run` and `wasm run`."""
    func = click.option(
        "--follow", "-f", is_flag=True, help="Stream the job's logs while it runs."
    )(func)
    func = click.option("--id-only", is_flag=True, help="Print only the job ID on stdout.")(func)
    return click.option(
        "--wait/--no-wait",
        default=True,
        show_default=True,
        help="Wait for the job to finish (also --wait=false).",
    )(func)


# --------------------------------------------------------------------------- commands


@job.command("run")
@handle_errors
@api_options
@run_options
@click.option("--force", is_flag=True, help="Submit even if it replaces a job of the same name.")
@click.argument("file", metavar="FILE|-")
def run_job(
    client: ApiClient, file: str, wait: bool, id_only: bool, follow: bool, force: bool
) -> None:
    """Submit a job spec (YAML or JSON; `-` reads stdin) and wait for it by default."""
    spec = read_spec(file)
    outcome = submit(client, spec, wait=wait, id_only=id_only, follow=follow, force=force)
    if outcome is None:
        return
    if not id_only:
        if not follow:
            print_outputs(outcome.executions)
        _log(
            "\nTo get more details about the run, execute:\n"
            f"\tbacedge job describe {outcome.job.ID}"
        )
    finish(outcome)


@job.command("list")
@handle_errors
@api_options
@output_option
@wide_option
@click.option("--limit", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--next-token", help="Token from a previous page.")
@click.option("--all", "all_pages", is_flag=True, help="Every job, not just one page.")
@click.option("--order-by", help="Field to order by (e.g. created_at, id).")
@click.option("--order-reversed", "--reverse", "reverse", is_flag=True, help="Reverse the order.")
@click.option("--labels", help="Label selector, e.g. 'env=prod,region in (eu,us)'.")
@click.option("--namespace", help="Namespace ('*' for all).")
def list_jobs(
    client: ApiClient,
    output: str,
    wide: bool,
    limit: int,
    next_token: str | None,
    all_pages: bool,
    order_by: str | None,
    reverse: bool,
    labels: str | None,
    namespace: str | None,
) -> None:
    """List jobs."""
    token: str | None = None
    if all_pages:
        jobs = list(client.iter_jobs(namespace, limit, order_by, reverse, labels))
    else:
        jobs, token = client.list_jobs(namespace, limit, next_token, order_by, reverse, labels)
    if output != "table":
        echo_data(jobs, output)
        return
    click.echo(jobs_table(jobs, colour_enabled(), wide))
    if token:
        _log(f"\nMore jobs: bacedge job list --next-token {token} (or --all)")


@job.command("describe")
@handle_errors
@api_options
@output_option
@click.argument("job_id", metavar="ID")
def describe(client: ApiClient, output: str, job_id: str) -> None:
    """Show a job, its history, executions and their output."""
    job_obj, history, executions = client.get_job(job_id, include=("history", "executions"))
    if history is None:
        history = client.job_history(job_obj.ID or job_id)
    if executions is None:
        executions = client.job_executions(job_obj.ID or job_id)
    if output != "table":
        echo_data({"Job": job_obj, "History": history, "Executions": executions}, output)
        return
    click.echo(describe_job(job_obj, history, executions, colour_enabled()))


@job.command("executions")
@handle_errors
@api_options
@output_option
@wide_option
@click.argument("job_id", metavar="ID")
def executions(client: ApiClient, output: str, wide: bool, job_id: str) -> None:
    """List a job's executions."""
    items = client.job_executions(job_id)
    if output != "table":
        echo_data(items, output)
        return
    click.echo(executions_table(items, colour_enabled(), wide))


@job.command("versions")
@handle_errors
@api_options
@output_option
@wide_option
@click.argument("job_id", metavar="ID")
def versions(client: ApiClient, output: str, wide: bool, job_id: str) -> None:
    """List a job's versions: one per update of its spec (or rerun)."""
    items = client.job_versions(job_id)
    if output != "table":
        echo_data(items, output)
        return
    click.echo(versions_table(items, colour_enabled(), wide))


@job.command("history")
@handle_errors
@api_options
@output_option
@wide_option
@click.option(
    "--event-type",
    type=click.Choice(["all", "job", "execution"], case_sensitive=False),
    default="all",
    show_default=True,
)
@click.option("--execution-id", help="Only this execution's events.")
@click.option("--since", help="Only events after this time (unix seconds).")
@click.argument("job_id", metavar="ID")
def history(
    client: ApiClient,
    output: str,
    wide: bool,
    event_type: str,
    execution_id: str | None,
    since: str | None,
    job_id: str,
) -> None:
    """Show what happened to a job and its executions."""
    kind = None if event_type == "all" else event_type.lower()
    items = client.job_history(job_id, since=since, event_type=kind, execution_id=execution_id)
    if output != "table":
        echo_data(items, output)
        return
    click.echo(history_table(items, colour_enabled(), wide))


@job.command("logs")
@handle_errors
@api_options
@click.option("--follow", "-f", is_flag=True, help="Keep streaming until the job ends.")
@click.option(
    "--tail",
    "-t",
    is_flag=True,
    help="Start at the end: only lines printed from now on (with --follow), as Bacalhau's.",
)
@click.option(
    "--lines",
    "-n",
    type=click.IntRange(1, 999_999_999),
    metavar="N",
    help="Only the last N lines printed so far.",
)
@click.option("--execution-id", help="One execution's logs (default: the job's).")
@click.argument("job_id", metavar="ID")
def logs(
    client: ApiClient,
    follow: bool,
    tail: bool,
    lines: int | None,
    execution_id: str | None,
    job_id: str,
) -> None:
    """Print a job's stdout (to stdout) and stderr (to stderr).

    Nodes keep up to [compute] max_log_bytes (64 MiB) of each execution's output lines, in
    pieces of at most 64 KiB; past that the log ends with a line saying where it was cut.
    """
    if tail and lines:
        raise click.UsageError("--tail starts at the end, --lines before it: use one")
    try:
        for kind, line in client.stream_logs(
            job_id, execution_id=execution_id, tail=lines or tail, follow=follow
        ):
            click.echo(line, nl=not line.endswith("\n"), err=kind == LOG_STDERR)
    except KeyboardInterrupt:
        sys.exit(130)


@job.command("stop")
@handle_errors
@api_options
@click.option("--reason", help="Recorded in the job's history.")
@click.option("--quiet", "-q", is_flag=True, help="Print nothing on success.")
@click.argument("job_id", metavar="ID")
def stop(client: ApiClient, reason: str | None, quiet: bool, job_id: str) -> None:
    """Stop a job (its executions are cancelled on their nodes)."""
    answer = client.stop_job(job_id, reason=reason)
    if not quiet:
        evaluation = answer.get("EvaluationID") or ""
        suffix = f" (evaluation {evaluation})" if evaluation else ""
        click.echo(f"Job stop requested for {job_id}{suffix}")


@job.command("rerun")
@handle_errors
@api_options
@click.argument("job_id", metavar="ID")
def rerun(client: ApiClient, job_id: str) -> None:
    """Run a job again with its current spec."""
    answer = client.rerun_job(job_id)
    for warning in answer.get("Warnings") or []:
        _log(f"Warning: {warning}")
    new_id = answer.get("JobID") or job_id
    version = answer.get("JobVersion")
    suffix = f" (version {version})" if version is not None else ""
    click.echo(f"Job {new_id} rerun requested{suffix}")


@job.command("validate")
@handle_errors
@click.argument("file", metavar="FILE|-")
def validate(file: str) -> None:
    """Check a job spec locally, without an orchestrator; exit code 1 if it has problems."""
    from edge.jobspec import validate_job_spec

    spec = read_spec(file)
    problems = validate_job_spec(spec)
    where = "stdin" if file == "-" else file
    if problems:
        lines = "\n".join(f"  {p}" for p in problems)
        raise click.ClickException(f"{where} is not a valid job spec:\n{lines}")
    click.echo(f"{where}: valid job spec")


class _ProgressLine:
    """`e-1a2b3c4d  12.0 MiB / 40.0 MiB` redrawn in place on a terminal; silent otherwise."""

    def __init__(self) -> None:
        self.enabled = sys.stderr.isatty()
        self.current = ""

    def __call__(self, execution_id: str, done: int, total: int | None) -> None:
        if not self.enabled:
            return
        line = transfer_text(execution_id, done, total)
        sys.stderr.write("\r" + line.ljust(len(self.current)))
        sys.stderr.flush()
        self.current = line

    def end(self) -> None:
        if self.enabled and self.current:
            sys.stderr.write("\n")
            self.current = ""


@job.command("get")
@handle_errors
@api_options
@click.option(
    "--output-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to put the results (default: ./job-<id>).",
)
@click.option("--force", is_flag=True, help="Write into an existing, non-empty folder.")
@click.argument("job_id", metavar="ID")
def get(client: ApiClient, output_dir: Path | None, force: bool, job_id: str) -> None:
    """Download a job's results: stdout, stderr, exitCode and each ResultPath."""
    from edge.download import DownloadError, default_output_dir, download_job, remove_partial

    out = output_dir or default_output_dir(job_id)
    created = not out.exists()
    line = _ProgressLine()
    try:
        report = download_job(client, job_id, out, force, line)
    except DownloadError as exc:
        line.end()
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        line.end()
        remove_partial(out, created)
        raise click.Abort() from None
    line.end()
    for item in report:
        _log(f"{display_id(item.execution_id)}: {item.folder} (from {item.source})")
    click.echo(str(out))
