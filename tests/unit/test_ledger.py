"""The compute ledger: a file of a node's own, or one file shared by the simulated nodes of a
process, each seeing only its own executions and outbox; ledgers written before the `node`
column keep their rows."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from edge.compute.ledger import Ledger, LedgerDB
from edge.models import ComputeState, ComputeStateType, Execution, Job
from edge.transport.messages import ExecutionUpdate


def execution(execution_id: str, state: ComputeStateType) -> Execution:
    return Execution(ID=execution_id, JobID="j-1", ComputeState=ComputeState(StateType=state))


def with_job(execution_id: str, state: ComputeStateType, version: int = 1) -> Execution:
    job = Job.model_validate(
        {
            "ID": "j-1",
            "Name": "spec",
            "Type": "batch",
            "Version": version,
            "Tasks": [{"Name": "main", "Engine": {"Type": "noop"}}],
        }
    )
    return execution(execution_id, state).model_copy(update={"Job": job, "JobVersion": version})


def update(execution_id: str, state: ComputeStateType) -> ExecutionUpdate:
    return ExecutionUpdate(
        ExecutionID=execution_id, JobID="j-1", NodeID="n-1", State=state, Message="m"
    )


async def test_nodes_sharing_a_ledger_file_see_only_their_own_rows(tmp_path: Path) -> None:
    shared = LedgerDB(tmp_path / "ledger.db")
    await shared.open()
    one, two = Ledger(shared, "sim-00001"), Ledger(shared, "sim-00002")
    running = ComputeStateType.RUNNING
    await one.record([execution("e-1", running)], [update("e-1", running)])
    await two.record([execution("e-2", running)], [update("e-2", running)])
    done = ComputeStateType.COMPLETED
    stored = await two.record([execution("e-3", done)], [update("e-3", done)])
    assert [e.ID for e in await one.unfinished()] == ["e-1"]
    assert [e.ID for e in await two.unfinished()] == ["e-2"]
    assert await one.known(["e-1", "e-2", "e-3"]) == {"e-1"}
    assert await two.get("e-1") is None and await one.get("e-1") is not None
    assert [u.ExecutionID for u in await two.outbox()] == ["e-2", "e-3"]  # in order
    await one.acknowledge([u.Sequence for u in stored])  # not its own: nothing goes
    assert len(await two.outbox()) == 2
    await two.acknowledge([u.Sequence for u in stored])
    assert [u.ExecutionID for u in await two.outbox()] == ["e-2"]
    await one.close()  # a view: the shared file stays open for the others
    assert [u.ExecutionID for u in await one.outbox()] == ["e-1"]
    await shared.close()


async def test_a_ledger_from_before_the_node_column_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE executions (id TEXT PRIMARY KEY, job_id TEXT NOT NULL,
            state INTEGER NOT NULL, updated INTEGER NOT NULL, data TEXT NOT NULL);
        CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, execution_id TEXT NOT NULL,
            state INTEGER NOT NULL, time INTEGER NOT NULL, message TEXT NOT NULL);
        CREATE TABLE outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, data TEXT NOT NULL);
        """
    )
    running = execution("e-old", ComputeStateType.RUNNING)
    db.execute(
        "INSERT INTO executions VALUES (?,?,?,?,?)",
        ("e-old", "j-1", 6, 0, running.model_dump_json(by_alias=True)),
    )
    done = with_job("e-with-job", ComputeStateType.COMPLETED)  # its job inside its row
    db.execute(
        "INSERT INTO executions VALUES (?,?,?,?,?)",
        ("e-with-job", "j-1", 9, 0, done.model_dump_json(by_alias=True)),
    )
    pending = update("e-old", ComputeStateType.RUNNING).model_dump_json(exclude={"Sequence"})
    db.execute("INSERT INTO outbox(data) VALUES (?)", (pending,))
    db.commit()
    db.close()
    ledger = Ledger(path)
    await ledger.open()
    assert [e.ID for e in await ledger.unfinished()] == ["e-old"]
    kept = await ledger.get("e-with-job")
    assert kept is not None and kept.Job is not None and kept.Job.Name == "spec"
    assert [u.ExecutionID for u in await ledger.outbox()] == ["e-old"]
    assert await ledger.known(["e-old"]) == {"e-old"}
    await ledger.close()


async def test_prune_forgets_old_finished_executions_once_delivered(tmp_path: Path) -> None:
    """Old finished executions leave the ledger with their events; running ones, recent
    ones, ones whose updates still wait in the outbox and other nodes' rows stay."""
    shared = LedgerDB(tmp_path / "ledger.db")
    await shared.open()
    mine, other = Ledger(shared, "n-1"), Ledger(shared, "n-2")
    done, running = ComputeStateType.COMPLETED, ComputeStateType.RUNNING

    def at(e: Execution, ns: int) -> Execution:
        return e.model_copy(update={"ModifyTime": ns})

    delivered = await mine.record(
        [at(execution("e-old", done), 100), at(execution("e-running", running), 100)],
        [update("e-old", done), update("e-running", running)],
    )
    await mine.acknowledge([u.Sequence for u in delivered])
    await mine.record([at(execution("e-waiting", done), 100)], [update("e-waiting", done)])
    await mine.record([at(execution("e-new", done), 900)], [])
    await other.record([at(execution("e-theirs", done), 100)], [])
    assert len(await mine.events("e-old")) == 1

    assert await mine.prune(before_ns=500) == ["e-old"]
    assert await mine.known(["e-old", "e-running", "e-waiting", "e-new"]) == {
        "e-running",
        "e-waiting",
        "e-new",
    }
    assert await mine.events("e-old") == []
    assert await other.known(["e-theirs"]) == {"e-theirs"}
    assert await mine.prune(before_ns=500) == []  # nothing left that may go
    await mine.acknowledge([u.Sequence for u in await mine.outbox()])
    assert await mine.prune(before_ns=500) == ["e-waiting"]  # now delivered
    await shared.close()


async def test_the_node_prunes_its_ledger_and_the_execution_folders(tmp_path: Path) -> None:
    """The agent's hourly prune: past `ledger_retention`, a delivered finished execution
    leaves the ledger and its folder (output log) goes; a running one keeps both."""
    import asyncio
    import contextlib

    from edge.compute import agent
    from edge.config import load_config

    config = load_config(None, {"node.data_dir": str(tmp_path)}, environ={})
    node = agent.ComputeNode(config, [])
    await node.ledger.open()
    done, running = ComputeStateType.COMPLETED, ComputeStateType.RUNNING
    week_ago = agent.now_ns() - int(8 * 86400 * 1e9)
    try:
        for execution_id, state in (("e-old", done), ("e-live", running)):
            old = execution(execution_id, state).model_copy(update={"ModifyTime": week_ago})
            stored = await node.ledger.record([old], [update(execution_id, state)])
            await node.ledger.acknowledge([u.Sequence for u in stored])
            folder = node.root / "executions" / execution_id
            folder.mkdir(parents=True)
            (folder / "output.jsonl").write_text("{}\n")
        task = asyncio.create_task(node._prune())
        for _ in range(200):
            if not (node.root / "executions" / "e-old").exists():
                break
            await asyncio.sleep(0.01)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert await node.ledger.known(["e-old", "e-live"]) == {"e-live"}
        assert not (node.root / "executions" / "e-old").exists()
        assert (node.root / "executions" / "e-live" / "output.jsonl").exists()
    finally:
        await node.ledger.close()


async def test_the_node_prunes_local_result_archives_past_their_retention(
    tmp_path: Path,
) -> None:
    """`[publishers.local] retention`: the same hourly prune removes `local` archives
    older than it and `.part` files a crash left mid-pack; recent archives, a pack still
    being written and files that are not archives stay."""
    import asyncio
    import contextlib
    import os
    import time

    from edge.compute import agent
    from edge.config import load_config
    from edge.publishers import build_publishers

    config = load_config(
        None,
        {"node.data_dir": str(tmp_path), "publishers.local.retention": 7200},
        environ={},
    )
    node = agent.ComputeNode(config, [])
    await node.ledger.open()
    published = node.root / "published"
    node.publishers = build_publishers(config, published, None)  # as start() builds them
    published.mkdir(parents=True)
    now = time.time()
    ages = {
        "e-old.tar.gz": 3 * 3600,
        "e-recent.tar.gz": 3600,
        "e-crashed.tar.gz.part": 2 * 3600,
        "e-packing.tar.gz.part": 60,
        "notes.txt": 3 * 3600,
    }
    for name, age in ages.items():
        (published / name).write_bytes(b"x")
        os.utime(published / name, (now - age, now - age))
    try:
        task = asyncio.create_task(node._prune())
        for _ in range(200):
            if not (published / "e-old.tar.gz").exists():
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert sorted(p.name for p in published.iterdir()) == [
            "e-packing.tar.gz.part",
            "e-recent.tar.gz",
            "notes.txt",
        ]
    finally:
        await node.ledger.close()


def jobs_in(path: Path) -> int:
    db = sqlite3.connect(path)
    try:
        return int(db.execute("SELECT COUNT(*) FROM jobs").fetchone()[0])
    finally:
        db.close()


async def test_a_job_is_stored_once_per_version_not_in_every_state_change(
    tmp_path: Path,
) -> None:
    """Each state change rewrites the execution's row; the job's spec is written once per
    node and version, and executions read back whole (after a restart too)."""
    path = tmp_path / "ledger.db"
    ledger = Ledger(path)
    await ledger.open()
    states = (ComputeStateType.BID_ACCEPTED, ComputeStateType.RUNNING)
    for state in states:
        await ledger.record([with_job("e-1", state), with_job("e-2", state)], [])
    await ledger.record([with_job("e-3", ComputeStateType.RUNNING, version=2)], [])
    await ledger.close()
    db = sqlite3.connect(path)
    assert db.execute("SELECT id, version FROM jobs ORDER BY version").fetchall() == [
        ("j-1", 1),
        ("j-1", 2),
    ]
    assert not any('"Job"' in data for (data,) in db.execute("SELECT data FROM executions"))
    db.close()
    again = Ledger(path)  # a restarted node: nothing remembered
    await again.open()
    unfinished = {e.ID: e for e in await again.unfinished()}
    assert sorted(unfinished) == ["e-1", "e-2", "e-3"]
    assert all(e.Job is not None and e.Job.Name == "spec" for e in unfinished.values())
    assert [e.Job.Version for e in unfinished.values() if e.Job] == [1, 1, 2]
    await again.close()


async def test_a_pruned_job_comes_back_with_its_next_execution(tmp_path: Path) -> None:
    """A job leaves the ledger with its last execution there, unless this ledger remembers
    writing it (and so would not write it again); either way a new execution of it finds
    its job."""
    path = tmp_path / "ledger.db"
    done, running = ComputeStateType.COMPLETED, ComputeStateType.RUNNING
    old = with_job("e-old", done).model_copy(update={"ModifyTime": 100})
    ledger = Ledger(path)
    await ledger.open()
    await ledger.record([old], [])
    assert await ledger.prune(before_ns=500) == ["e-old"]
    assert jobs_in(path) == 1  # remembered: kept
    await ledger.record([with_job("e-next", running)], [])  # so not written again
    found = await ledger.get("e-next")
    assert found is not None and found.Job is not None
    await ledger.record([with_job("e-next", done).model_copy(update={"ModifyTime": 100})], [])
    await ledger.close()

    restarted = Ledger(path)  # remembers nothing
    await restarted.open()
    assert await restarted.prune(before_ns=500) == ["e-next"]
    assert jobs_in(path) == 0  # gone with its last execution
    await restarted.record([with_job("e-later", running)], [])
    found = await restarted.get("e-later")
    assert found is not None and found.Job is not None and found.Job.Name == "spec"
    await restarted.close()


async def test_a_full_ledger_holds_the_execution_until_a_write_succeeds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A write the ledger refuses (here SQLite's own "database or disk is full", from a page
    limit) is tried again until it succeeds: the execution waits, its updates keep their
    order, and none is lost (an update that never reached the ledger left the execution
    running on the orchestrator forever)."""
    import asyncio

    from edge.compute import agent
    from edge.config import load_config
    from edge.executors import build_executors

    monkeypatch.setattr(agent, "LEDGER_RETRY_FIRST", 0.05)
    config = load_config(None, {"node.data_dir": str(tmp_path)}, environ={})
    node = agent.ComputeNode(config, [])
    node.executors = build_executors(["noop"])
    node._slots = asyncio.Semaphore(1)
    big = with_job("e-1", ComputeStateType.BID_ACCEPTED)
    assert big.Job is not None
    big.Job.Labels = {"padding": "x" * 20_000}  # the job's row needs pages the file lacks
    await node.ledger.open()
    sql = node.ledger._sql

    def limit(pages: int | None) -> None:
        count = sql.db.execute("PRAGMA page_count").fetchone()[0]
        sql.db.execute(f"PRAGMA max_page_count={pages or count}")

    try:
        await sql.call(limit, None)
        task = asyncio.create_task(node._execute(big))
        for _ in range(200):
            if "cannot write to the ledger" in caplog.text:
                break
            await asyncio.sleep(0.01)
        refused = [r for r in caplog.records if r.getMessage().startswith("cannot write")]
        assert refused and "full" in refused[0].error  # type: ignore[attr-defined]
        assert not task.done() and await node.ledger.outbox() == []
        await sql.call(limit, 1_000_000)  # space again
        await asyncio.wait_for(task, 10)
        sent = [(u.ExecutionID, u.State) for u in await node.ledger.outbox()]
        assert sent == [("e-1", ComputeStateType.RUNNING), ("e-1", ComputeStateType.COMPLETED)]
        stored = await node.ledger.get("e-1")
        assert stored is not None and stored.Job is not None and stored.terminal
    finally:
        await node.ledger.close()
