"""The compute node's local ledger: its executions, their events, and an outbox.

Every state change is written here before it is sent, and stays in the outbox
until the orchestrator acknowledges it. That is what lets a node keep working
through an outage and report everything once the link heals.

A node's ledger is one SQLite file (`LedgerDB`) of its own. Simulated nodes (`bacedge
devstack --simulated`) share one file per process instead, each seeing only its rows (the
`node` column): ten thousand files would hold thirty thousand descriptors (database, WAL,
shared memory) and ten thousand threads, and one file group-commits their writes together.

A job's spec is stored once per node and job version (`jobs`), not inside each execution's
row: every state change rewrites the execution's row, and with the spec inside it a node
wrote each job three times per execution (most of its ledger's bytes, on a device's flash).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from edge.lru import LRU
from edge.models import ComputeStateType, Execution, Job
from edge.sqlite import SqliteThread
from edge.transport.messages import ExecutionUpdate

_SCHEMA = """
CREATE TABLE IF NOT EXISTS executions (
    id TEXT PRIMARY KEY, job_id TEXT NOT NULL, state INTEGER NOT NULL,
    updated INTEGER NOT NULL, data TEXT NOT NULL, node TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, execution_id TEXT NOT NULL, state INTEGER NOT NULL,
    time INTEGER NOT NULL, message TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_execution ON events(execution_id);
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, data TEXT NOT NULL, node TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS jobs (
    node TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (node, id, version)
);
"""
_WITH_JOB = (
    "SELECT e.data, j.data FROM executions e LEFT JOIN jobs j"
    " ON j.node = e.node AND j.id = e.job_id AND j.version = e.job_version"
)
_JOBS_REMEMBERED = 4096  # (job, version) pairs a node knows it stored, to skip re-dumping them


def _migrate(db: sqlite3.Connection) -> None:
    """Ledgers written before the `node` column get it (their rows: the node's own, '')."""
    for table in ("executions", "outbox"):
        columns = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        if "node" not in columns:
            db.execute(f"ALTER TABLE {table} ADD COLUMN node TEXT NOT NULL DEFAULT ''")
    columns = {row[1] for row in db.execute("PRAGMA table_info(executions)")}
    if "job_version" not in columns:  # older rows hold their job inside `data`
        db.execute("ALTER TABLE executions ADD COLUMN job_version INTEGER NOT NULL DEFAULT 0")
    db.execute("CREATE INDEX IF NOT EXISTS executions_node ON executions(node, state)")
    # Every query filters by node first: (node, state) serves them, and the older index on
    # state alone only cost each write (a third of a simulated fleet's ledger time).
    db.execute("DROP INDEX IF EXISTS executions_state")
    # Pruning asks whether a job has executions left on the node; written once per execution.
    db.execute("CREATE INDEX IF NOT EXISTS executions_job ON executions(node, job_id)")
    db.execute("CREATE INDEX IF NOT EXISTS outbox_node ON outbox(node, seq)")


class LedgerDB:
    """One ledger file on its own thread: a node's, or one shared by simulated nodes."""

    def __init__(self, path: Path) -> None:
        self.sql = SqliteThread(path, _SCHEMA, "ledger")

    async def open(self) -> None:
        await self.sql.open()
        await self.sql.call(_migrate, self.sql.db)

    async def close(self) -> None:
        await self.sql.close()


class Ledger:
    """One node's ledger: a file of its own (a path), or its rows of a shared `LedgerDB`
    (opened and closed by whoever shares it)."""

    def __init__(self, path: Path | LedgerDB, node: str = "") -> None:
        self._own = isinstance(path, Path)
        self._file = LedgerDB(path) if isinstance(path, Path) else path
        self._sql = self._file.sql
        self.node = node
        self._jobs: LRU[tuple[str, int], bool] = LRU(_JOBS_REMEMBERED)  # stored

    async def open(self) -> None:
        if self._own:
            await self._file.open()

    async def close(self) -> None:
        if self._own:
            await self._file.close()

    async def record(
        self, executions: list[Execution], updates: list[ExecutionUpdate]
    ) -> list[ExecutionUpdate]:
        """Store new execution snapshots and queue updates; returns them with Sequences."""
        node = self.node
        rows = [
            (
                e.ID,
                e.JobID,
                e.JobVersion,
                int(e.ComputeState.StateType),
                e.ModifyTime,
                e.model_dump_json(by_alias=True, exclude={"Job"}),
                node,
            )
            for e in executions
        ]
        jobs = {
            (e.JobID, e.JobVersion): e.Job
            for e in executions
            if e.Job is not None and (e.JobID, e.JobVersion) not in self._jobs
        }
        job_rows = [
            (node, job_id, version, job.model_dump_json(by_alias=True))
            for (job_id, version), job in jobs.items()
        ]
        pending = [(u, u.model_dump_json(by_alias=True, exclude={"Sequence"})) for u in updates]

        def write(db: sqlite3.Connection) -> list[ExecutionUpdate]:
            db.executemany(
                "INSERT OR IGNORE INTO jobs(node,id,version,data) VALUES(?,?,?,?)", job_rows
            )
            db.executemany(  # an upsert: REPLACE deletes and reinserts, every index twice
                "INSERT INTO executions(id,job_id,job_version,state,updated,data,node)"
                " VALUES(?,?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET state=excluded.state,"
                " updated=excluded.updated, data=excluded.data",  # its job and node stay
                rows,
            )
            out = []
            for update, data in pending:
                cursor = db.execute("INSERT INTO outbox(data,node) VALUES(?,?)", (data, node))
                db.execute(
                    "INSERT INTO events(execution_id,state,time,message) VALUES(?,?,?,?)",
                    (update.ExecutionID, int(update.State), update.Time, update.Message),
                )
                out.append(update.model_copy(update={"Sequence": cursor.lastrowid or 0}))
            return out

        stored = await self._sql.write(write)
        for key in jobs:  # only once written: a failed write dumps them again next time
            self._jobs.put(key, True)
        return stored

    @staticmethod
    def _execution(data: str, job: str | None) -> Execution:
        """An execution row with its job: from `jobs`, or inside `data` (older ledgers)."""
        execution = Execution.model_validate_json(data)
        if job is not None and execution.Job is None:
            execution.Job = Job.model_validate_json(job)
        return execution

    async def acknowledge(self, sequences: list[int]) -> None:
        if sequences:
            rows = [(s, self.node) for s in sequences]
            await self._sql.write(
                lambda db: db.executemany("DELETE FROM outbox WHERE seq=? AND node=?", rows)
            )

    async def outbox(self, limit: int = 500) -> list[ExecutionUpdate]:
        rows = await self._sql.call(
            lambda: self._sql.db.execute(
                "SELECT seq, data FROM outbox WHERE node=? ORDER BY seq LIMIT ?", (self.node, limit)
            ).fetchall()
        )
        return [
            ExecutionUpdate.model_validate_json(data).model_copy(update={"Sequence": seq})
            for seq, data in rows
        ]

    async def unfinished(self) -> list[Execution]:
        """Executions that were accepted or running when the agent last stopped."""
        terminal = [int(s) for s in ComputeStateType if s.terminal]
        marks = ",".join("?" * len(terminal))
        rows = await self._sql.call(
            lambda: self._sql.db.execute(
                f"{_WITH_JOB} WHERE e.node=? AND e.state NOT IN ({marks})",
                [self.node, *terminal],
            ).fetchall()
        )
        return [self._execution(data, job) for data, job in rows]

    async def get(self, execution_id: str) -> Execution | None:
        row = await self._sql.call(
            lambda: self._sql.db.execute(
                f"{_WITH_JOB} WHERE e.id=? AND e.node=?", (execution_id, self.node)
            ).fetchone()
        )
        return self._execution(*row) if row else None

    async def known(self, execution_ids: list[str]) -> set[str]:
        """Which of these executions this node has ever taken (running, finished or lost)."""
        if not execution_ids:
            return set()
        marks = ",".join("?" * len(execution_ids))
        rows = await self._sql.call(
            lambda: self._sql.db.execute(
                f"SELECT id FROM executions WHERE node=? AND id IN ({marks})",
                [self.node, *execution_ids],
            ).fetchall()
        )
        return {r[0] for r in rows}

    async def prune(self, before_ns: int, limit: int = 1000) -> list[str]:
        """Forgets finished executions last changed before `before_ns` (at most `limit`),
        with their events, once the orchestrator has every update about them: without
        this the ledger grows with each job a device ever ran. Returns their IDs."""
        terminal = [int(s) for s in ComputeStateType if s.terminal]
        marks = ",".join("?" * len(terminal))
        node = self.node
        # Jobs this ledger remembers storing are kept: a record that skips writing one
        # again (it is remembered) must find it. The others are written again when next used.
        remembered = {job_id for job_id, _ in self._jobs}

        def forget(db: sqlite3.Connection) -> list[str]:
            found = db.execute(
                f"SELECT id, job_id FROM executions WHERE node=? AND state IN ({marks})"
                " AND updated < ? LIMIT ?",
                [node, *terminal, before_ns, limit],
            ).fetchall()
            if not found:
                return []
            # Updates not yet acknowledged keep their execution (the outbox is small).
            waiting = [
                row[0] for row in db.execute("SELECT data FROM outbox WHERE node=?", (node,))
            ]
            found = [(i, j) for i, j in found if not any(i in data for data in waiting)]
            ids = [i for i, _ in found]
            db.executemany("DELETE FROM events WHERE execution_id=?", [(i,) for i in ids])
            db.executemany("DELETE FROM executions WHERE id=? AND node=?", [(i, node) for i in ids])
            # A job goes with the last of its executions on this node.
            db.executemany(
                "DELETE FROM jobs WHERE node=? AND id=? AND NOT EXISTS"
                " (SELECT 1 FROM executions WHERE node=? AND job_id=?)",
                [(node, j, node, j) for j in {j for _, j in found} - remembered],
            )
            return ids

        return await self._sql.write(forget)

    async def events(self, execution_id: str) -> list[tuple[int, int, str]]:
        return await self._sql.call(
            lambda: self._sql.db.execute(
                "SELECT state, time, message FROM events WHERE execution_id=? ORDER BY seq",
                (execution_id,),
            ).fetchall()
        )
