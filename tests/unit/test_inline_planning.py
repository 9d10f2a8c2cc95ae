"""Jobs planned inside the commit that made them ready (issue 13: fewer commits on a job's
path), and only when no other job waits, so the scheduler's priority order still holds."""

from __future__ import annotations

import asyncio
from pathlib import Path

from edge.compute.agent import ComputeNode
from edge.config import load_config
from edge.models import ComputeStateType, Execution, JobStateType
from edge.orchestrator.store import Store
from edge.tasks import cancel_and_wait
from edge.transport import subjects
from edge.transport.messages import (
    ExecutionUpdate,
    UpdateAck,
    UpdateBatch,
    decode,
    encode,
)

from .test_offer_recovery import (
    NODE,
    NOOP,
    FakeMsg,
    FakeNats,
    handshake,
    orchestrator,
    place_one,
    store,  # noqa: F401  (the fixture)
)


async def report(orch: object, execution: Execution, *states: ComputeStateType) -> FakeMsg:
    """The node's update batch, as it arrives on its updates subject."""
    updates = [
        ExecutionUpdate(
            Sequence=i + 1, ExecutionID=execution.ID, JobID="", NodeID=NODE, State=state
        )
        for i, state in enumerate(states)
    ]
    msg = FakeMsg(encode(UpdateBatch(NodeID=NODE, Updates=updates)), subjects.updates(NODE))
    await orch._on_updates(msg)  # type: ignore[attr-defined]
    return msg


async def test_the_update_that_ends_a_jobs_last_execution_completes_it_in_that_commit(
    store: Store,  # noqa: F811
) -> None:
    orch = await orchestrator(store, FakeNats())
    await handshake(orch)
    job, execution = await place_one(orch)
    msg = await report(orch, execution, ComputeStateType.RUNNING, ComputeStateType.COMPLETED)
    assert msg.answer is not None and decode(UpdateAck, msg.answer).Sequences == [1, 2]
    # Stored Completed before the node was acknowledged: no scheduling step ran.
    stored = await store.get_job(job.ID)
    assert stored is not None and stored.State.StateType == JobStateType.COMPLETED
    assert job.ID not in orch.jobs and job.ID not in orch._pending
    kinds = [
        (h.ExecutionState or h.JobState).New  # type: ignore[union-attr]
        for h in (await store.history(job.ID))
        if h.ExecutionState or h.JobState
    ]
    # Every state change is in the history, in order, as with the scheduler's own step.
    assert kinds == [
        JobStateType.PENDING.value,
        int(ComputeStateType.ASK_FOR_BID),
        int(ComputeStateType.RUNNING),
        JobStateType.RUNNING.value,
        int(ComputeStateType.COMPLETED),
        JobStateType.COMPLETED.value,
    ]


async def test_while_a_job_waits_for_capacity_new_work_is_left_to_the_scheduler(
    store: Store,  # noqa: F811
) -> None:
    orch = await orchestrator(store, FakeNats())
    await handshake(orch)
    big = {**NOOP, "Tasks": [{**NOOP["Tasks"][0], "Resources": {"CPU": "6"}}]}  # type: ignore[index]
    await orch.submit(big)  # the node has 8 CPUs: this one runs
    waiting, _, _ = await orch.submit(big)
    await orch._evaluate([waiting.ID])  # the scheduler's step: no room left
    assert orch.jobs[waiting.ID].State.StateType == JobStateType.QUEUED
    assert orch.queued_since
    # A new job does not jump the queue: it waits for the scheduler's next step.
    job, _, _ = await orch.submit(dict(NOOP))
    assert job.ID in orch._pending and not orch.job_executions[job.ID]
    assert not await store.executions(job.ID)


async def test_a_job_with_work_still_running_is_not_planned_by_an_update(
    store: Store,  # noqa: F811
) -> None:
    orch = await orchestrator(store, FakeNats())
    await handshake(orch)
    two = {**NOOP, "Count": 2}
    job, _, _ = await orch.submit(two)
    await asyncio.gather(*orch._background)
    first, second = (orch.executions[e] for e in orch.job_executions[job.ID])
    await report(orch, first, ComputeStateType.RUNNING, ComputeStateType.COMPLETED)
    assert orch.jobs[job.ID].State.StateType == JobStateType.RUNNING
    # Both partitions at work (Plan.settled): one Completed leaves nothing to plan.
    assert job.ID not in orch._pending
    await report(orch, second, ComputeStateType.RUNNING, ComputeStateType.COMPLETED)
    stored = await store.get_job(job.ID)
    assert stored is not None and stored.State.StateType == JobStateType.COMPLETED


async def test_a_partition_waiting_for_room_is_placed_when_another_completes(
    store: Store,  # noqa: F811
) -> None:
    """Count 3 on a node with room for two: the third partition waits, so the job is not
    settled and a Completed plans it again; the next scheduling step places the third."""
    orch = await orchestrator(store, FakeNats())
    await handshake(orch)
    three = {**NOOP, "Count": 3, "Tasks": [{**NOOP["Tasks"][0], "Resources": {"CPU": "3"}}]}  # type: ignore[index]
    job, _, _ = await orch.submit(three)
    await asyncio.gather(*orch._background)
    placed = [orch.executions[e] for e in orch.job_executions[job.ID]]
    assert len(placed) == 2 and job.ID not in orch._settled
    await report(orch, placed[0], ComputeStateType.RUNNING, ComputeStateType.COMPLETED)
    assert job.ID in orch._pending
    await orch._evaluate([job.ID])
    assert len(orch.job_executions[job.ID]) == 3
    assert {orch.executions[e].PartitionIndex for e in orch.job_executions[job.ID]} == {0, 1, 2}


class CapturingNats:
    """The NATS side of a node's outbox: records each update batch and acknowledges it."""

    is_connected = True
    max_payload = 1 << 20  # nats-server's default

    def __init__(self) -> None:
        self.batches: list[list[ComputeStateType]] = []

    async def request(self, _subject: str, data: bytes, timeout: float = 0) -> FakeMsg:
        batch = decode(UpdateBatch, data)
        self.batches.append([u.State for u in batch.Updates])
        reply = FakeMsg(encode(UpdateAck(Sequences=[u.Sequence for u in batch.Updates])))
        return reply


async def test_a_short_tasks_running_and_completed_leave_the_node_in_one_message(
    tmp_path: Path,
) -> None:
    from edge.compute.runner import Outcome

    config = load_config(None, {"node.data_dir": str(tmp_path)}, environ={})
    node = ComputeNode(config, [])
    nc = CapturingNats()
    node.nc = nc  # type: ignore[assignment]
    node.connected.set()
    await node.ledger.open()
    flusher = asyncio.create_task(node._flusher())
    try:
        execution = Execution(ID="e-1", JobID="j-1", NodeID=node.node_id)
        # As `_execute` does for a task that ends at once: Running is recorded (the flusher
        # is woken), and Completed is on its way to the ledger when the flusher runs.
        await node._report(execution, Outcome(ComputeStateType.RUNNING, "Running"))
        await node._report(execution, Outcome(ComputeStateType.COMPLETED, "done"))
        for _ in range(200):
            if not node._unsent:
                break
            await asyncio.sleep(0.01)
        assert nc.batches == [[ComputeStateType.RUNNING, ComputeStateType.COMPLETED]]
        # A long task's Running leaves alone, as soon as it is recorded.
        later = Execution(ID="e-2", JobID="j-1", NodeID=node.node_id)
        await node._report(later, Outcome(ComputeStateType.RUNNING, "Running"))
        for _ in range(200):
            if len(nc.batches) == 2:
                break
            await asyncio.sleep(0.01)
        assert nc.batches[1] == [ComputeStateType.RUNNING]
    finally:
        await cancel_and_wait([flusher])
        await node.ledger.close()
