"""The orchestrator's job store: what a restart loads."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

from edge.models import Execution, Job, JobState, JobStateType
from edge.orchestrator.store import Batch, Store


async def test_a_restart_loads_the_jobs_still_at_work_with_their_executions(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path / "state.db")
    await store.open()
    batch = Batch()
    for state in JobStateType:
        job = Job(ID=f"j-{state.value}", Name=state.value, State=JobState(StateType=state))
        batch.jobs[job.ID] = job
        execution = Execution(ID=f"e-{state.value}", JobID=job.ID, NodeID="n-1")
        batch.executions[execution.ID] = execution
    await store.save(batch)
    jobs, executions, partial = await store.active()
    expected = {"j-Undefined", "j-Pending", "j-Queued", "j-Running"}
    assert {j.ID for j in jobs} == expected
    assert {e.JobID for e in executions} == expected and not partial
    await store.close()


async def test_a_failed_transaction_fails_every_save_in_it_and_a_cancelled_saver_still_writes(
    tmp_path: Path,
) -> None:
    """Group commit: saves queued behind a running transaction share the next one. A saver
    that stops waiting still has its rows written; a transaction that fails fails each save
    in it and keeps none of their rows, and the store writes again afterwards."""
    store = Store(tmp_path / "state.db")
    await store.open()
    release = threading.Event()
    busy = asyncio.ensure_future(store._sql.write(lambda db: release.wait(5)))
    await asyncio.sleep(0.05)
    kept = asyncio.ensure_future(store.save(Batch(jobs={"j-1": Job(ID="j-1", Name="kept")})))
    dropped = asyncio.ensure_future(store.save(Batch(jobs={"j-2": Job(ID="j-2", Name="gone")})))
    await asyncio.sleep(0.01)
    dropped.cancel()  # its caller stops waiting; the shared write goes on
    release.set()
    await asyncio.gather(busy, kept)
    assert (await store.get_job("j-2")) is not None
    # A transaction that fails (a full disk: here, a table that refuses the row) fails
    # every save that shared it, and none of their rows stay.
    store.db.execute(
        "CREATE TRIGGER no_jobs BEFORE INSERT ON jobs BEGIN SELECT RAISE(ABORT, 'disk full'); END"
    )
    first = asyncio.ensure_future(store.save(Batch(jobs={"j-3": Job(ID="j-3")})))
    second = asyncio.ensure_future(store.save(Batch(jobs={"j-4": Job(ID="j-4")})))
    results = await asyncio.gather(first, second, return_exceptions=True)
    assert all(isinstance(r, sqlite3.IntegrityError) for r in results), results
    assert await store.get_job("j-3") is None and await store.get_job("j-4") is None
    store.db.execute("DROP TRIGGER no_jobs")
    await store.save(Batch(jobs={"j-3": Job(ID="j-3")}))  # and the next one works
    assert await store.get_job("j-3") is not None
    await store.close()


async def test_prune_forgets_old_finished_jobs_with_all_their_rows_and_keeps_the_rest(
    tmp_path: Path,
) -> None:
    """Finished jobs last changed before the cutoff go with their versions, executions,
    history and evaluations, the oldest first and at most `limit` per call; recent
    finished jobs and jobs at work stay whatever their age."""
    from edge.models import Evaluation
    from edge.orchestrator.history import job_event

    store = Store(tmp_path / "state.db")
    await store.open()
    cutoff = 1_000
    specs = {
        "old-done": (JobStateType.COMPLETED, 100),
        "old-failed": (JobStateType.FAILED, 200),
        "old-stopped": (JobStateType.STOPPED, 300),
        "old-running": (JobStateType.RUNNING, 100),
        "old-queued": (JobStateType.QUEUED, 100),
        "new-done": (JobStateType.COMPLETED, 2_000),
    }
    batch = Batch()
    for job_id, (state, modified) in specs.items():
        job = Job(ID=job_id, State=JobState(StateType=state), ModifyTime=modified)
        batch.jobs[job_id] = job
        batch.new_versions.append(job)
        batch.executions[f"e-{job_id}"] = Execution(ID=f"e-{job_id}", JobID=job_id, NodeID="n")
        batch.events.append(job_event(job_id, "JobState", "changed"))
        batch.evaluations.append(Evaluation(ID=f"ev-{job_id}", JobID=job_id))
    await store.save(batch)

    assert await store.prune(cutoff, limit=2) == ["old-done", "old-failed"]
    assert await store.prune(cutoff, limit=2) == ["old-stopped"]
    assert await store.prune(cutoff, limit=2) == []
    kept = {"old-running", "old-queued", "new-done"}
    for table, column in (
        ("jobs", "id"),
        ("job_versions", "job_id"),
        ("executions", "job_id"),
        ("history", "job_id"),
        ("evaluations", "job_id"),
    ):
        rows = {r[0] for r in store.db.execute(f"SELECT {column} FROM {table}")}
        assert rows == kept, table
    assert await store.get_job("old-done") is None
    assert await store.history("old-done") == []
    await store.close()


async def test_prune_ended_forgets_old_ended_executions_of_running_daemons_and_services(
    tmp_path: Path,
) -> None:
    """Daemon and service jobs run for ever: their ended executions last changed before
    the cutoff go with their history rows; their live and recent ones stay, and so do a
    batch job's (its attempts count) and the job's own history."""
    from edge.models import ComputeState, ComputeStateType, JobType
    from edge.orchestrator.history import execution_event, job_event

    store = Store(tmp_path / "state.db")
    await store.open()
    cutoff = 1_000
    done, running = ComputeStateType.COMPLETED, ComputeStateType.RUNNING
    rows = {  # execution -> (job, its type, state, last changed)
        "e-d-old1": ("daemon", JobType.DAEMON, done, 100),
        "e-d-old2": ("daemon", JobType.DAEMON, ComputeStateType.FAILED, 200),
        "e-d-new": ("daemon", JobType.DAEMON, done, 2_000),
        "e-d-live": ("daemon", JobType.DAEMON, running, 100),
        "e-s-old": ("service", JobType.SERVICE, done, 300),
        "e-b-old": ("batch", JobType.BATCH, ComputeStateType.FAILED, 100),
    }
    batch = Batch()
    for kind in (JobType.DAEMON, JobType.SERVICE, JobType.BATCH):
        job = Job(ID=kind.value, Type=kind, State=JobState(StateType=JobStateType.RUNNING))
        batch.jobs[job.ID] = job
        batch.events.append(job_event(job.ID, "JobState", "running"))
    for execution_id, (job_id, _, state, modified) in rows.items():
        batch.executions[execution_id] = Execution(
            ID=execution_id,
            JobID=job_id,
            NodeID="n",
            ComputeState=ComputeState(StateType=state),
            ModifyTime=modified,
        )
        batch.events.append(execution_event(job_id, execution_id, "ExecutionState", "x"))
    await store.save(batch)

    assert await store.prune_ended(cutoff, limit=2) == 2  # the two oldest
    assert await store.prune_ended(cutoff, limit=2) == 1
    assert await store.prune_ended(cutoff, limit=2) == 0
    kept = {"e-d-new", "e-d-live", "e-b-old"}
    assert {r[0] for r in store.db.execute("SELECT id FROM executions")} == kept
    history = {r[0] for r in store.db.execute("SELECT execution_id FROM history")}
    assert history == kept | {""}  # the jobs' own events stay
    await store.close()
