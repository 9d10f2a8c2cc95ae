"""Screen 3: one job, in tabs: summary, spec (YAML), executions, history, logs, results.

The Results tab downloads what the job published as `bacedge job get` does, with the same
code (`edge.download`) and a blocking client in a worker thread; progress and the outcome
show above its table. Downloading changes nothing on the cluster, so it stays available
with --read-only.
"""

from __future__ import annotations

import shlex
from functools import partial
from pathlib import Path
from typing import ClassVar

from rich.syntax import Syntax
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Button, DataTable, Static, TabbedContent, TabPane

from edge.cli.output import describe_job, display_id, dump, printable, transfer_text
from edge.download import DownloadError, completed, default_output_dir, download_job
from edge.models import Execution, Job

from ..client import Needs, describe_failure
from ..messages import ActionStarted
from ..views import (
    EXECUTION_COLUMNS,
    HISTORY_COLUMNS,
    RESULT_COLUMNS,
    SortSpec,
    execution_row,
    history_key,
    history_row,
    node_name,
    result_row,
    sort_keys,
    state_style,
)
from ..widgets import LogPane
from ..widgets.table import KeyedTable
from .base import BaseScreen
from .download import DownloadScreen

TABS = ["summary", "spec", "executions", "history", "logs", "results"]


class JobDetailScreen(BaseScreen):
    TITLE_TEXT = "Job"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="job.back"),
        Binding("x", "stop_job", "Stop", id="job.stop"),
        Binding("R", "rerun_job", "Rerun", id="job.rerun"),
        Binding("l", "tab('logs')", "Logs", id="job.logs"),
        Binding("d", "download", "Download", id="job.download"),
        Binding("right_square_bracket", "next_tab(1)", "Next tab", id="job.next_tab"),
        Binding("left_square_bracket", "next_tab(-1)", "Prev tab", show=False, id="job.prev_tab"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.job_id: str | None = None
        self._spec_shown: tuple[str, int] | None = None
        self.downloading = False
        self._download_status = Text()  # progress, or how the last download went
        self._sizes: dict[str, int] = {}  # archive bytes by execution ID, once downloaded

    def compose_body(self) -> ComposeResult:
        yield Static(id="job-title")
        with TabbedContent(id="job-tabs", initial="summary"):
            with TabPane("Summary", id="summary"), VerticalScroll():
                yield Static(id="job-summary")
            with TabPane("Spec", id="spec"), VerticalScroll():
                yield Static(id="job-spec")
            with TabPane("Executions", id="executions"):
                yield KeyedTable(EXECUTION_COLUMNS, id="job-executions")
            with TabPane("History", id="history"):
                yield KeyedTable(HISTORY_COLUMNS, id="job-history")
            with TabPane("Logs", id="logs"):
                yield LogPane(self.bapp.log_lines, id="job-logs")
            with TabPane("Results", id="results"):
                with Horizontal(id="results-bar"):
                    yield Button("Download (d)", id="download", compact=True)
                    yield Static(id="results-status")
                yield KeyedTable(RESULT_COLUMNS, id="job-results")

    def show(self, job_id: str) -> None:
        """Point the screen at a job (the app then polls its detail at once)."""
        if job_id != self.job_id:
            self.job_id = job_id
            self._spec_shown = None
            if not self.downloading:
                self._download_status = Text()
            if self.is_mounted:
                self.query_one("#job-logs", LogPane).close()
                self.bapp.redraw(self)

    def needs(self) -> Needs:
        return Needs(job=self.job_id) if self.job_id else Needs()

    @property
    def tabs(self) -> TabbedContent:
        return self.query_one("#job-tabs", TabbedContent)

    def refresh_data(self) -> None:
        if not self.is_mounted:
            return
        data = self.bapp.data
        title = self.query_one("#job-title", Static)
        if self.job_id is None:
            title.update(Text(" No job selected: press 2 for jobs, then Enter on one.", "yellow"))
            return
        detail = data.detail
        job: Job | None = None
        if detail is not None and self.job_id in (detail.job.ID, detail.job.Name):
            job = detail.job
        if job is None:
            job = data.jobs.get(self.job_id)
        if job is None:
            message = data.detail_error or "loading…"
            title.update(Text(f" {self.job_id}: {message}", "yellow"))
            return
        self.bapp.title_suffix = {**self.bapp.title_suffix, "Job": display_id(job.ID)}
        state = job.State.StateType.value
        head = Text(" ")
        head.append(printable(job.Name or job.ID), "bold")
        head.append(f"  {job.ID}  ", "dim")
        head.append(state, state_style(state))
        if job.State.Message:
            head.append(f"  {printable(job.State.Message)}")
        title.update(head)
        executions = detail.executions if detail is not None and detail.job.ID == job.ID else []
        history = detail.history if detail is not None and detail.job.ID == job.ID else []
        now = self.now_ns()
        self.query_one("#job-summary", Static).update(
            Text(describe_job(job, None, executions, colour=False, now_ns=now))
        )
        spec_key = (job.ID, job.Version)
        if self._spec_shown != spec_key:
            spec = dump(job, "yaml")
            self.query_one("#job-spec", Static).update(
                Syntax(spec, "yaml", theme="ansi_dark", word_wrap=False, background_color="default")
            )
            self._spec_shown = spec_key
        rows = {
            e.ID: execution_row(e, job.Name or display_id(job.ID), self._node(e.NodeID), now)
            for e in executions
            if e.ID
        }
        self.query_one("#job-executions", KeyedTable).apply(
            rows, sort_keys(rows, EXECUTION_COLUMNS, SortSpec("age", reverse=True))
        )
        items = {history_key(i, h): history_row(h) for i, h in enumerate(history)}
        self.query_one("#job-history", KeyedTable).apply(items, list(items))
        results = {
            e.ID: result_row(e, self._node(e.NodeID), self._sizes.get(e.ID))
            for e in completed(executions)
            if e.ID
        }
        self.query_one("#job-results", KeyedTable).apply(results, list(results))
        self._show_download_status(len(results))
        if self.tabs.active == "logs":
            self.query_one("#job-logs", LogPane).open(job.ID)

    def _node(self, node_id: str) -> str:
        node = self.bapp.data.nodes.get(node_id)
        return (node_name(node) if node is not None else "") or display_id(node_id)

    @on(TabbedContent.TabActivated)
    def _tab_changed(self, event: TabbedContent.TabActivated) -> None:
        pane = self.query_one("#job-logs", LogPane)
        if event.pane.id == "logs" and self.job_id:
            job = self.bapp.data.jobs.get(self.job_id)
            pane.open(job.ID if job is not None else self.job_id)
            pane.view.focus()
        else:
            pane.close()
            pane.job_id = None

    @on(DataTable.RowHighlighted, "#job-executions")
    def _execution_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value:
            self.bapp.selected_execution = str(event.row_key.value)

    @on(DataTable.RowSelected, "#job-executions")
    def _execution_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if self.job_id and event.row_key.value:
            self.bapp.open_logs(self.job_id, str(event.row_key.value))

    def action_tab(self, tab: str) -> None:
        self.tabs.active = tab

    def action_next_tab(self, step: int) -> None:
        current = TABS.index(self.tabs.active) if self.tabs.active in TABS else 0
        self.tabs.active = TABS[(current + step) % len(TABS)]

    def action_back(self) -> None:
        self.bapp.go_back()

    def _job(self) -> Job | None:
        return self.bapp.data.jobs.get(self.job_id or "")

    def action_stop_job(self) -> None:
        job = self._job()
        if job is not None:
            self.bapp.confirm_stop(job)

    def action_rerun_job(self) -> None:
        job = self._job()
        if job is not None:
            self.bapp.confirm_rerun(job)

    # -- results ------------------------------------------------------------------
    def _show_download_status(self, results: int) -> None:
        text = self._download_status
        if not text and not results:
            text = Text(" No completed execution yet: results show here once one completes.")
        elif not text:
            what = f"{results} completed execution{'s' if results != 1 else ''}"
            text = Text(f" {what}: download into a folder, as bacedge job get", "dim")
        self.query_one("#results-status", Static).update(text)

    def _set_download_status(self, text: str, style: str = "") -> None:
        self._download_status = Text(f" {text}", style)
        if self.is_mounted:
            self.query_one("#results-status", Static).update(self._download_status)

    def _get_command(self, job_id: str, folder: str, overwrite: bool) -> list[str]:
        force = ["--force"] if overwrite else []
        return self.bapp.cli("job", "get", job_id, "--output-dir", folder, *force)

    @on(Button.Pressed, "#download")
    def _download_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_download()

    def action_download(self) -> None:
        """Ask for a folder (default `./job-<id>`), then download in a worker thread."""
        if self.job_id is None:
            return
        self.tabs.active = "results"
        if self.downloading:
            self.notify("A download is running", severity="warning", timeout=3, markup=False)
            return
        job = self._job()
        job_id = job.ID if job is not None else self.job_id
        name = job.Name if job is not None and job.Name else display_id(job_id)
        done = len(completed(self._executions(job_id)))
        question = (
            f"Download the results of job {name} ({job_id}): {done} completed "
            f"execution{'s' if done != 1 else ''}; several get a sub-folder each."
        )
        folder = f"./{default_output_dir(job_id).name}"

        def answered(answer: tuple[str, bool] | None) -> None:
            if answer is not None:
                self._start_download(job_id, *answer)

        self.app.push_screen(
            DownloadScreen(question, folder, partial(self._get_command, job_id)), answered
        )

    def _executions(self, job_id: str) -> list[Execution]:
        detail = self.bapp.data.detail
        if detail is not None and detail.job.ID == job_id:
            return detail.executions
        return self.bapp.data.executions.get(job_id, [])

    def _start_download(self, job_id: str, folder: str, overwrite: bool) -> None:
        out = Path(folder).expanduser().absolute()
        command = shlex.join(self._get_command(job_id, folder, overwrite))
        self.downloading = True
        self._set_download_status(f"Downloading into {out}…", "bold")
        self.bapp.post_message(ActionStarted(command))
        self.run_worker(
            partial(self._download, job_id, out, overwrite, command),
            name="download",
            group="download",
            thread=True,
            exit_on_error=False,
        )

    def _download(self, job_id: str, out: Path, overwrite: bool, command: str) -> None:
        """Runs in a worker thread; everything it shows goes through `call_from_thread`."""
        sizes: dict[str, int] = {}

        def progress(execution_id: str, done: int, total: int | None) -> None:
            sizes[execution_id] = total or done
            text = f"Downloading into {out}: {transfer_text(execution_id, done, total)}"
            self.app.call_from_thread(self._set_download_status, text, "bold")

        try:
            with self.bapp.target.sync_client() as client:
                report = download_job(client, job_id, out, overwrite, progress)
        except DownloadError as exc:
            ok, message = False, str(exc)
        except OSError as exc:
            ok, message = False, f"cannot write into {out}: {exc.strerror or exc}"
        except Exception as exc:  # a download must never take the TUI down
            ok, message = False, describe_failure(exc)
        else:
            count = len(report)
            ok, message = True, f"Downloaded {count} execution{'s' if count != 1 else ''} to {out}"
        self.app.call_from_thread(self._downloaded, ok, message, command, sizes)

    def _downloaded(self, ok: bool, message: str, command: str, sizes: dict[str, int]) -> None:
        self.downloading = False
        self._sizes.update(sizes)
        if ok:
            self._set_download_status(f"✔ {message}", "green")
        else:
            self._set_download_status(f"✘ {message}", "bold red")
        self.bapp.record_action("Download results", command, ok, message)
        self.bapp.redraw(self)
