"""The orchestrator's job store: what a restart loads."""

from __future__ import annotations

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
    jobs, executions = await store.active()
    expected = {"j-Undefined", "j-Pending", "j-Queued", "j-Running"}
    assert {j.ID for j in jobs} == expected
    assert {e.JobID for e in executions} == expected
    await store.close()
