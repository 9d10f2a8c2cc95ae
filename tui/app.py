"""The bacedge TUI: one App, six screens (as Textual modes), one poll loop.

The poll loop follows Dolphie: a worker fetches (`Fetcher.poll`), and when it ends
`on_worker_state_changed` applies the result to `ClusterData`, redraws the active screen
from it and arms a timer for the next poll, so polls never overlap. A failed poll keeps
the data it had, raises the disconnected banner and retries with backoff; the first good
poll after that restores everything without user action.

Where the server offers `GET .../events` (bacedge; a Bacalhau server answers 404 and the TUI
just polls), a second worker follows it: each job, execution or node event is a hint to
poll soon (bursts coalesce into one poll), and the regular poll slows to a safety net.
The data still comes from the poll; the stream never changes what is shown by itself.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from textual.app import App
from textual.binding import Binding, BindingType
from textual.reactive import reactive
from textual.screen import Screen
from textual.timer import Timer
from textual.worker import Worker, WorkerState

from edge.cli.output import display_id
from edge.client import ApiError, ApiUnreachable, ClientError
from edge.models import Job, NodeState

from .actions import ActionSpec, node_action
from .client import (
    ApiLike,
    Backoff,
    ClusterTarget,
    Fetcher,
    Needs,
    PollResult,
    describe_failure,
)
from .commands import BacedgeCommands
from .data import ClusterData
from .messages import ActionFinished, ActionStarted, DataRefreshed, LinkChanged
from .screens import (
    WRITE_ACTIONS,
    BaseScreen,
    CommandLogScreen,
    ConfirmScreen,
    ExecutionsScreen,
    HelpScreen,
    JobDetailScreen,
    JobsScreen,
    LogsScreen,
    NodeDetailScreen,
    NodesScreen,
    OverviewScreen,
    SubmitScreen,
)
from .screens.help import binding_rows
from .state import CommandEntry, Link

__all__ = ["BacedgeApp"]

EVENT_POLL_DELAY = 0.25  # s from an event to the poll it asks for (a burst shares one poll)
SAFETY_POLL = 10.0  # s between polls while the event stream is followed

# (key, mode, title): the number keys, in the order of the screen list.
SCREENS: list[tuple[str, str, str, type[BaseScreen]]] = [
    ("1", "overview", "Overview", OverviewScreen),
    ("2", "jobs", "Jobs", JobsScreen),
    ("3", "job", "Job detail", JobDetailScreen),
    ("4", "executions", "Executions", ExecutionsScreen),
    ("5", "nodes", "Nodes", NodesScreen),
    ("6", "logs", "Logs", LogsScreen),
]
_SCREENS_GROUP = Binding.Group("Screens", compact=True)


class BacedgeApp(App[None]):
    CSS_PATH = "bacedge.tcss"
    TITLE = "bacedge"
    COMMANDS = App.COMMANDS | {BacedgeCommands}
    BINDINGS: ClassVar[list[BindingType]] = [
        *(
            Binding(key, f"show('{mode}')", title, group=_SCREENS_GROUP, id=f"app.screen_{mode}")
            for key, mode, title, _ in SCREENS
        ),
        Binding("ctrl+r", "refresh_now", "Refresh", id="app.refresh"),
        Binding("p", "toggle_pause", "Pause", id="app.pause"),
        Binding("ctrl+n", "submit_job", "Submit", id="app.submit"),
        Binding("c", "command_log", "Cmd log", show=False, id="app.command_log"),
        Binding("question_mark", "help", "Help", id="app.help"),
        Binding("q", "quit", "Quit", id="app.quit"),
    ]

    link: reactive[Link] = reactive(Link)
    paused: reactive[bool] = reactive(False)
    generation: reactive[int] = reactive(0)
    title_suffix: reactive[dict[str, str]] = reactive(dict)

    def __init__(
        self,
        target: ClusterTarget,
        *,
        api: ApiLike | None = None,
        read_only: bool = False,
        refresh_interval: float = 2.0,
        log_lines: int = 100_000,
        clock: Callable[[], float] = time.time,
        start: str = "overview",
        keymap: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.target = target
        self.api: ApiLike = api if api is not None else target.client()
        self._owns_api = api is None
        self.read_only = read_only
        # What the credentials allow (edge.auth.ACTIONS); None until the server says, and
        # until then no action that changes the cluster is offered.
        self.allowed: frozenset[str] | None = None
        self.refresh_interval = max(0.2, refresh_interval)
        self.log_lines = log_lines
        self.clock = clock
        self.start_mode = start
        self.fetcher = Fetcher(self.api)
        self.data = ClusterData()
        self.selected_job: str | None = None
        self.selected_execution: str | None = None
        self.selected_node: str | None = None  # the nodes table's cursor, or the detail's
        self.log_target: tuple[str, str | None] | None = None
        self.command_log: list[CommandEntry] = []
        self.timings: dict[str, float] = {}
        self._started = time.perf_counter()
        self._screens: dict[str, BaseScreen] = {}
        self._previous_mode = "overview"
        self._poll_worker: Worker[PollResult] | None = None
        self._poll_timer: Timer | None = None
        self._poll_again = False
        self._poll_due: float | None = None  # monotonic time the armed poll timer fires
        self._hinted = False  # an event arrived during a poll: poll again soon after it
        self.live_events = False  # the server's event stream is being followed
        self._backoff = Backoff(1.0, 15.0)
        for _, mode, _, screen_class in SCREENS:
            self.add_mode(mode, self._screen_factory(mode, screen_class))
        if keymap:
            self.set_keymap(dict(keymap))

    def _screen_factory(
        self, mode: str, screen_class: type[BaseScreen]
    ) -> Callable[[], Screen[Any]]:
        def make() -> Screen[Any]:
            screen = screen_class()
            self._screens[mode] = screen
            return screen

        return make

    def on_mount(self) -> None:
        self.theme = "textual-dark"
        self.switch_mode(self.start_mode)
        self.poll_now()
        if callable(getattr(self.api, "follow_events", None)):
            self.run_worker(
                self._follow_events(), name="events", group="events", exit_on_error=False
            )

    async def on_unmount(self) -> None:
        if self._owns_api:
            await self.api.aclose()

    # -- clock and screens ------------------------------------------------------
    def now_ns(self) -> int:
        return int(self.clock() * 1e9)

    @staticmethod
    def screen_keys() -> list[tuple[str, str, str]]:
        return [(key, mode, title) for key, mode, title, _ in SCREENS]

    def data_screen(self) -> BaseScreen | None:
        """The main screen on show (under any dialog), which the data is drawn on."""
        for screen in reversed(self.screen_stack):
            if isinstance(screen, BaseScreen):
                return screen
        return None

    def screen_changed(self, screen: BaseScreen) -> None:
        """A main screen came to the front: fetch what it needs now, not in 2 s."""
        if self.data.loaded:
            self.poll_now()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return self.may(action)

    def can(self, capability: str) -> bool:
        """Whether the user may do what `capability` covers: not read-only, and the
        credentials allow it (as far as the server said)."""
        return not self.read_only and self.allowed is not None and capability in self.allowed

    def may(self, action: str) -> bool:
        """Whether a key binding's action is offered (changes need their capability)."""
        needed = WRITE_ACTIONS.get(action)
        return needed is None or self.can(needed)

    def limits_note(self) -> str:
        """Why actions are missing, for the help screen; "" when none is."""
        if self.read_only:
            return "Read-only: actions that change the cluster are off."
        if self.allowed is None:
            return "Actions that change the cluster appear once the orchestrator answers."
        missing = [c for c in ("write:job", "write:node") if c not in self.allowed]
        if missing:
            return f"These credentials lack {' and '.join(missing)}: those actions are off."
        return ""

    # -- polling ----------------------------------------------------------------
    def needs(self) -> Needs:
        screen = self.data_screen()
        try:
            return screen.needs() if screen is not None else Needs()
        except Exception as exc:  # a screen half set up must not stop the polling
            self.log.error(f"needs() failed: {exc!r}")
            return Needs()

    def poll_now(self) -> None:
        """Start a poll now, or right after the one running (polls never overlap)."""
        if self._poll_timer is not None:
            self._poll_timer.stop()
            self._poll_timer = None
        if self._poll_worker is not None and not self._poll_worker.is_finished:
            self._poll_again = True
            return
        self._poll_again = False
        needs = self.needs()
        self._poll_worker = self.run_worker(
            self.fetcher.poll(needs, self.data.jobs, self.data.executions_marks, self.now_ns()),
            name="poll",
            group="poll",
            exit_on_error=False,
        )

    def _schedule(self, delay: float) -> None:
        if self._poll_timer is not None:
            self._poll_timer.stop()
        self._poll_due = time.monotonic() + delay
        self._poll_timer = self.set_timer(delay, self.poll_now, name="poll-timer")

    # -- the event stream: hints to poll now --------------------------------------
    async def _follow_events(self) -> None:
        """Follow the server's event stream while it offers one; reconnect with backoff.
        404/405 (a Bacalhau server), 401/403: no stream, the TUI polls as before."""
        follow = self.api.follow_events  # type: ignore[attr-defined]
        delay = 1.0
        while True:
            try:
                async for event in follow(types=["job", "execution", "node"]):
                    self.live_events = True
                    delay = 1.0
                    if event.get("Type") != "overflow":
                        self._event_hint()
            except ApiError as exc:
                if exc.status in (401, 403, 404, 405, 501):
                    self.live_events = False
                    return
            except Exception as exc:  # unreachable, cut off: the poll shows the link
                self.log.info(f"event stream ended: {exc!r}")
            self.live_events = False
            self._event_hint()  # re-sync: what happened while the stream was down
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)

    def _event_hint(self) -> None:
        if self.paused or not self.link.ok:
            return
        if self._poll_worker is not None and not self._poll_worker.is_finished:
            self._hinted = True
            return
        due = self._poll_due
        if due is not None and self._poll_timer is not None and due - time.monotonic() <= 0.3:
            return  # a poll comes soon anyway
        self._schedule(EVENT_POLL_DELAY)

    @property
    def poll_interval(self) -> float:
        """Between polls: slower (a safety net) while events say when to poll."""
        if self.live_events:
            return max(self.refresh_interval, SAFETY_POLL)
        return self.refresh_interval

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if worker is not self._poll_worker:
            return
        if event.state == WorkerState.SUCCESS:
            result = worker.result
            assert result is not None
            self._poll_worker = None
            self._applied(result)
        elif event.state == WorkerState.ERROR:
            self._poll_worker = None
            self._failed(worker.error or RuntimeError("poll failed"))
        elif event.state == WorkerState.CANCELLED:
            self._poll_worker = None
        else:
            return
        self._next_poll()

    def _next_poll(self) -> None:
        if self._poll_again:
            self.poll_now()
        elif not self.link.ok and self.link.status != "connecting":
            self._schedule(max(0.0, self.link.retry_at - time.monotonic()))
        elif self.paused:
            return
        elif self.fetcher.syncing:
            self._schedule(0.01)  # the rest of a full job list, page by page
        elif self._hinted:
            self._hinted = False
            self._schedule(EVENT_POLL_DELAY)
        else:
            self._schedule(self.poll_interval)

    def _applied(self, result: PollResult) -> None:
        started = time.perf_counter()
        recovering = self.link.status in ("down", "error")
        self.fetcher.commit(result)
        result.fetched_at = self.clock()
        if result.allowed is not None and result.allowed != self.allowed:
            self.allowed = result.allowed
            self.refresh_bindings()
        self.data.apply(result)
        self._backoff.reset()
        if not self.link.ok:
            self.link = Link("ok", last_ok=self.clock())
            self.post_message(LinkChanged(self.link))
        else:
            self.link = Link("ok", last_ok=self.clock())
        if recovering:
            self.fetcher.start_full_sync()  # whatever changed while we were away
            self.notify("Reconnected to the orchestrator", timeout=3, markup=False)
        screen = self.data_screen()
        if screen is not None:
            self.redraw(screen)
        self.generation += 1
        if self.data.jobs and "first_paint" not in self.timings:
            self.timings["first_paint"] = -1.0  # set once the frame with the data is drawn
            self.call_after_refresh(self._painted)
        seconds = time.perf_counter() - started
        self.timings["last_apply"] = seconds
        self.timings.setdefault("first_apply_at", time.perf_counter() - self._started)
        if self.data.jobs_complete:
            self.timings.setdefault("all_jobs_at", time.perf_counter() - self._started)
        self.post_message(DataRefreshed(self.data.generation, seconds))

    def redraw(self, screen: BaseScreen) -> None:
        """Draw a screen from the current data; what cannot be shown is reported, not raised."""
        try:
            screen.refresh_data()
        except Exception as exc:  # bad data must not take the TUI down
            self.log.error(f"cannot show the data: {exc!r}")
            self.notify(
                f"Cannot show some of the data: {type(exc).__name__}: {exc}",
                severity="error",
                timeout=5,
                markup=False,
            )

    def _painted(self) -> None:
        self.timings["first_paint"] = time.perf_counter() - self._started

    def _failed(self, error: BaseException) -> None:
        status = "down" if isinstance(error, ApiUnreachable) else "error"
        if not isinstance(error, ClientError):
            self.log.error(f"poll failed: {error!r}")
        delay = self._backoff.next()
        self.link = Link(
            status,
            describe_failure(error),
            attempt=self._backoff.failures,
            retry_at=time.monotonic() + delay,
            last_ok=self.link.last_ok,
        )
        self.post_message(LinkChanged(self.link))

    # -- app actions --------------------------------------------------------------
    def action_refresh_now(self) -> None:
        if not self.link.ok:
            self.link = Link(
                self.link.status,
                self.link.message,
                self.link.attempt,
                time.monotonic(),
                self.link.last_ok,
            )
        self.poll_now()

    def action_toggle_pause(self) -> None:
        self.paused = not self.paused
        self.notify(
            "Live refresh paused (p resumes)" if self.paused else "Live refresh on",
            timeout=2,
            markup=False,
        )
        if not self.paused:
            self.poll_now()
        elif self._poll_timer is not None and self.link.ok:
            self._poll_timer.stop()
            self._poll_timer = None

    def action_show(self, mode: str) -> None:
        if mode == "job":
            job_id = self._some_job()
            if job_id is None:
                self.notify("No job to show yet", severity="warning", timeout=3, markup=False)
                return
            self.open_job(job_id)
        elif mode == "logs":
            target = self.log_target
            if target is None:
                job_id = self._some_job()
                if job_id is None:
                    self.notify(
                        "No job to show logs of yet", severity="warning", timeout=3, markup=False
                    )
                    return
                target = (job_id, self.selected_execution if job_id == self.selected_job else None)
            self.open_logs(*target)
        else:
            self._switch(mode)

    def _some_job(self) -> str | None:
        if self.selected_job:
            return self.selected_job
        if not self.data.jobs:
            return None
        return max(self.data.jobs.values(), key=lambda j: j.CreateTime).ID

    def _switch(self, mode: str) -> None:
        if self.current_mode != mode:
            self._previous_mode = self.current_mode
            self.switch_mode(mode)

    def go_back(self) -> None:
        """Escape on a detail screen: back where the user came from."""
        back = self._previous_mode
        if back == self.current_mode or back not in self._modes:
            back = "jobs"
        self._switch(back)

    def open_job(self, job_id: str) -> None:
        self.selected_job = job_id
        self._switch("job")
        screen = self._screens.get("job")
        if isinstance(screen, JobDetailScreen):
            screen.show(job_id)
        self.poll_now()

    def download_results(self, job_id: str) -> None:
        """The job's Results tab, and the question where to download them (the palette)."""
        self.open_job(job_id)
        screen = self._screens.get("job")
        if isinstance(screen, JobDetailScreen):
            self.call_after_refresh(screen.action_download)

    def open_node(self, node_id: str) -> None:
        self.selected_node = node_id
        self._switch("nodes")
        if isinstance(self.screen, NodeDetailScreen):
            self.pop_screen()
        self.push_screen(NodeDetailScreen(node_id))

    def open_logs(self, job_id: str, execution_id: str | None = None) -> None:
        self.log_target = (job_id, execution_id)
        self.selected_job = job_id
        was = self.current_mode
        self._switch("logs")
        screen = self._screens.get("logs")
        if was == "logs" and screen is not None:
            self.redraw(screen)

    def action_help(self) -> None:
        rows: list[tuple[str, Binding, str]] = []
        for key, active in self.screen.active_bindings.items():
            binding = active.binding
            if binding.system or not active.enabled:
                continue
            node = active.node
            if isinstance(node, App):
                where = "everywhere"
            elif isinstance(node, BaseScreen):
                where = node.TITLE_TEXT or type(node).__name__
            else:
                where = str(getattr(node, "HELP_GROUP", type(node).__name__))
            rows.append((key, binding, where))
        rank = {"everywhere": 2}
        rows.sort(key=lambda row: rank.get(row[2], 0 if isinstance(row[2], str) else 1))
        table = binding_rows(rows, self.may, self.get_key_display)
        self.push_screen(HelpScreen(table, self.limits_note()))

    def action_command_log(self) -> None:
        self.push_screen(CommandLogScreen(list(self.command_log)))

    # -- write actions --------------------------------------------------------------
    def cli(self, *args: str) -> list[str]:
        """A bacedge command line for the same cluster (credentials are not repeated)."""
        return ["bacedge", *args, *self.target.cli_flags()]

    def confirm_stop(self, job: Job) -> None:
        reason = "stopped from bacedge tui"
        name = job.Name or display_id(job.ID)
        self.confirm(
            ActionSpec(
                "Stop job",
                f"Stop job {name} ({job.ID})? Its executions are cancelled on their nodes.",
                self.cli("job", "stop", job.ID, "--reason", reason),
                "Stop",
                lambda api: api.stop_job(job.ID, reason=reason),
                f"Stop requested for {name}",
            )
        )

    def confirm_rerun(self, job: Job) -> None:
        name = job.Name or display_id(job.ID)
        self.confirm(
            ActionSpec(
                "Rerun job",
                f"Run job {name} ({job.ID}) again with its current spec?",
                self.cli("job", "rerun", job.ID),
                "Rerun",
                lambda api: api.rerun_job(job.ID),
                f"Rerun requested for {name}",
            )
        )

    def confirm_node_action(self, node: NodeState, action: str) -> None:
        """approve, reject, delete, cordon, uncordon or drain, with an optional reason (and
        a drain's deadline) asked in the dialog."""
        self.confirm(node_action(node, action, self.cli))

    def action_submit_job(self) -> None:
        if not self.can("write:job"):
            return
        prefix = ["bacedge", "job", "run", "--no-wait", *self.target.cli_flags()]

        def submitted(answer: tuple[str, dict[str, Any]] | None) -> None:
            if answer is None:
                return
            path, spec = answer
            name = str(spec.get("Name") or spec.get("name") or path)
            self.perform(
                ActionSpec(
                    "Submit job",
                    f"Submit {path}?",
                    [*prefix, path],
                    "Submit",
                    lambda api: api.put_job(spec),
                    f"Submitted {name}",
                )
            )

        self.push_screen(SubmitScreen(prefix), submitted)

    def confirm(self, spec: ActionSpec) -> None:
        """Ask first; nothing is sent unless the user says yes."""
        if not self.can(spec.capability):
            why = (
                "Read-only: actions are disabled"
                if self.read_only
                else f"These credentials lack {spec.capability}"
            )
            self.notify(why, severity="warning", timeout=3, markup=False)
            return

        def answered(answers: dict[str, str] | None) -> None:
            if answers is not None:
                self.perform(spec.with_answers(answers))

        self.push_screen(
            ConfirmScreen(
                spec.title,
                spec.question,
                spec.command_text,
                spec.verb,
                spec.asks,
                lambda answers: spec.with_answers(answers).command_text,
            ),
            answered,
        )

    def perform(self, spec: ActionSpec) -> None:
        if not self.can(spec.capability):
            return
        self.post_message(ActionStarted(spec.command_text))
        self.run_worker(self._execute(spec), group="actions", exit_on_error=False)

    async def _execute(self, spec: ActionSpec) -> None:
        ok, message = True, spec.done
        try:
            answer = await spec.call(self.api)
        except ClientError as exc:
            ok, message = False, describe_failure(exc)
        except Exception as exc:  # an action must never take the TUI down
            ok, message = False, describe_failure(exc)
        else:
            success = answer.get("Success", True) if isinstance(answer, dict) else True
            if success is False:
                ok, message = False, str(answer.get("Error") or "the orchestrator refused")
            else:
                job_id = answer.get("JobID") if isinstance(answer, dict) else None
                if job_id and spec.title == "Submit job":
                    message = f"{spec.done}: {job_id}"
        self.record_action(spec.title, spec.command_text, ok, message)
        self.poll_now()

    def record_action(self, title: str, command: str, ok: bool, message: str) -> None:
        """How an action went: into the command log, a notification, and ActionFinished."""
        entry = CommandEntry(self.clock(), command, ok, message)
        self.command_log.append(entry)
        self.notify(
            f"{message}\n$ {command}",
            title=title,
            severity="information" if ok else "error",
            timeout=6,
            markup=False,
        )
        self.post_message(ActionFinished(entry))
