"""A fixed cluster behind the TUI's `ApiLike` interface, for snapshot and unit tests.

Real Pilot tests run against real orchestrators; snapshots need data that never changes
(IDs, times, states), which only a canned source gives. Everything here is built from the
same wire models the API sends, and times are relative to a fixed clock.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from edge.client import LOG_STDERR, LOG_STDOUT, ApiError
from edge.models import (
    ComputeNodeInfo,
    ComputeState,
    ComputeStateType,
    ConnectionState,
    DesiredState,
    DesiredStateType,
    Event,
    Execution,
    GPUInfo,
    Inventory,
    Job,
    JobHistory,
    JobState,
    JobStateType,
    JobType,
    NodeConnection,
    NodeInfo,
    NodeMembership,
    NodeState,
    Resources,
    RunOutput,
    SpecConfig,
    StateChange,
    Task,
)

NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z: the fixed clock of every snapshot
NOW_NS = int(NOW * 1e9)
SECOND = 10**9
GIB = 2**30


def _ago(seconds: float) -> int:
    return NOW_NS - int(seconds * SECOND)


def _iso(seconds_ago: float) -> str:
    from datetime import datetime, timezone

    when = datetime.fromtimestamp(NOW - seconds_ago, tz=timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _job(
    n: int,
    name: str,
    state: JobStateType,
    engine: str = "wasm",
    kind: JobType = JobType.BATCH,
    created: float = 600,
    modified: float = 60,
    labels: dict[str, str] | None = None,
    message: str = "",
) -> Job:
    params: dict[str, Any] = {"EntryModule": "main.wasm"} if engine == "wasm" else {}
    if engine == "docker":
        params = {"Image": "localhost/busybox:latest", "Entrypoint": ["sh", "-c", "echo hi"]}
    return Job(
        ID=f"j-{n:08x}-0000-4000-8000-000000000000",
        Name=name,
        Type=kind,
        Labels=labels or {},
        Tasks=[Task(Name="main", Engine=SpecConfig(Type=engine, Params=params))],
        State=JobState(StateType=state, Message=message),
        Version=1,
        CreateTime=_ago(created),
        ModifyTime=_ago(modified),
    )


def _node(
    n: int,
    name: str,
    *,
    connected: bool = True,
    membership: NodeMembership = NodeMembership.APPROVED,
    gpus: int = 0,
    cpu: float = 4.0,
    used_cpu: float = 1.0,
    labels: dict[str, str] | None = None,
) -> NodeState:
    gpu_list = [
        GPUInfo(
            Index=i,
            Name="NVIDIA H100 80GB HBM3",
            Memory=80 * GIB,
            MemoryUsed=(12 + 30 * i) * GIB,
            Utilization=35 + 40 * i,
            PCIAddress=f"00000000:{0x18 + i:02X}:00.0",
            UUID=f"GPU-{n:04d}-{i}",
            DriverVersion="550.54.15",
        )
        for i in range(gpus)
    ]
    total = Resources(CPU=cpu, Memory=16 * GIB, Disk=200 * GIB, GPU=gpus, GPUs=gpu_list)
    free = Resources(
        CPU=cpu - used_cpu, Memory=12 * GIB, Disk=150 * GIB, GPU=max(0, gpus - 1), GPUs=gpu_list
    )
    return NodeState(
        Info=NodeInfo(
            NodeID=f"n-{n:08x}-0000-4000-8000-000000000000",
            NodeType="Compute",
            Labels={"name": name, "Architecture": "arm64", **(labels or {})},
            ComputeNodeInfo=ComputeNodeInfo(
                ExecutionEngines=["docker", "noop", "wasm"] if gpus else ["noop", "wasm"],
                Publishers=["local", "noop"],
                StorageSources=["inline", "local", "urldownload"],
                MaxCapacity=total,
                AvailableCapacity=free,
                RunningExecutions=1 if used_cpu else 0,
                Inventory=Inventory(
                    CPUModel="ARMv8 Processor rev 1 (v8l)",
                    CPUCount=int(cpu),
                    MemoryTotal=16 * GIB,
                    DiskTotal=256 * GIB,
                    DiskFree=150 * GIB,
                    GPUDriverVersion="550.54.15" if gpus else "",
                    Hostname=name,
                    OS="Linux 5.15.0-tegra",
                    Arch="aarch64",
                ),
            ),
            BacalhauVersion={"GitVersion": "v0.1.0", "Product": "bacedge"},
        ),
        Membership=membership,
        ConnectionState=ConnectionState(
            Status=NodeConnection.CONNECTED if connected else NodeConnection.DISCONNECTED,
            LastHeartbeat=_iso(2 if connected else 900),
            ConnectedSince=_iso(86400) if connected else "",
            DisconnectedSince="" if connected else _iso(840),
            LastError="" if connected else "no heartbeat for 45s",
        ),
    )


def _execution(
    n: int,
    job: Job,
    node: NodeState,
    state: ComputeStateType,
    created: float,
    modified: float,
    exit_code: int = 0,
    error: str = "",
) -> Execution:
    finished = state.terminal
    return Execution(
        ID=f"e-{n:08x}-0000-4000-8000-000000000000",
        JobID=job.ID,
        NodeID=node.Info.NodeID,
        DesiredState=DesiredState(
            StateType=DesiredStateType.STOPPED if finished else DesiredStateType.RUNNING
        ),
        ComputeState=ComputeState(StateType=state, Message=error),
        RunOutput=RunOutput(Stdout="hello\n", ExitCode=exit_code, ErrorMsg=error)
        if state in (ComputeStateType.COMPLETED, ComputeStateType.FAILED)
        else None,
        CreateTime=_ago(created),
        ModifyTime=_ago(modified),
    )


class FakeApi:
    """The canned cluster; records the calls that would change it."""

    base_url = "http://fake-orchestrator:1234"

    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []
        self.fail_with: Exception | None = None
        self.nodes = [
            _node(1, "edge-gpu-01", gpus=2, cpu=12, used_cpu=6, labels={"site": "plant-a"}),
            _node(2, "edge-pi-02", labels={"site": "plant-a", "zone": "line-3"}),
            _node(3, "edge-pi-03", connected=False, labels={"site": "plant-b"}),
            _node(
                4,
                "edge-new-04",
                membership=NodeMembership.PENDING,
                used_cpu=0,
                labels={"site": "plant-b"},
            ),
        ]
        a, b, c = self.nodes[0], self.nodes[1], self.nodes[2]
        self.jobs = [
            _job(
                1,
                "thermal-camera-infer",
                JobStateType.RUNNING,
                "docker",
                JobType.SERVICE,
                created=7200,
                modified=7100,
                labels={"site": "plant-a", "team": "vision"},
            ),
            _job(
                2,
                "vibration-fft",
                JobStateType.COMPLETED,
                created=900,
                modified=840,
                labels={"site": "plant-a"},
            ),
            _job(
                3,
                "log-shipper",
                JobStateType.RUNNING,
                "wasm",
                JobType.DAEMON,
                created=86400 * 2,
                modified=86400,
                labels={"site": "plant-b"},
            ),
            _job(
                4,
                "nightly-compact",
                JobStateType.FAILED,
                created=1800,
                modified=1500,
                message="execution failed on every node tried: exit code 3",
            ),
            _job(
                5,
                "calibrate-sensors",
                JobStateType.QUEUED,
                created=900,
                modified=900,
                message="no node has 2 GPUs free",
            ),
            _job(
                6,
                "firmware-check",
                JobStateType.STOPPED,
                "noop",
                JobType.OPS,
                created=3000,
                modified=2900,
            ),
            _job(7, "hello-wasm", JobStateType.COMPLETED, created=120, modified=118),
            _job(8, "[bracketed] name", JobStateType.PENDING, "noop", created=5, modified=5),
        ]
        j = self.jobs
        self.executions: dict[str, list[Execution]] = {
            j[0].ID: [_execution(1, j[0], a, ComputeStateType.RUNNING, 7190, 7180)],
            j[1].ID: [_execution(2, j[1], b, ComputeStateType.COMPLETED, 890, 840)],
            j[2].ID: [
                _execution(3, j[2], a, ComputeStateType.RUNNING, 86000, 86000),
                _execution(4, j[2], b, ComputeStateType.RUNNING, 86000, 86000),
                _execution(5, j[2], c, ComputeStateType.FAILED, 86000, 840, 1, "lost contact"),
            ],
            j[3].ID: [
                _execution(6, j[3], b, ComputeStateType.FAILED, 1790, 1600, 3, "exit code 3"),
                _execution(7, j[3], a, ComputeStateType.FAILED, 1590, 1500, 3, "exit code 3"),
            ],
            j[4].ID: [],
            j[5].ID: [_execution(8, j[5], a, ComputeStateType.CANCELLED, 2990, 2900)],
            j[6].ID: [_execution(9, j[6], b, ComputeStateType.COMPLETED, 119, 118)],
            j[7].ID: [],
        }
        self.log_lines: list[tuple[int, str]] = [
            (LOG_STDOUT, "starting thermal-camera-infer v2.3\n"),
            (LOG_STDOUT, "loaded model yolov8n (6.2 MB) on cuda:0\n"),
            (LOG_STDERR, "warning: frame 1021 dropped (camera timeout)\n"),
            (LOG_STDOUT, "frame 1022: 3 objects, 41 ms\n"),
            (LOG_STDERR, "error: inference failed on frame 1023: CUDA out of memory\n"),
            (LOG_STDOUT, "retrying with batch size 1\n"),
            (LOG_STDOUT, "frame 1023: 2 objects, 44 ms\n"),
        ]

    def _job(self, ref: str) -> Job:
        for job in self.jobs:
            if ref in (job.ID, job.Name) or job.ID.startswith(ref):
                return job
        raise ApiError(404, f"job {ref} not found", "NotFound")

    async def list_jobs(
        self,
        namespace: str | None = None,
        limit: int | None = None,
        next_token: str | None = None,
        order_by: str | None = None,
        reverse: bool = False,
        labels: str | Sequence[str] | Mapping[str, str] | None = None,
    ) -> tuple[list[Job], str | None]:
        if self.fail_with is not None:
            raise self.fail_with
        key = (lambda j: j.ModifyTime) if order_by == "modified_at" else (lambda j: j.CreateTime)
        jobs = sorted(self.jobs, key=key, reverse=True)
        start = int(next_token or 0)
        end = start + (limit or len(jobs))
        return jobs[start:end], (str(end) if end < len(jobs) else None)

    async def get_job(
        self, job_id: str, include: Sequence[str] = ()
    ) -> tuple[Job, list[JobHistory] | None, list[Execution] | None]:
        job = self._job(job_id)
        return job, self._history(job), list(self.executions.get(job.ID, []))

    def _history(self, job: Job) -> list[JobHistory]:
        created = (NOW_NS - job.CreateTime) / SECOND
        out = [
            JobHistory(
                JobID=job.ID,
                JobState=StateChange(Previous="Undefined", New="Pending"),
                Time=_iso(created),
                SeqNum=1,
                Event=Event(Topic="Submission", Message="Job submitted"),
            )
        ]
        for i, execution in enumerate(self.executions.get(job.ID, [])):
            out.append(
                JobHistory(
                    JobID=job.ID,
                    ExecutionID=execution.ID,
                    ExecutionState=StateChange(Previous=1, New=int(execution.state)),
                    Time=_iso((NOW_NS - execution.ModifyTime) / SECOND),
                    SeqNum=2 + i,
                    Event=Event(
                        Topic="Execution",
                        Message=execution.ComputeState.Message or execution.state.label,
                    ),
                )
            )
        return out

    async def job_executions(self, job_id: str) -> list[Execution]:
        return list(self.executions.get(self._job(job_id).ID, []))

    async def job_history(
        self,
        job_id: str,
        since: int | str | None = None,
        event_type: str | None = None,
        execution_id: str | None = None,
    ) -> list[JobHistory]:
        return self._history(self._job(job_id))

    async def list_nodes(
        self,
        limit: int | None = None,
        next_token: str | None = None,
        order_by: str | None = None,
        reverse: bool = False,
        labels: str | Sequence[str] | Mapping[str, str] | None = None,
        filter_approval: str | None = None,
        filter_status: str | None = None,
    ) -> tuple[list[NodeState], str | None]:
        if self.fail_with is not None:
            raise self.fail_with
        return list(self.nodes), None

    async def put_job(self, job: Mapping[str, Any], force: bool = False) -> dict[str, Any]:
        self.calls.append(("put_job", str(job.get("Name", ""))))
        return {"JobID": "j-new", "EvaluationID": "e", "Warnings": []}

    async def stop_job(self, job_id: str, reason: str | None = None) -> dict[str, Any]:
        self.calls.append(("stop_job", job_id))
        return {"EvaluationID": "eval-1"}

    async def rerun_job(self, job_id: str) -> dict[str, Any]:
        self.calls.append(("rerun_job", job_id))
        return {"JobID": job_id, "JobVersion": 2, "EvaluationID": "eval-2"}

    async def node_action(
        self, node_id: str, action: str, message: str | None = None
    ) -> dict[str, Any]:
        self.calls.append(("node_action", node_id, action))
        return {"Success": True, "Error": ""}

    async def agent_version(self) -> dict[str, Any]:
        return {"GitVersion": "v0.1.0"}

    async def stream_logs(
        self,
        job_id: str,
        execution_id: str | None = None,
        tail: bool = False,
        follow: bool = False,
    ) -> AsyncIterator[tuple[int, str]]:
        self._job(job_id)
        for entry in self.log_lines:
            yield entry

    async def aclose(self) -> None:
        return None
