"""The durable job store: SQLite in WAL mode, every call on one dedicated thread.

One thread owns the connection, so writes are serialised without locks and the
event loop never blocks on disk. Callers batch related writes into one
transaction (`save`), which is what makes hundreds of jobs a second affordable.

`synchronous=FULL`: a `save` returns only once its transaction is fsynced, so what the
API acknowledged (a 200 for a submission) and what the orchestrator acknowledged to a
node (an update batch) survives a kill -9 and a power cut alike. Concurrent saves are
group-committed, so the fsync is paid once per transaction, not once per job.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from edge import selectors
from edge.models import (
    ComputeStateType,
    Evaluation,
    Execution,
    Job,
    JobHistory,
    JobStateType,
    JobType,
    NodeState,
)
from edge.sqlite import SqliteThread

from .errors import BadRequest, NotFound, quoted
from .history import HistoryRow

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, namespace TEXT NOT NULL, type TEXT NOT NULL,
    state TEXT NOT NULL, create_time INTEGER NOT NULL, modify_time INTEGER NOT NULL,
    labels TEXT NOT NULL, data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_name ON jobs(namespace, name);
CREATE INDEX IF NOT EXISTS jobs_created ON jobs(create_time);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state);
CREATE TABLE IF NOT EXISTS job_versions (
    job_id TEXT NOT NULL, version INTEGER NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (job_id, version)
);
CREATE TABLE IF NOT EXISTS executions (
    id TEXT PRIMARY KEY, job_id TEXT NOT NULL, node_id TEXT NOT NULL, state INTEGER NOT NULL,
    create_time INTEGER NOT NULL, modify_time INTEGER NOT NULL, data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS executions_job ON executions(job_id);
DROP INDEX IF EXISTS executions_state; -- no query reads it; every state change paid it
CREATE TABLE IF NOT EXISTS history (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, job_id TEXT NOT NULL, execution_id TEXT NOT NULL,
    type TEXT NOT NULL, time TEXT NOT NULL, data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS history_job ON history(job_id, seq);
CREATE TABLE IF NOT EXISTS evaluations (
    id TEXT PRIMARY KEY, job_id TEXT NOT NULL, data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS evaluations_job ON evaluations(job_id);
CREATE TABLE IF NOT EXISTS nodes (id TEXT PRIMARY KEY, data TEXT NOT NULL);
"""

TERMINAL_JOB_STATES = ("Completed", "Failed", "Stopped")
LIST_PAGE_BYTES = 16 << 20  # of job specs in one listing page, beyond its first job
LONG_RUNNING_TYPES = (JobType.DAEMON.value, JobType.SERVICE.value)
REJECTED_STATES = (ComputeStateType.BID_REJECTED, ComputeStateType.ASK_FOR_BID_REJECTED)
_JOB_ROWS = (  # what a job is made of in the store, the job's own row last
    ("history", "job_id"),
    ("executions", "job_id"),
    ("evaluations", "job_id"),
    ("job_versions", "job_id"),
    ("jobs", "id"),
)
ACTIVE_JOB_STATES = tuple(s.value for s in JobStateType if not s.terminal)
"""Listed, not "NOT IN" the terminal ones, so the state index finds them: a restart reads
the jobs still at work, not every job ever stored."""
_ORDER_COLUMNS = {
    "created_at": "create_time",
    "create_time": "create_time",
    "modified_at": "modify_time",
    "modify_time": "modify_time",
    "id": "id",
    "name": "name",
    "state": "state",
    "": "create_time",
}


@dataclass
class Batch:
    """Everything one scheduling or update step changed, written in one transaction."""

    jobs: dict[str, Job] = field(default_factory=dict)
    new_versions: list[Job] = field(default_factory=list)
    executions: dict[str, Execution] = field(default_factory=dict)
    events: list[HistoryRow] = field(default_factory=list)
    evaluations: list[Evaluation] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.jobs or self.executions or self.events or self.evaluations)


def _dump(model: Any, exclude: set[str] | None = None) -> str:
    return str(model.model_dump_json(by_alias=True, exclude=exclude))


def _labels_match(labels: str, selector: str) -> bool:
    return selectors.text_matches(selector, json.loads(labels))


class Store:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._sql = SqliteThread(path, _SCHEMA, "store", synchronous="FULL")

    async def open(self) -> None:
        await self._sql.open()
        await self._sql.call(self._functions)

    def _functions(self) -> None:
        # Label selectors match in SQL, so a filtered listing still pages in the database.
        self.db.create_function("bacedge_labels", 2, _labels_match, deterministic=True)

    async def close(self) -> None:
        await self._sql.close()

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        return await self._sql.call(fn, *args)

    @property
    def db(self) -> sqlite3.Connection:
        return self._sql.db

    # -- writes -------------------------------------------------------------
    async def save(self, batch: Batch) -> None:
        """Serialise on the caller's thread (models are mutable), write on the store's."""
        if batch:
            rows = self._rows(batch)
            await self._sql.write(lambda db: _write_rows(db, rows))

    @staticmethod
    def _rows(batch: Batch) -> dict[str, list[tuple[Any, ...]]]:
        return {
            "jobs": [
                (
                    j.ID,
                    j.Name,
                    j.Namespace,
                    j.Type.value,
                    j.State.StateType.value,
                    j.CreateTime,
                    j.ModifyTime,
                    json.dumps(j.Labels),
                    _dump(j),
                )
                for j in batch.jobs.values()
            ],
            "versions": [(j.ID, j.Version, _dump(j, {"State"})) for j in batch.new_versions],
            "executions": [
                (
                    e.ID,
                    e.JobID,
                    e.NodeID,
                    int(e.ComputeState.StateType),
                    e.CreateTime,
                    e.ModifyTime,
                    _dump(e, {"Job"}),
                )
                for e in batch.executions.values()
            ],
            "history": list(batch.events),
            "evaluations": [(ev.ID, ev.JobID, _dump(ev)) for ev in batch.evaluations],
        }

    async def prune(self, before_ns: int, limit: int = 1000) -> list[str]:
        """Forgets finished jobs last changed before `before_ns` (at most `limit`, the
        oldest first) with their versions, executions, history and evaluations, in one
        transaction. Returns their IDs. Jobs at work are never touched: only terminal ones
        are found, and those have left the orchestrator's working set."""
        marks = ",".join("?" * len(TERMINAL_JOB_STATES))

        def forget(db: sqlite3.Connection) -> list[str]:
            ids = [
                (row[0],)
                for row in db.execute(
                    f"SELECT id FROM jobs WHERE state IN ({marks}) AND modify_time < ?"
                    " ORDER BY modify_time LIMIT ?",
                    [*TERMINAL_JOB_STATES, before_ns, limit],
                )
            ]
            for table, column in _JOB_ROWS:
                db.executemany(f"DELETE FROM {table} WHERE {column}=?", ids)
            return [i for (i,) in ids]

        return await self._sql.write(forget)

    async def prune_ended(self, before_ns: int, limit: int = 1000) -> int:
        """Forgets ended executions of daemon and service jobs still at work, last changed
        before `before_ns` (at most `limit`, the oldest first), with their history, in one
        transaction; returns how many. Those jobs run until stopped, and one whose task
        keeps exiting adds an execution a minute: without this their rows would grow for
        as long as the job runs. Batch and ops jobs keep theirs (their attempts count)."""
        jobs = ",".join("?" * len(ACTIVE_JOB_STATES))
        ended = tuple(int(s) for s in ComputeStateType if s.terminal)
        states = ",".join("?" * len(ended))

        def forget(db: sqlite3.Connection) -> int:
            found = db.execute(
                "SELECT e.id, e.job_id FROM executions e JOIN jobs j ON j.id = e.job_id"
                f" WHERE j.state IN ({jobs}) AND j.type IN (?, ?) AND e.state IN ({states})"
                " AND e.modify_time < ? ORDER BY e.modify_time LIMIT ?",
                [*ACTIVE_JOB_STATES, *LONG_RUNNING_TYPES, *ended, before_ns, limit],
            ).fetchall()
            by_job: dict[str, list[str]] = {}
            for execution_id, job_id in found:
                by_job.setdefault(job_id, []).append(execution_id)
            for job_id, ids in by_job.items():
                for at in range(0, len(ids), 500):
                    part = ids[at : at + 500]
                    marks = ",".join("?" * len(part))
                    db.execute(
                        f"DELETE FROM history WHERE job_id=? AND execution_id IN ({marks})",
                        [job_id, *part],
                    )
            db.executemany("DELETE FROM executions WHERE id=?", [(i,) for i, _ in found])
            return len(found)

        return await self._sql.write(forget)

    async def put_node(self, node: NodeState) -> None:
        row = (node.node_id, _dump(node))
        await self._sql.write(
            lambda db: db.execute("INSERT OR REPLACE INTO nodes(id,data) VALUES(?,?)", row)
        )

    async def delete_node(self, node_id: str) -> None:
        await self._sql.write(lambda db: db.execute("DELETE FROM nodes WHERE id=?", (node_id,)))

    # -- reads --------------------------------------------------------------
    async def get_job(self, job_id: str) -> Job | None:
        row = await self._call(
            lambda: self.db.execute("SELECT data FROM jobs WHERE id=?", (job_id,)).fetchone()
        )
        return Job.model_validate_json(row[0]) if row else None

    async def find_by_name(self, namespace: str, name: str) -> Job | None:
        row = await self._call(
            lambda: self.db.execute(
                "SELECT data FROM jobs WHERE namespace=? AND name=? "
                "ORDER BY create_time DESC LIMIT 1",
                (namespace, name),
            ).fetchone()
        )
        return Job.model_validate_json(row[0]) if row else None

    async def resolve_job(self, ref: str, namespace: str | None = None) -> Job:
        """A job by exact ID, unique ID prefix or name, as Bacalhau addresses them."""
        ref = ref.strip()
        if not ref:
            raise BadRequest("a job ID or name is required")
        rows = await self._call(self._resolve_rows, ref, namespace)
        if len(rows) == 1:
            return Job.model_validate_json(rows[0][1])
        if not rows:
            raise NotFound(f"job {quoted(ref)} not found: check the ID with `bacedge job list`")
        ids = ", ".join(r[0] for r in rows[:5])
        raise BadRequest(f"job reference {ref!r} is ambiguous ({ids}...): use more of the ID")

    def _resolve_rows(self, ref: str, namespace: str | None) -> list[tuple[str, str]]:
        db = self.db
        row = db.execute("SELECT id, data FROM jobs WHERE id=?", (ref,)).fetchone()
        if row:
            return [row]
        escaped = ref.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = db.execute(
            "SELECT id, data FROM jobs WHERE id LIKE ? ESCAPE '\\' LIMIT 6", (escaped + "%",)
        ).fetchall()
        if rows:
            return list(rows)
        sql = "SELECT id, data FROM jobs WHERE name=?"
        params: list[Any] = [ref]
        if namespace:
            sql += " AND namespace=?"
            params.append(namespace)
        rows = db.execute(sql + " ORDER BY create_time DESC LIMIT 6", params).fetchall()
        # Several jobs with one name: the newest wins, as names are reused for reruns.
        return list(rows[:1])

    async def list_jobs(
        self,
        namespace: str | None = None,
        limit: int = 100,
        offset: int = 0,
        order_by: str = "",
        reverse: bool = False,
        labels: str = "",
        states: Iterable[str] = (),
    ) -> tuple[list[Job], bool]:
        """A page of jobs (newest first by default) and whether more follow; `labels` is a
        label selector (edge/selectors.py), already checked by the caller. A page ends early
        past `LIST_PAGE_BYTES` of specs (its next token then starts after the last one):
        100 specs of 8 MiB were one 800 MiB answer built in memory."""
        column = _ORDER_COLUMNS.get(order_by.lower())
        if column is None:
            raise BadRequest(
                f"cannot order jobs by {order_by!r}: use one of created_at, modified_at, id, "
                "name, state"
            )
        where, params = ["1=1"], []
        if namespace:
            where.append("namespace=?")
            params.append(namespace)
        state_list = list(states)
        if state_list:
            where.append(f"state IN ({','.join('?' * len(state_list))})")
            params.extend(state_list)
        if labels.strip():
            where.append("bacedge_labels(labels, ?)")
            params.append(labels)
        # Bacalhau lists newest first unless reversed.
        direction = "ASC" if reverse else "DESC"
        if column in ("id", "name", "state"):
            direction = "DESC" if reverse else "ASC"
        sql = (
            f"SELECT data FROM jobs WHERE {' AND '.join(where)} "
            f"ORDER BY {column} {direction}, id {direction} LIMIT ? OFFSET ?"
        )
        return await self._job_page(sql, params, limit, offset)

    async def _job_page(
        self, sql: str, params: list[Any], limit: int, offset: int
    ) -> tuple[list[Job], bool]:
        """The specs `sql` selects (it ends in LIMIT ? OFFSET ?), at most `limit` of them
        and, past the first, at most `LIST_PAGE_BYTES`; and whether more follow."""

        def page() -> tuple[list[str], bool]:
            kept: list[str] = []
            size = 0
            for (data,) in self.db.execute(sql, [*params, limit + 1, offset]):
                if len(kept) == limit or (kept and size + len(data) > LIST_PAGE_BYTES):
                    return kept, True
                kept.append(data)
                size += len(data)
            return kept, False

        rows, more = await self._call(page)
        return [Job.model_validate_json(data) for data in rows], more

    async def job_versions(
        self, job_id: str, limit: int = 100, offset: int = 0
    ) -> tuple[list[Job], bool]:
        """A page of a job's versions, oldest first, bounded as `list_jobs` pages are."""
        sql = "SELECT data FROM job_versions WHERE job_id=? ORDER BY version LIMIT ? OFFSET ?"
        return await self._job_page(sql, [job_id], limit, offset)

    async def job_version(self, job_id: str, version: int) -> Job | None:
        row = await self._call(
            lambda: self.db.execute(
                "SELECT data FROM job_versions WHERE job_id=? AND version=?", (job_id, version)
            ).fetchone()
        )
        return None if row is None else Job.model_validate_json(row[0])

    async def executions(self, job_id: str) -> list[Execution]:
        rows = await self._call(
            lambda: self.db.execute(
                "SELECT data FROM executions WHERE job_id=? ORDER BY create_time", (job_id,)
            ).fetchall()
        )
        return [Execution.model_validate_json(r[0]) for r in rows]

    async def get_execution(self, execution_id: str) -> Execution | None:
        row = await self._call(
            lambda: self.db.execute(
                "SELECT data FROM executions WHERE id=?", (execution_id,)
            ).fetchone()
        )
        return Execution.model_validate_json(row[0]) if row else None

    async def history(
        self, job_id: str, since: int = 0, event_type: str = "", execution_id: str = ""
    ) -> list[JobHistory]:
        where, params = ["job_id=?"], [job_id]
        if execution_id:
            where.append("execution_id=?")
            params.append(execution_id)
        kind = event_type.lower()
        if kind in ("job", "joblevel"):
            where.append("type='JobLevel'")
        elif kind in ("execution", "executionlevel"):
            where.append("type='ExecutionLevel'")
        elif kind not in ("", "all"):
            raise BadRequest(f"unknown event_type {event_type!r}: use all, job or execution")
        sql = f"SELECT seq, data FROM history WHERE {' AND '.join(where)} ORDER BY seq"
        rows = await self._call(lambda: self.db.execute(sql, params).fetchall())
        out = []
        for seq, data in rows:
            item = JobHistory.model_validate_json(data)
            item.SeqNum = seq
            if since and _rfc3339_ns(item.Time) < since:
                continue
            out.append(item)
        return out

    async def nodes(self) -> list[NodeState]:
        rows = await self._call(lambda: self.db.execute("SELECT data FROM nodes").fetchall())
        return [NodeState.model_validate_json(r[0]) for r in rows]

    async def active(self, keep_ended: int = 32) -> tuple[list[Job], list[Execution], set[str]]:
        """Jobs not yet terminal and their executions: the scheduler's working set. A daemon
        or service job brings only what its planner reads (`planners.working_set`, with
        `keep_ended` ended executions per node or replica): its past stays here, unparsed.
        The third item names the jobs read so, whose other executions stay in the store."""
        return await self._call(self._active, keep_ended)

    def _active(self, keep_ended: int) -> tuple[list[Job], list[Execution], set[str]]:
        db = self.db
        marks = ",".join("?" * len(ACTIVE_JOB_STATES))
        jobs = [
            Job.model_validate_json(r[0])
            for r in db.execute(
                f"SELECT data FROM jobs WHERE state IN ({marks})", ACTIVE_JOB_STATES
            )
        ]
        executions: list[Execution] = []
        partial: set[str] = set()
        for job in jobs:
            if job.Type.value in LONG_RUNNING_TYPES:
                rows = self._working_rows(job, keep_ended)
                total = db.execute("SELECT COUNT(*) FROM executions WHERE job_id=?", (job.ID,))
                if total.fetchone()[0] > len(rows):
                    partial.add(job.ID)
            else:
                rows = db.execute(
                    "SELECT data FROM executions WHERE job_id=?", (job.ID,)
                ).fetchall()
            executions.extend(Execution.model_validate_json(r[0]) for r in rows)
        return jobs, executions, partial

    def _working_rows(self, job: Job, keep_ended: int) -> list[tuple[str]]:
        """A long-running job's executions its planner reads, as `planners.working_set`
        picks them: not ended; this version's `keep_ended` latest ended per node (daemon)
        or replica (service); this version's latest refusal per node."""
        ended = ",".join(str(int(s)) for s in ComputeStateType if s.terminal)
        refused = ",".join(str(int(s)) for s in REJECTED_STATES)
        group = "node_id" if job.Type == JobType.DAEMON else "json_extract(data,'$.PartitionIndex')"
        ranked = (
            "SELECT id, data, ROW_NUMBER() OVER (PARTITION BY {group} ORDER BY create_time DESC)"
            " AS r FROM executions WHERE job_id=:job AND state IN ({states})"
            " AND json_extract(data,'$.JobVersion')=:version"
        )
        rows = self.db.execute(
            f"SELECT id, data FROM executions WHERE job_id=:job AND state NOT IN ({ended})"
            f" UNION ALL SELECT id, data FROM ({ranked.format(group=group, states=ended)})"
            " WHERE r <= :keep"
            f" UNION ALL SELECT id, data FROM ({ranked.format(group='node_id', states=refused)})"
            " WHERE r = 1",
            {"job": job.ID, "version": job.Version, "keep": keep_ended},
        ).fetchall()
        seen: dict[str, str] = {}
        for execution_id, data in rows:
            seen.setdefault(execution_id, data)
        return [(data,) for data in seen.values()]

    async def counts(self) -> dict[str, int]:
        rows = await self._call(
            lambda: self.db.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state").fetchall()
        )
        return {state: n for state, n in rows}


def _rfc3339_ns(text: str) -> int:
    from datetime import datetime

    try:
        return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1e9)
    except ValueError:
        return 0


def _write_rows(db: sqlite3.Connection, rows: dict[str, list[tuple[Any, ...]]]) -> None:
    db.executemany(
        "INSERT INTO jobs(id,name,namespace,type,state,create_time,modify_time,labels,data)"
        " VALUES(?,?,?,?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET name=excluded.name,"
        " state=excluded.state, modify_time=excluded.modify_time,"
        " labels=excluded.labels, data=excluded.data",
        rows["jobs"],
    )
    db.executemany(
        "INSERT OR REPLACE INTO job_versions(job_id,version,data) VALUES(?,?,?)", rows["versions"]
    )
    db.executemany(
        "INSERT INTO executions(id,job_id,node_id,state,create_time,modify_time,data)"
        " VALUES(?,?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET node_id=excluded.node_id,"
        " state=excluded.state, modify_time=excluded.modify_time, data=excluded.data",
        rows["executions"],
    )
    db.executemany(
        "INSERT INTO history(job_id,execution_id,type,time,data) VALUES(?,?,?,?,?)",
        rows["history"],
    )
    db.executemany(
        "INSERT OR REPLACE INTO evaluations(id,job_id,data) VALUES(?,?,?)", rows["evaluations"]
    )
