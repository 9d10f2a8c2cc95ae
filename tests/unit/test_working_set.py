"""A long-running job's working set stays the size of its nodes, not of its past: a daemon
whose task keeps exiting makes a new execution a minute for as long as it runs. The
orchestrator keeps in memory (and plans over) what the planner reads; the rest stays in
the store, where the API still finds it, until `job_retention` removes it."""

from __future__ import annotations

from edge.models import ComputeState, ComputeStateType, Execution, Job, JobType
from edge.orchestrator.planners import working_set
from edge.orchestrator.planners.base import KEEP_ENDED, PlanContext, restart_wait
from edge.orchestrator.store import Batch, Store

from .test_offer_recovery import (
    NODE,
    FakeNats,
    handshake,
    orchestrator,
    store,  # noqa: F401  (the fixture)
)

S = 1_000_000_000
NOW = 1_700_000_000 * S
DONE, FAILED, RUNNING = (
    ComputeStateType.COMPLETED,
    ComputeStateType.FAILED,
    ComputeStateType.RUNNING,
)


def ended(
    i: int, node: str = NODE, state: ComputeStateType = DONE, version: int = 1, ran: int = 1
) -> Execution:
    """The i-th execution of job j-1, ended `ran` seconds after it started, a minute apart."""
    start = NOW - (1000 - i) * 60 * S
    return Execution(
        ID=f"e-{node[-4:]}-{i:04d}",
        JobID="j-1",
        NodeID=node,
        JobVersion=version,
        ComputeState=ComputeState(StateType=state, Message="exited"),
        CreateTime=start,
        ModifyTime=start + ran * S,
    )


def daemon(version: int = 1) -> Job:
    return Job.model_validate(
        {
            "ID": "j-1",
            "Type": "daemon",
            "Version": version,
            "Tasks": [{"Name": "main", "Engine": {"Type": "noop"}}],
        }
    )


def test_the_working_set_keeps_live_recent_and_refusals_and_the_same_restart_delay() -> None:
    job = daemon(version=2)
    past = [ended(i, "n-a") for i in range(100)] + [ended(i, "n-b") for i in range(50)]
    old_version = [ended(i, "n-a", version=1) for i in range(100, 110)]
    refusal = ended(5, "n-c", ComputeStateType.BID_REJECTED)
    live = ended(999, "n-a")
    live.ComputeState = ComputeState(StateType=RUNNING)
    for e in past:
        e.JobVersion = 2
    refusal.JobVersion = 2
    live.JobVersion = 2
    everything = [*old_version, *past, refusal, live]
    kept = working_set(job, everything)
    ids = {e.ID for e in kept}
    assert live.ID in ids and refusal.ID in ids
    assert not ids & {e.ID for e in old_version}  # another version's ended ones: unread
    on_a = [e for e in kept if e.NodeID == "n-a" and e.terminal]
    assert len(on_a) == KEEP_ENDED
    assert {e.ID for e in on_a} == {ended(i, "n-a").ID for i in range(100 - KEEP_ENDED, 100)}
    assert len([e for e in kept if e.NodeID == "n-b"]) == KEEP_ENDED
    assert [e.ID for e in kept] == [e.ID for e in everything if e.ID in ids]  # in order
    # What the daemon planner computes from them is unchanged: the crash loop's delay.
    just_after = ended(99, "n-a").ModifyTime + 2 * S
    ctx = PlanContext(now=just_after, restart_delay=1.0, restart_delay_max=60.0)
    mine = [e for e in everything if e.NodeID == "n-a" and e.JobVersion == 2 and e.terminal]
    assert restart_wait(mine, ctx) == restart_wait(on_a, ctx) == 58.0


async def test_a_crash_looping_daemon_holds_only_its_working_set_and_the_api_lists_all(
    store: Store,  # noqa: F811
) -> None:
    """A daemon that exited 300 times (a restart with that past in the store): the restart
    reads only its recent executions, planned it holds those and the new one; every
    execution is still listed, in order, with the one placed now (whose commit may still
    be on its way) last."""
    job = daemon()
    job.State.StateType = job.State.StateType.RUNNING
    batch = Batch()
    batch.jobs[job.ID] = job
    batch.new_versions.append(job)
    past = [ended(i, ran=3600) for i in range(300)]  # each ran an hour: no restart delay
    for execution in past:
        batch.executions[execution.ID] = execution
    await store.save(batch)

    orch = await orchestrator(store, FakeNats())
    await handshake(orch)
    assert len(orch.job_executions[job.ID]) == KEEP_ENDED  # the rest was never read
    assert [e.ID for e in await orch.executions_of(job.ID)] == [e.ID for e in past]
    await orch._evaluate([job.ID])  # the first plan places the new execution
    held = orch.job_executions[job.ID]
    assert len(held) == KEEP_ENDED + 1
    assert sum(1 for e in orch.executions.values() if e.JobID == job.ID) == KEEP_ENDED + 1
    (new,) = [orch.executions[e] for e in held if not orch.executions[e].terminal]
    listed = await orch.executions_of(job.ID)
    assert [e.ID for e in listed] == [e.ID for e in past] + [new.ID]
    assert listed[-1] is new  # the working set's copy, not the store's
    assert job.Type == JobType.DAEMON


async def test_a_restart_reads_exactly_the_working_set_of_daemons_and_services(
    store: Store,  # noqa: F811
) -> None:
    """The store's query (`Store.active`) picks what `working_set` keeps, for both kinds:
    live executions, this version's latest ended ones per node or replica, a refusal per
    node; nothing of an older version that has ended."""
    batch = Batch()
    everything: dict[str, list[Execution]] = {}
    for kind in (JobType.DAEMON, JobType.SERVICE):
        job = Job.model_validate(
            {
                "ID": f"j-{kind.value}",
                "Type": kind.value,
                "Version": 2,
                "Count": 3,
                "State": {"StateType": "Running"},
                "Tasks": [{"Name": "main", "Engine": {"Type": "noop"}}],
            }
        )
        batch.jobs[job.ID] = job
        batch.new_versions.append(job)
        made = []
        for i in range(120):
            node = f"n-{i % 3}"
            state = (
                ComputeStateType.BID_REJECTED if i % 17 == 0 else (RUNNING if i == 119 else DONE)
            )
            execution = ended(i, node, state, version=1 if i < 20 else 2)
            execution.ID = f"e-{kind.value}-{i:04d}"
            execution.JobID = job.ID
            execution.PartitionIndex = i % 3 if kind == JobType.SERVICE else 0
            made.append(execution)
            batch.executions[execution.ID] = execution
        everything[job.ID] = made
        batch.jobs[job.ID] = job
    await store.save(batch)
    jobs, executions, partial = await store.active(KEEP_ENDED)
    assert partial == set(everything)
    for job in jobs:
        read = {e.ID for e in executions if e.JobID == job.ID}
        kept = {e.ID for e in working_set(job, everything[job.ID])}
        assert read == kept and len(read) < 120, job.Type
