"""A fixed cluster behind the TUI's `ApiLike` interface, for snapshot and unit tests.

Real Pilot tests run against real orchestrators; snapshots need data that never changes
(IDs, times, states), which only a canned source gives. Everything here is built from the
same wire models the API sends, and times are relative to a fixed clock.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from aiohttp import web

from edge.auth import ACTIONS
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
    NodeScheduling,
    NodeState,
    Resources,
    RunOutput,
    SchedulingState,
    SpecConfig,
    StateChange,
    Task,
)

NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z: the fixed clock of every snapshot
NOW_NS = int(NOW * 1e9)
SECOND = 10**9
GIB = 2**30
MIB_PER_GIB = 1024


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
    scheduling: SchedulingState | None = None,
) -> NodeState:
    gpu_list = [
        GPUInfo(
            Index=i,
            Name="NVIDIA H100 80GB HBM3",
            Memory=80 * MIB_PER_GIB,  # MiB, as on the wire
            MemoryUsed=(12 + 30 * i) * MIB_PER_GIB,
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
        Scheduling=scheduling or SchedulingState(),
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
    published: SpecConfig | None = None,
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
        PublishedResult=published or SpecConfig(),
        CreateTime=_ago(created),
        ModifyTime=_ago(modified),
    )


def published_results(api: FakeApi) -> Job:
    """The completed job vibration-fft with four completed executions, published to S3, by
    the node (`local`), to the orchestrator's bucket (`s3managed`), and not at all; and a
    failed one, which has no results."""
    job = api.jobs[1]
    b, c = api.nodes[1], api.nodes[0]
    s3 = SpecConfig(
        Type="s3",
        Params={
            "Bucket": "results",
            "Key": f"{job.ID}/e-00000002-0000-4000-8000-000000000000.tar.gz",
            "Endpoint": "http://10.1.0.2:9000",
            "Encoding": "gzip",
        },
    )
    url = "http://10.1.0.12:6001/e-0000000a-0000-4000-8000-000000000000.tar.gz"
    local = SpecConfig(Type="urlDownload", Params={"URL": url})
    managed = SpecConfig(Type="s3managed", Params={"Bucket": "bacedge", "Key": f"{job.ID}/e-c"})
    done = ComputeStateType.COMPLETED
    api.executions[job.ID] = [
        _execution(2, job, b, done, 890, 840, published=s3),
        _execution(10, job, c, done, 889, 845, published=local),
        _execution(11, job, b, ComputeStateType.FAILED, 888, 850, 1, "exit code 1"),
        _execution(12, job, c, done, 887, 846, published=managed),
        _execution(13, job, b, done, 886, 847),
    ]
    return job


class FakeApi:
    """The canned cluster; records the calls that would change it."""

    base_url = "http://fake-orchestrator:1234"

    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []
        self.node_actions: list[tuple[str, str, str | None, str | None]] = []  # with arguments
        self.fail_with: Exception | None = None
        self.actions: list[str] = list(ACTIONS)  # what the credentials allow
        self.nodes = [
            _node(1, "edge-gpu-01", gpus=2, cpu=12, used_cpu=6, labels={"site": "plant-a"}),
            _node(
                2,
                "edge-pi-02",
                labels={"site": "plant-a", "zone": "line-3"},
                scheduling=SchedulingState(
                    Status=NodeScheduling.DRAINING,
                    Message="SD card swap",
                    Since=_iso(300),
                    DrainDeadline=_iso(-600),
                ),
            ),
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
        self,
        node_id: str,
        action: str,
        message: str | None = None,
        deadline: str | None = None,
    ) -> dict[str, Any]:
        self.calls.append(("node_action", node_id, action))
        self.node_actions.append((node_id, action, message, deadline))
        return {"Success": True, "Error": ""}

    async def agent_version(self) -> dict[str, Any]:
        return {"GitVersion": "v0.1.0"}

    async def agent_capabilities(self) -> dict[str, Any]:
        return {"Alias": "tester", "Actions": list(self.actions), "AuthRequired": True}

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


# --------------------------------------------------------------------------- Bacalhau servers
# Answers shaped as Bacalhau's own JSON (pkg/models, pkg/publicapi/apimodels), read the way
# the API client reads them, for a current server and for one up to v1.5.1, whose node
# connection is a word and whose execution states are numbered the old way.

PEER_ID = "QmXaXu9N5GNetatsvwnTfQqNtSeKAD6uCmarbh3LMRYAcF"  # a 46-character libp2p peer ID
UUID_NODE_ID = "n-7d3f1c2a-9b4e-4f6a-8c1d-2e5b7a9c0f13"
ORCHESTRATOR_ID = "bacalhau-orchestrator-0"

# Bacalhau's ExecutionStateType up to v1.5.1 (execution_state_string.go before Running and
# Publishing were added), and from v1.6: what each state is called on each server's wire.
OLD_EXECUTION_NUMBERS = {
    "New": 1,
    "AskForBid": 2,
    "AskForBidAccepted": 3,
    "AskForBidRejected": 4,
    "BidAccepted": 5,
    "BidRejected": 6,
    "Completed": 7,
    "Failed": 8,
    "Cancelled": 9,
}
NEW_EXECUTION_NUMBERS = {state.label: int(state) for state in ComputeStateType}


def bacalhau_version(version: str) -> dict[str, Any]:
    """`GET /api/v1/agent/version` from Bacalhau: BuildVersionInfo, flat."""
    major, minor, *_ = version.lstrip("v").split(".")
    return {
        "Major": major,
        "Minor": minor,
        "GitVersion": version,
        "GitCommit": "4c2e1d8a2b3f9a7e6d5c4b3a2f1e0d9c8b7a6f5e",
        "BuildDate": "2024-10-28T11:02:59Z",
        "GOOS": "linux",
        "GOARCH": "amd64",
    }


def _bacalhau_resources(
    cpu: float, memory: int, disk: int, gpus: list[dict[str, Any]]
) -> dict[str, Any]:
    out: dict[str, Any] = {"CPU": cpu, "Memory": memory, "Disk": disk}  # omitempty: no zeros
    if gpus:
        out["GPU"] = len(gpus)
        out["GPUs"] = gpus
    return out


def bacalhau_nodes(version: str) -> list[dict[str, Any]]:
    """`GET /api/v1/orchestrator/nodes` Items: a GPU node named by its peer ID, a CPU node
    with an `n-` ID, and the orchestrator itself."""
    legacy = version_tuple(version) < (1, 6)
    t4 = {
        "Index": 0,
        "Name": "Tesla T4",
        "Vendor": "NVIDIA",
        "Memory": 15360,  # MiB
        "PCIAddress": "00000000:00:1E.0",
    }
    build = bacalhau_version(version)

    def compute(
        node_id: str, cpu: float, memory: int, disk: int, gpus: list[dict[str, Any]]
    ) -> dict[str, Any]:
        return {
            "NodeID": node_id,
            "NodeType": "Compute",
            "Labels": {
                "Architecture": "amd64",
                "Operating-System": "linux",
                "env": "prod",
                "region": "eu-west-1",
            },
            "SupportedProtocols": ["bprotocol/v2"] if legacy else ["ncl/v1", "bprotocol/v2"],
            "ComputeNodeInfo": {
                "ExecutionEngines": ["docker", "wasm"],
                "Publishers": ["noop", "local", "s3"],
                "StorageSources": ["urlDownload", "s3", "inline", "localDirectory"],
                "MaxCapacity": _bacalhau_resources(cpu, memory, disk, gpus),
                "QueueCapacity": {},
                "AvailableCapacity": _bacalhau_resources(cpu - 1, memory - 2 * GIB, disk, gpus),
                "MaxJobRequirements": _bacalhau_resources(cpu, memory, disk, gpus),
                "RunningExecutions": 1,
                "EnqueuedExecutions": 0,
            },
            "BacalhauVersion": build,
        }

    infos = [
        compute(PEER_ID, 4.0, 15 * GIB, 120 * GIB, [t4]),
        compute(UUID_NODE_ID, 8.0, 32 * GIB, 250 * GIB, []),
        {
            "NodeID": ORCHESTRATOR_ID,
            "NodeType": "Requester",
            "Labels": {"Architecture": "amd64", "Operating-System": "linux"},
            "ComputeNodeInfo": None,
            "BacalhauVersion": build,
        },
    ]
    if legacy:  # NodeState{Info, Membership, Connection}: the connection as a word
        return [{"Info": i, "Membership": "APPROVED", "Connection": "CONNECTED"} for i in infos]
    return [
        {
            "Info": i,
            "Membership": "APPROVED",
            "ConnectionState": {
                "Status": "CONNECTED",
                "LastHeartbeat": _iso(3),
                "ConnectedSince": _iso(86400),
            },
        }
        for i in infos
    ]


def version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.lstrip("v").split("."))


BACALHAU_JOB_ID = "j-5b9e2c71-4d3a-4e8f-9a6b-1c2d3e4f5a6b"
# What each execution of the Bacalhau job went through, as its state names.
BACALHAU_EXECUTION_STATES = ["Completed", "Failed", "BidRejected", "Cancelled", "BidAccepted"]


def bacalhau_job() -> dict[str, Any]:
    return {
        "ID": BACALHAU_JOB_ID,
        "Name": "nightly-report",
        "Namespace": "default",
        "Type": "batch",
        "Priority": 0,
        "Count": 1,
        "Constraints": [],
        "Meta": {"bacalhau.org/requester.id": ORCHESTRATOR_ID},
        "Labels": {},
        "Tasks": [
            {
                "Name": "main",
                "Engine": {
                    "Type": "docker",
                    "Params": {"Image": "ubuntu:24.04", "Entrypoint": ["echo", "hi"]},
                },
                "Publisher": {"Type": "local"},
                "Resources": {"CPU": "0.5", "Memory": "512mb"},
                "Network": {"Type": "None"},
                "Timeouts": {"TotalTimeout": 1800},
            }
        ],
        "State": {"StateType": "Completed", "Message": ""},
        "Version": 0,
        "Revision": 7,
        "CreateTime": _ago(1800),
        "ModifyTime": _ago(1200),
    }


def bacalhau_executions(version: str) -> list[dict[str, Any]]:
    """The job's executions, their states numbered as a server of `version` numbers them."""
    numbers = OLD_EXECUTION_NUMBERS if version_tuple(version) < (1, 6) else NEW_EXECUTION_NUMBERS
    if version_tuple(version) >= (1, 6):
        states = [s if s != "BidAccepted" else "Running" for s in BACALHAU_EXECUTION_STATES]
    else:
        states = BACALHAU_EXECUTION_STATES
    out = []
    for n, state in enumerate(states, start=1):
        done = state in ("Completed", "Failed", "BidRejected", "Cancelled")
        out.append(
            {
                "ID": f"e-{n:08x}-6a45-457e-825c-40fd2fad768f",
                "Namespace": "default",
                "EvalID": "5d1c7b2e-0f3a-4b6c-9d8e-7f6a5b4c3d2e",
                "Name": BACALHAU_JOB_ID,
                "NodeID": PEER_ID if n % 2 else UUID_NODE_ID,
                "JobID": BACALHAU_JOB_ID,
                "AllocatedResources": {"Tasks": {"main": {"CPU": 0.5, "Memory": 512 * 10**6}}},
                "DesiredState": {"StateType": 2 if done else 1, "Message": ""},
                "ComputeState": {"StateType": numbers[state], "Message": ""},
                "PublishedResult": {"Type": ""},
                "RunOutput": {"Stdout": "hi\n", "stderr": "", "ExitCode": 0, "ErrorMsg": ""}
                if state == "Completed"
                else None,
                "Revision": 3,
                "CreateTime": _ago(1700 - n),
                "ModifyTime": _ago(1300 - n),
            }
        )
    return out


def bacalhau_history(version: str) -> list[dict[str, Any]]:
    """Execution-level history: each execution from New to where it ended."""
    numbers = OLD_EXECUTION_NUMBERS if version_tuple(version) < (1, 6) else NEW_EXECUTION_NUMBERS
    out = []
    for seq, execution in enumerate(bacalhau_executions(version), start=1):
        out.append(
            {
                "Type": "ExecutionLevel",
                "JobID": BACALHAU_JOB_ID,
                "NodeID": execution["NodeID"],
                "ExecutionID": execution["ID"],
                "ExecutionState": {
                    "Previous": numbers["New"],
                    "New": execution["ComputeState"]["StateType"],
                },
                "NewRevision": seq,
                "Time": _iso(1300 - seq),
            }
        )
    return out


class BacalhauApi(FakeApi):
    """A Bacalhau orchestrator of the given version, behind the TUI's `ApiLike`: its answers
    are Bacalhau's JSON, turned into models as the API client turns them."""

    base_url = "http://bacalhau:1234"

    def __init__(self, version: str = "v1.7.0") -> None:
        super().__init__()
        self.version = version
        self.nodes = [NodeState.model_validate(n) for n in bacalhau_nodes(version)]
        job = Job.model_validate(bacalhau_job())
        self.jobs = [job]
        self.executions = {
            job.ID: [Execution.model_validate(e) for e in bacalhau_executions(version)]
        }
        self.history_items = [JobHistory.model_validate(h) for h in bacalhau_history(version)]

    def _history(self, job: Job) -> list[JobHistory]:
        return list(self.history_items)

    async def agent_version(self) -> dict[str, Any]:
        return bacalhau_version(self.version)

    async def agent_capabilities(self) -> dict[str, Any]:
        raise ApiError(404, "Not Found", "NotFound")  # a bacedge addition Bacalhau lacks


def bacalhau_app(version: str) -> web.Application:
    """A Bacalhau orchestrator of `version` as its HTTP API answers (its JSON, not its
    code): for tests that need the real API client in the path (the TUI's, the CLI's)."""

    def page(items: list[Any]) -> web.Response:
        return web.json_response({"Items": items, "NextToken": ""})

    async def jobs(_request: web.Request) -> web.Response:
        return page([bacalhau_job()])

    async def job(request: web.Request) -> web.Response:
        body: dict[str, Any] = {"Job": bacalhau_job()}
        include = request.query.get("include", "")
        if "history" in include:
            body["History"] = {"Items": bacalhau_history(version), "NextToken": ""}
        if "executions" in include:
            body["Executions"] = {"Items": bacalhau_executions(version), "NextToken": ""}
        return web.json_response(body)

    async def executions(_request: web.Request) -> web.Response:
        return page(bacalhau_executions(version))

    async def history(_request: web.Request) -> web.Response:
        return page(bacalhau_history(version))

    async def nodes(_request: web.Request) -> web.Response:
        return web.json_response({"Nodes": bacalhau_nodes(version), "NextToken": ""})

    async def agent_version(_request: web.Request) -> web.Response:
        return web.json_response(bacalhau_version(version))

    app = web.Application()
    prefix = "/api/v1/orchestrator"
    app.router.add_get(f"{prefix}/jobs", jobs)
    app.router.add_get(f"{prefix}/jobs/{{id}}", job)
    app.router.add_get(f"{prefix}/jobs/{{id}}/executions", executions)
    app.router.add_get(f"{prefix}/jobs/{{id}}/history", history)
    app.router.add_get(f"{prefix}/nodes", nodes)
    app.router.add_get("/api/v1/agent/version", agent_version)
    return app
