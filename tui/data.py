"""The TUI's copy of the cluster: what the last polls returned, applied in one step each.

Screens read this and never fetch; the app applies a `PollResult` here and then tells the
active screen. Keeping the last good data is what lets the TUI show a disconnected banner
over the previous picture instead of an empty screen.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edge.models import Execution, Job, NodeState

from .client import JobDetail, PollResult

__all__ = ["ClusterData"]


def _version(job: Job) -> tuple[int, int, int, str, str, str]:
    """What changes whenever a job does; cheaper than comparing whole models."""
    state = job.State
    return (
        job.ModifyTime,
        job.Version,
        job.Revision,
        state.StateType.value,
        state.Message,
        job.Name,
    )


@dataclass
class ClusterData:
    jobs: dict[str, Job] = field(default_factory=dict)
    nodes: dict[str, NodeState] = field(default_factory=dict)
    nodes_unreadable: int = 0  # nodes in the last answer without an ID: not shown
    executions: dict[str, list[Execution]] = field(default_factory=dict)  # by job ID
    executions_marks: dict[str, int] = field(default_factory=dict)  # job ModifyTime fetched at
    detail: JobDetail | None = None
    detail_error: str = ""
    jobs_complete: bool = False  # the whole job list has been read at least once
    version: str = ""
    fetched_at: float = 0.0  # wall-clock seconds of the last applied poll
    generation: int = 0  # bumped by every apply
    changed_jobs: set[str] = field(default_factory=set)  # IDs changed by the last apply
    loaded: bool = False  # at least one poll applied

    def apply(self, result: PollResult) -> None:
        """Merge one poll into the data; jobs keyed by ID so a row only changes if it did."""
        changed: set[str] = set()
        for job in result.jobs:
            if not job.ID:
                continue
            old = self.jobs.get(job.ID)
            if old is None or _version(old) != _version(job):
                self.jobs[job.ID] = job
                changed.add(job.ID)
        if result.jobs_replace:
            keep = result.jobs_seen | {j.ID for j in result.jobs}
            for job_id in [j for j in self.jobs if j not in keep]:
                del self.jobs[job_id]
                self.executions.pop(job_id, None)
                self.executions_marks.pop(job_id, None)
                changed.add(job_id)
        if result.jobs_complete:
            self.jobs_complete = True
        if result.nodes is not None:
            self.nodes = {n.Info.NodeID: n for n in result.nodes if n.Info.NodeID}
            self.nodes_unreadable = sum(1 for n in result.nodes if not n.Info.NodeID)
        for job_id, executions in result.executions.items():
            if self.executions.get(job_id) != executions:
                changed.add(job_id)
            self.executions[job_id] = executions
            self.executions_marks[job_id] = result.executions_marks.get(job_id, 0)
        if result.nodes is not None:  # a lean page of a full sync leaves the rest as it was
            self.detail = result.detail
            self.detail_error = result.detail_error
        if result.version:
            self.version = result.version
        self.fetched_at = result.fetched_at
        self.changed_jobs = changed
        self.generation += 1
        self.loaded = True

    def all_executions(self) -> list[Execution]:
        return [e for executions in self.executions.values() for e in executions]

    def job_name(self, job_id: str) -> str:
        job = self.jobs.get(job_id)
        return job.Name if job is not None and job.Name else job_id
