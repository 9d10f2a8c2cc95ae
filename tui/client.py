"""How the TUI talks to an orchestrator: only through `edge.client.AsyncApiClient`.

`ApiLike` is the part of AsyncApiClient the TUI uses, so tests can feed the app canned data
through the same interface. `Fetcher` turns that API into snapshots: the first sync of the
job list is paged (the first page paints at once), later polls only ask for the jobs
modified since the last one, and executions are fetched per job, only for the jobs a screen
needs, and cached until the job changes. Fetching never mutates shared state: a poll returns
a `PollResult` that the app applies in one step on its own loop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

from edge.auth import ADMIN
from edge.client import ApiClient, ApiError, ApiUnreachable, AsyncApiClient
from edge.models import Execution, Job, JobHistory, NodeState
from edge.models.compat import Server, server_from_version

__all__ = [
    "ApiLike",
    "Backoff",
    "ClusterTarget",
    "Fetcher",
    "Needs",
    "PollResult",
    "describe_failure",
]

FIRST_PAGE = 500  # jobs on the first page of a full sync: enough to fill any screen
BULK_PAGE = 1000  # later pages; small enough that parsing one never stalls the UI for long
DELTA_PAGE = 250  # pages of the incremental sync (jobs ordered by modification, newest first)
DELTA_OVERLAP_NS = 30 * 10**9  # re-read this much before the newest change seen: clock skew
FULL_RESYNC_S = 300.0  # a full sync now and then drops jobs the server no longer has
EXEC_FETCH_LIMIT = 64  # job execution lists fetched per poll at most
EXEC_CONCURRENCY = 8
EXEC_SETTLE_NS = 60 * 10**9  # a job finished this recently may still see executions change


class ApiLike(Protocol):
    """What the TUI needs from an API client (AsyncApiClient implements it)."""

    base_url: str

    async def list_jobs(
        self,
        namespace: str | None = None,
        limit: int | None = None,
        next_token: str | None = None,
        order_by: str | None = None,
        reverse: bool = False,
        labels: str | Sequence[str] | Mapping[str, str] | None = None,
    ) -> tuple[list[Job], str | None]: ...

    async def get_job(
        self, job_id: str, include: Sequence[str] = ()
    ) -> tuple[Job, list[JobHistory] | None, list[Execution] | None]: ...

    async def job_executions(self, job_id: str) -> list[Execution]: ...

    async def job_history(
        self,
        job_id: str,
        since: int | str | None = None,
        event_type: str | None = None,
        execution_id: str | None = None,
    ) -> list[JobHistory]: ...

    async def list_nodes(
        self,
        limit: int | None = None,
        next_token: str | None = None,
        order_by: str | None = None,
        reverse: bool = False,
        labels: str | Sequence[str] | Mapping[str, str] | None = None,
        filter_approval: str | None = None,
        filter_status: str | None = None,
    ) -> tuple[list[NodeState], str | None]: ...

    async def put_job(self, job: Mapping[str, Any], force: bool = False) -> dict[str, Any]: ...

    async def stop_job(self, job_id: str, reason: str | None = None) -> dict[str, Any]: ...

    async def rerun_job(self, job_id: str) -> dict[str, Any]: ...

    async def node_action(
        self,
        node_id: str,
        action: str,
        message: str | None = None,
        deadline: str | None = None,
    ) -> dict[str, Any]: ...

    async def agent_version(self) -> dict[str, Any]: ...

    async def agent_capabilities(self) -> dict[str, Any]: ...

    def stream_logs(
        self,
        job_id: str,
        execution_id: str | None = None,
        tail: bool | int = False,
        follow: bool = False,
    ) -> AsyncIterator[tuple[int, str]]: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True)
class ClusterTarget:
    """The cluster the TUI attaches to: address, credentials, TLS, and a name to show."""

    api: str
    api_key: str | None = None
    username: str | None = None
    password: str | None = None
    verify: bool | str = True
    profile: str | None = None

    @property
    def name(self) -> str:
        """What the header calls this cluster: the profile, else host:port."""
        if self.profile:
            return self.profile
        parts = urlsplit(self.api if "://" in self.api else f"http://{self.api}")
        return parts.netloc or self.api

    def _credentials(self) -> dict[str, Any]:
        return {
            "api_key": self.api_key,
            "username": self.username,
            "password": self.password,
            "verify": self.verify,
        }

    def client(self, timeout: float = 10.0) -> AsyncApiClient:
        """The TUI's client. It reads the server's version itself (`Fetcher`), so that
        executions wait for a poll that knows it; the client leaves states as sent."""
        return AsyncApiClient(self.api, timeout=timeout, by_version=False, **self._credentials())

    def sync_client(self, timeout: float = 30.0) -> ApiClient:
        """A blocking client for work in a thread: downloading results with `edge.download`,
        as `bacedge job get` does (it reads states by the server's version itself)."""
        return ApiClient(self.api, timeout=timeout, **self._credentials())

    def cli_flags(self) -> list[str]:
        """The flags a CLI command needs to reach the same cluster (secrets left out)."""
        if self.profile:
            return ["--profile", self.profile]
        return ["--api", self.api]


@dataclass(frozen=True)
class Needs:
    """What the active screen wants from the next poll beyond jobs and nodes."""

    executions_for: tuple[str, ...] = ()  # job IDs whose executions should be current
    recent_executions: int = 0  # also the executions of this many recently modified jobs
    job: str | None = None  # a job's detail: history and executions


@dataclass
class JobDetail:
    job: Job
    history: list[JobHistory]
    executions: list[Execution]


@dataclass
class PollResult:
    """One poll's answers; the app applies it in one step."""

    jobs: list[Job] = field(default_factory=list)
    jobs_replace: bool = False  # a completed full sync: jobs not in `seen` are gone
    jobs_seen: set[str] = field(default_factory=set)
    jobs_complete: bool = True  # False while a full sync still has pages to fetch
    next_token: str | None = None
    incremental: bool | None = None  # whether the server can order by modification time
    nodes: list[NodeState] | None = None
    executions: dict[str, list[Execution]] = field(default_factory=dict)
    executions_marks: dict[str, int] = field(default_factory=dict)
    detail: JobDetail | None = None
    detail_error: str = ""
    server: Server | None = None  # set by the poll that asked the server's version
    allowed: frozenset[str] | None = None  # set by the poll that asked what the key may do
    version: str | None = None  # what the header shows of it
    fetched_at: float = 0.0
    seconds: float = 0.0


class Fetcher:
    """Builds PollResults from an ApiLike; holds only how far syncing has got."""

    def __init__(self, api: ApiLike) -> None:
        self.api = api
        self.incremental: bool | None = None  # unknown until a server answers
        self.sync_token: str | None = None  # next page of a full sync in progress
        self.sync_seen: set[str] = set()
        self.synced_at = 0.0  # monotonic time of the last completed full sync
        self.watermark = 0  # newest job ModifyTime seen (server clock, ns)
        self.server: Server | None = None  # None until the server's version is known
        self.allowed: frozenset[str] | None = None  # None until the server said

    def start_full_sync(self) -> None:
        """The next polls re-read every job (after a reconnect, or now and then)."""
        self.sync_token = None
        self.sync_seen = set()
        self.synced_at = 0.0

    @property
    def syncing(self) -> bool:
        return self.synced_at == 0.0

    async def poll(
        self,
        needs: Needs,
        jobs: Mapping[str, Job],
        marks: Mapping[str, int],
        now_ns: int,
    ) -> PollResult:
        """Fetch what changed. `jobs` and `marks` are the app's current data (read only)."""
        started = time.monotonic()
        result = PollResult()
        if self.server is None:
            result.server = await self._ask_server()
            result.version = result.server.label if result.server is not None else None
        if self.allowed is None:
            result.allowed = await self._ask_allowed()
        if self.syncing and self.sync_token is not None:
            # The rest of a full sync: only the next page, so the whole list arrives fast;
            # nodes and details were fetched with the first page and come with the next poll.
            await self._sync_page(result)
            result.fetched_at = time.time()
            result.seconds = time.monotonic() - started
            return result
        if self.syncing or time.monotonic() - self.synced_at > FULL_RESYNC_S:
            if not self.syncing:
                self.start_full_sync()
            await self._sync_page(result)
        else:
            await self._delta(result)
        nodes, _ = await self.api.list_nodes()
        result.nodes = nodes
        known = dict(jobs)
        for job in result.jobs:
            known[job.ID] = job
        # What an execution's state means depends on the server's version: without it
        # (its /version failed for now), executions wait for a poll that knows it.
        server_known = result.server is not None or self.server is not None
        if needs.job and server_known:
            await self._detail(needs.job, result)
        if server_known:
            wanted = self._executions_wanted(needs, known, marks, now_ns)
            await self._executions(wanted, known, result)
        result.fetched_at = time.time()
        result.seconds = time.monotonic() - started
        return result

    def commit(self, result: PollResult) -> None:
        """Record what an applied result means for the next poll."""
        if result.server is not None:
            self.server = result.server
        if result.allowed is not None:
            self.allowed = result.allowed
        if result.incremental is not None:
            self.incremental = result.incremental
        for job in result.jobs:
            self.watermark = max(self.watermark, job.ModifyTime)
        if self.syncing:
            self.sync_seen |= result.jobs_seen
            self.sync_token = result.next_token
            if result.jobs_complete:
                self.synced_at = time.monotonic()
                self.sync_seen = set()

    async def _ask_server(self) -> Server | None:
        """What the server is, from its version; asked again next poll when it could not
        answer now (what its executions' states mean depends on it)."""
        try:
            return server_from_version(await self.api.agent_version())
        except ApiUnreachable:  # a dropped connection: the next poll asks again
            return None
        except Exception:  # no such endpoint, not allowed, not a version: read as bacedge's
            return Server()

    async def _ask_allowed(self) -> frozenset[str] | None:
        """The actions these credentials allow (bacedge's `/agent/capabilities`); None to
        ask again next poll (unreachable, or refused: the poll itself then says why). A
        server without the endpoint (Bacalhau) is offered every action: it refuses what
        the credentials may not do, and the TUI shows its answer."""
        try:
            answer = await self.api.agent_capabilities()
        except ApiUnreachable:
            return None
        except ApiError as exc:
            return None if exc.status == 401 else ADMIN
        except Exception:  # not JSON, not an object: not bacedge's answer
            return ADMIN
        actions = answer.get("Actions")
        if not isinstance(actions, list):
            return ADMIN
        return frozenset(a for a in actions if isinstance(a, str))

    def _server(self, result: PollResult) -> Server:
        return result.server or self.server or Server()

    # -- jobs -----------------------------------------------------------------
    async def _sync_page(self, result: PollResult) -> None:
        limit = FIRST_PAGE if self.sync_token is None else BULK_PAGE
        jobs, token = await self.api.list_jobs(limit=limit, next_token=self.sync_token)
        result.jobs = jobs
        result.jobs_seen = {j.ID for j in jobs}
        result.next_token = token
        result.jobs_complete = not token or token == self.sync_token
        if result.jobs_complete:
            result.jobs_replace = True
            result.jobs_seen |= self.sync_seen

    async def _delta(self, result: PollResult) -> None:
        """Jobs modified since the newest change seen, newest first, until older ones."""
        if self.incremental is False:
            await self._everything(result)
            return
        floor = self.watermark - DELTA_OVERLAP_NS
        token: str | None = None
        out: list[Job] = []
        for _ in range(10_000):
            try:
                jobs, next_token = await self.api.list_jobs(
                    limit=DELTA_PAGE, next_token=token, order_by="modified_at"
                )
            except ApiError as exc:
                if exc.status in (400, 404, 405, 422):  # a server without this ordering
                    result.incremental = False
                    await self._everything(result)
                    return
                raise
            result.incremental = True
            out.extend(jobs)
            if not jobs or not next_token or next_token == token:
                break
            if min(j.ModifyTime for j in jobs) < floor:
                break
            token = next_token
        result.jobs = [j for j in out if j.ModifyTime >= floor]

    async def _everything(self, result: PollResult) -> None:
        """The whole list again, for servers that cannot list by modification time."""
        token: str | None = None
        out: list[Job] = []
        for _ in range(10_000):
            jobs, next_token = await self.api.list_jobs(limit=BULK_PAGE, next_token=token)
            out.extend(jobs)
            if not next_token or next_token == token:
                break
            token = next_token
        result.jobs = out
        result.jobs_replace = True
        result.jobs_seen = {j.ID for j in out}

    # -- details --------------------------------------------------------------
    async def _detail(self, job_id: str, result: PollResult) -> None:
        try:
            job, history, executions = await self.api.get_job(
                job_id, include=("history", "executions")
            )
        except ApiError as exc:
            result.detail_error = exc.message or f"HTTP {exc.status}"
            return
        ref = job.ID or job_id
        if history is None:  # servers that ignore `include` still have the endpoints
            history = await self.api.job_history(ref)
        if executions is None:
            executions = await self.api.job_executions(ref)
        server = self._server(result)
        history, executions = server.history(history), server.executions(executions)
        result.detail = JobDetail(job, history, executions)
        result.executions[ref] = executions
        result.executions_marks[ref] = job.ModifyTime
        if job.ID:
            result.jobs.append(job)

    @staticmethod
    def _executions_wanted(
        needs: Needs, jobs: Mapping[str, Job], marks: Mapping[str, int], now_ns: int
    ) -> list[str]:
        """Job IDs whose execution lists are missing or may have changed, most useful first."""

        def stale(job_id: str) -> bool:
            job = jobs.get(job_id)
            if job is None:
                return False
            if job_id not in marks or marks[job_id] != job.ModifyTime:
                return True
            state = job.State.StateType
            return not state.terminal or now_ns - job.ModifyTime < EXEC_SETTLE_NS

        wanted: list[str] = []
        seen: set[str] = set()

        def add(job_id: str) -> None:
            if job_id not in seen and stale(job_id):
                seen.add(job_id)
                wanted.append(job_id)

        for job_id in needs.executions_for:
            add(job_id)
        if needs.recent_executions:
            active = [j for j in jobs.values() if not j.State.StateType.terminal]
            recent = sorted(jobs.values(), key=lambda j: j.ModifyTime, reverse=True)
            for job in [*active, *recent[: needs.recent_executions]]:
                add(job.ID)
        if needs.job:
            seen.add(needs.job)  # fetched with the detail
            wanted = [w for w in wanted if w != needs.job]
        return wanted[:EXEC_FETCH_LIMIT]

    async def _executions(
        self, wanted: list[str], jobs: Mapping[str, Job], result: PollResult
    ) -> None:
        if not wanted:
            return
        gate = asyncio.Semaphore(EXEC_CONCURRENCY)

        async def one(job_id: str) -> None:
            async with gate:
                try:
                    executions = await self.api.job_executions(job_id)
                except ApiError as exc:
                    if exc.status == 404:  # the job is gone; drop what we had
                        result.executions[job_id] = []
                        result.executions_marks[job_id] = -1
                        return
                    raise
            result.executions[job_id] = self._server(result).executions(executions)
            job = jobs.get(job_id)
            result.executions_marks[job_id] = job.ModifyTime if job is not None else 0

        await asyncio.gather(*(one(j) for j in wanted))


def describe_failure(exc: BaseException) -> str:
    """One line for the banner or a notification; field problems appended when sent."""
    if isinstance(exc, ApiUnreachable):
        return exc.message
    if isinstance(exc, ApiError):
        return exc.describe("set an API key: --api-key or the profile's api_key")
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class Backoff:
    """Retry delays after failures: 1, 2, 4 ... up to `cap` seconds; reset on success."""

    def __init__(self, first: float = 1.0, cap: float = 15.0) -> None:
        self.first = first
        self.cap = cap
        self.failures = 0

    def next(self) -> float:
        delay = min(self.cap, self.first * (2**self.failures))
        self.failures += 1
        return float(delay)

    def reset(self) -> None:
        self.failures = 0
