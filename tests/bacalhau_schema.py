"""Bacalhau's API response shapes, written out by hand, and a checker for JSON answers.

Source: Bacalhau's published OpenAPI (swagger 2.0) document,
`webui/lib/api/schema/swagger.json` of bacalhau-project/bacalhau (the newest stored; the
older `docs/swagger.json` describes the same v1 models with fewer fields), read property by
property. Where that document is generated from the Go types by swag and so says less than
the Go code sends, the Go code decides, and each such place says why:

- Types with `MarshalText`/`MarshalJSON` go over the wire as strings although swag calls them
  integers: job states (`models.JobStateType`), `models.JobHistoryType`, `models.NodeType`,
  `models.Network`, node membership and connection (`PENDING`, `CONNECTED`, ...), and the
  config's `types.Duration` ("30s"). Execution states have no such method: integers.
- `time.Time` fields are RFC 3339 strings that Go's decoder must parse; an empty string is
  an error for it (Go itself sends "0001-01-01T00:00:00Z" for the zero time).
- Go slices, maps and pointers may be `null`; strings, numbers, booleans and embedded
  structs never are.
- `models.BuildVersionInfo` is spelled as its JSON tags in `pkg/models` (`GitVersion`,
  `GOOS`; the legacy `model/v1beta1` had `gitversion`, which bacedge reads but never sends).
  `models.GPU` has no JSON tags in Go, so its keys are the field names (`Index`, `Name`,
  `Vendor`, `Memory`, `PCIAddress`), whatever the generated document's lowercase says.

`required` lists the properties Go always writes (no `omitempty`) that clients rely on.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

# -- JSON types ---------------------------------------------------------------------------


@dataclass(frozen=True)
class T:
    """A JSON type: kind, plus what it holds (arrays, maps), refers to, or may be."""

    kind: str  # string integer uint number boolean time duration object array map ref any
    item: T | None = None
    ref: str = ""
    enum: tuple[Any, ...] = ()
    enum_name: str = ""
    nullable: bool = False

    def describe(self) -> str:
        if self.kind == "ref":
            return f"object ({self.ref})"
        if self.kind == "time":
            return "RFC 3339 time string"
        if self.kind == "duration":
            return "Go duration string"
        return {"uint": "non-negative integer", "map": "object"}.get(self.kind, self.kind)


S = T("string")
I = T("integer")  # noqa: E741  (a JSON integer, as Go's int and int64 decode it)
U = T("uint")  # Go's uint64: an integer, never negative
N = T("number")
B = T("boolean")
TIME = T("time")
DURATION = T("duration")
ANY = T("any")
OBJECT = T("object", nullable=True)  # a free-form object (json.RawMessage, interface{})


def arr(item: T) -> T:
    return T("array", item=item, nullable=True)


def dmap(value: T) -> T:
    return T("map", item=value, nullable=True)


def ref(name: str, nullable: bool = False) -> T:
    return T("ref", ref=name, nullable=nullable)


def enum(name: str, base: T, *values: Any) -> T:
    return T(base.kind, enum=values, enum_name=name)


@dataclass(frozen=True)
class Definition:
    properties: dict[str, T]
    required: frozenset[str] = frozenset()


def d(required: Collection[str] = (), **properties: T) -> Definition:
    return Definition(properties, frozenset(required))


# -- enums --------------------------------------------------------------------------------

JOB_STATES = ("Undefined", "Pending", "Queued", "Running", "Completed", "Failed", "Stopped")
JOB_STATE = enum("models.JobStateType", S, *JOB_STATES)
EXECUTION_STATE = enum("models.ExecutionStateType", I, *range(12))  # 0 Undefined .. 11 Cancelled
DESIRED_STATE = enum("models.ExecutionDesiredStateType", I, 0, 1, 2)
JOB_TYPE = enum("models.Job.Type", S, "batch", "ops", "daemon", "service")
HISTORY_TYPE = enum("models.JobHistoryType", S, "Undefined", "JobLevel", "ExecutionLevel")
NODE_TYPE = enum("models.NodeType", S, "Requester", "Compute")
PROTOCOL = enum("models.Protocol", S, "ncl/v1", "bprotocol/v2")
MEMBERSHIP = enum("models.NodeMembershipState", S, "PENDING", "APPROVED", "REJECTED")
CONNECTION = enum("models.NodeConnectionState", S, "CONNECTED", "DISCONNECTED")
NETWORK = enum("models.Network", S, "Default", "None", "Host", "Full", "HTTP", "Bridge")
GPU_VENDOR = enum("models.GPUVendor", S, "NVIDIA", "AMD/ATI", "Intel")
OPERATOR = enum("selection.Operator", S, "!", "=", "==", "in", "!=", "notin", "exists", "gt", "lt")

# -- definitions --------------------------------------------------------------------------

DEFINITIONS: dict[str, Definition] = {
    # agent
    "apimodels.IsAliveResponse": d(["Status"], Status=S),
    "apimodels.GetVersionResponse": d(
        ["GitVersion"],
        Major=S,
        Minor=S,
        GitVersion=S,
        GitCommit=S,
        BuildDate=TIME,
        GOOS=S,
        GOARCH=S,
    ),
    "models.BuildVersionInfo": d(
        Major=S,
        Minor=S,
        GitVersion=S,
        GitCommit=S,
        BuildDate=TIME,
        GOOS=S,
        GOARCH=S,
    ),
    "apimodels.GetAgentConfigResponse": d(["config"], config=ref("types.Bacalhau")),
    # nodes
    "models.NodeInfo": d(
        ["NodeID", "NodeType"],
        NodeID=S,
        NodeType=NODE_TYPE,
        Labels=dmap(S),
        SupportedProtocols=arr(PROTOCOL),
        ComputeNodeInfo=ref("models.ComputeNodeInfo"),
        BacalhauVersion=ref("models.BuildVersionInfo"),
    ),
    "models.ComputeNodeInfo": d(
        ExecutionEngines=arr(S),
        Publishers=arr(S),
        StorageSources=arr(S),
        MaxCapacity=ref("models.Resources"),
        QueueCapacity=ref("models.Resources"),
        AvailableCapacity=ref("models.Resources"),
        MaxJobRequirements=ref("models.Resources"),
        RunningExecutions=I,
        EnqueuedExecutions=I,
        address=S,
    ),
    "models.Resources": d(CPU=N, Memory=U, Disk=U, GPU=U, GPUs=arr(ref("models.GPU"))),
    "models.GPU": d(Index=U, Name=S, Vendor=GPU_VENDOR, Memory=U, PCIAddress=S),
    "models.NodeState": d(
        ["Info", "Membership", "ConnectionState"],
        Info=ref("models.NodeInfo"),
        Membership=MEMBERSHIP,
        Connection=CONNECTION,  # deprecated: ConnectionState.Status
        ConnectionState=ref("models.ConnectionState"),
    ),
    "models.ConnectionState": d(
        ["Status", "LastHeartbeat", "ConnectedSince"],
        Status=CONNECTION,
        LastHeartbeat=TIME,
        ConnectedSince=TIME,
        DisconnectedSince=TIME,
        LastComputeSeqNum=U,
        LastOrchestratorSeqNum=U,
        LastError=S,
    ),
    "apimodels.ListNodesResponse": d(
        ["Nodes", "NextToken"], Nodes=arr(ref("models.NodeState")), NextToken=S
    ),
    "apimodels.GetNodeResponse": d(["Node"], Node=ref("models.NodeState", nullable=True)),
    "apimodels.PutNodeResponse": d(["Success", "Error"], Success=B, Error=S),
    # jobs
    "apimodels.PutJobResponse": d(
        ["JobID", "EvaluationID"], JobID=S, EvaluationID=S, Warnings=arr(S)
    ),
    "apimodels.StopJobResponse": d(["EvaluationID"], EvaluationID=S),
    "apimodels.ListJobsResponse": d(
        ["Items", "NextToken"], Items=arr(ref("models.Job")), NextToken=S
    ),
    "apimodels.ListJobHistoryResponse": d(
        ["Items", "NextToken"], Items=arr(ref("models.JobHistory")), NextToken=S
    ),
    "apimodels.ListJobExecutionsResponse": d(
        ["Items", "NextToken"], Items=arr(ref("models.Execution")), NextToken=S
    ),
    "apimodels.ListJobResultsResponse": d(
        ["Items", "NextToken"], Items=arr(ref("models.SpecConfig")), NextToken=S
    ),
    "apimodels.GetJobResponse": d(
        ["Job"],
        Job=ref("models.Job", nullable=True),
        History=ref("apimodels.ListJobHistoryResponse", nullable=True),
        Executions=ref("apimodels.ListJobExecutionsResponse", nullable=True),
    ),
    "models.Job": d(
        ["ID", "Name", "Namespace", "Type", "Count", "Tasks", "State", "Version"],
        ID=S,
        Name=S,
        Namespace=S,
        Type=JOB_TYPE,
        Priority=I,
        Count=I,
        Constraints=arr(ref("models.LabelSelectorRequirement", nullable=True)),
        Meta=dmap(S),
        Labels=dmap(S),
        Tasks=arr(ref("models.Task", nullable=True)),
        State=ref("models.State-models_JobStateType"),
        Version=U,
        Revision=U,
        CreateTime=I,
        ModifyTime=I,
    ),
    "models.LabelSelectorRequirement": d(
        ["Key", "Operator"], Key=S, Operator=OPERATOR, Values=arr(S)
    ),
    "models.State-models_JobStateType": d(
        ["StateType"], StateType=JOB_STATE, Message=S, Details=dmap(S)
    ),
    "models.Task": d(
        ["Name", "Engine"],
        Name=S,
        Engine=ref("models.SpecConfig", nullable=True),
        Publisher=ref("models.SpecConfig", nullable=True),
        Env=dmap(S),
        Meta=dmap(S),
        InputSources=arr(ref("models.InputSource", nullable=True)),
        ResultPaths=arr(ref("models.ResultPath", nullable=True)),
        Resources=ref("models.ResourcesConfig", nullable=True),
        Network=ref("models.NetworkConfig", nullable=True),
        Timeouts=ref("models.TimeoutConfig", nullable=True),
    ),
    "models.SpecConfig": d(["Type"], Type=S, Params=dmap(ANY)),
    "models.InputSource": d(
        ["Source", "Target"], Source=ref("models.SpecConfig", nullable=True), Alias=S, Target=S
    ),
    "models.ResultPath": d(["Name", "Path"], Name=S, Path=S),
    "models.ResourcesConfig": d(CPU=S, Memory=S, Disk=S, GPU=S),
    "models.NetworkConfig": d(
        ["Type"], Type=NETWORK, Domains=arr(S), Ports=arr(ref("models.Port", nullable=True))
    ),
    "models.Port": d(["Name"], Name=S, Static=I, Target=I, HostNetwork=S),
    "models.TimeoutConfig": d(ExecutionTimeout=I, QueueTimeout=I, TotalTimeout=I),
    "models.Execution": d(
        ["ID", "JobID", "NodeID", "DesiredState", "ComputeState", "CreateTime", "ModifyTime"],
        ID=S,
        Namespace=S,
        EvalID=S,
        Name=S,
        NodeID=S,
        JobID=S,
        Job=ref("models.Job", nullable=True),
        AllocatedResources=ref("models.AllocatedResources", nullable=True),
        DesiredState=ref("models.State-models_ExecutionDesiredStateType"),
        ComputeState=ref("models.State-models_ExecutionStateType"),
        PublishedResult=ref("models.SpecConfig", nullable=True),
        RunOutput=ref("models.RunCommandResult", nullable=True),
        PreviousExecution=S,
        NextExecution=S,
        FollowupEvalID=S,
        PartitionIndex=I,
        Revision=U,
        CreateTime=I,
        ModifyTime=I,
    ),
    "models.AllocatedResources": d(Tasks=dmap(ref("models.Resources", nullable=True))),
    "models.State-models_ExecutionStateType": d(
        ["StateType"], StateType=EXECUTION_STATE, Message=S, Details=dmap(S)
    ),
    "models.State-models_ExecutionDesiredStateType": d(
        ["StateType"], StateType=DESIRED_STATE, Message=S, Details=dmap(S)
    ),
    "models.RunCommandResult": d(
        ["ExitCode"],
        Stdout=S,
        StdoutTruncated=B,
        stderr=S,
        StderrTruncated=B,
        ExitCode=I,
        ErrorMsg=S,
    ),
    "models.JobHistory": d(
        ["Type", "JobID", "Time", "Event"],
        Type=HISTORY_TYPE,
        JobID=S,
        NodeID=S,  # in the Go type, not (yet) in the document
        ExecutionID=S,
        JobState=ref("models.StateChange-models_JobStateType", nullable=True),
        ExecutionState=ref("models.StateChange-models_ExecutionStateType", nullable=True),
        NewRevision=U,
        Comment=S,
        Time=TIME,
        SeqNum=U,
        Event=ref("models.Event"),
    ),
    "models.StateChange-models_JobStateType": d(Previous=JOB_STATE, New=JOB_STATE),
    "models.StateChange-models_ExecutionStateType": d(
        Previous=EXECUTION_STATE, New=EXECUTION_STATE
    ),
    "models.Event": d(
        ["Message", "Topic", "Timestamp"], Message=S, Topic=S, Timestamp=TIME, Details=dmap(S)
    ),
    # config (`GET /api/v1/agent/config` -> {"config": types.Bacalhau})
    "types.Bacalhau": d(
        API=ref("types.API"),
        NameProvider=S,
        DataDir=S,
        Orchestrator=ref("types.Orchestrator"),
        Compute=ref("types.Compute"),
        WebUI=ref("types.WebUI"),
        InputSources=OBJECT,
        Publishers=OBJECT,
        Engines=ref("types.EngineConfig"),
        JobDefaults=ref("types.JobDefaults"),
        JobAdmissionControl=ref("types.JobAdmissionControl"),
        Logging=ref("types.Logging"),
        UpdateConfig=ref("types.UpdateConfig"),
        FeatureFlags=OBJECT,
        DisableAnalytics=B,
        Labels=dmap(S),
        ResultDownloaders=OBJECT,
        StrictVersionMatch=B,
    ),
    "types.API": d(Host=S, Port=I, TLS=OBJECT, Auth=OBJECT),
    "types.Orchestrator": d(
        Enabled=B,
        Host=S,
        Port=I,
        Advertise=S,
        Auth=ref("types.OrchestratorAuth"),
        TLS=OBJECT,
        Cluster=OBJECT,
        NodeManager=ref("types.NodeManager"),
        Scheduler=ref("types.Scheduler"),
        EvaluationBroker=ref("types.EvaluationBroker"),
        License=OBJECT,
        SupportReverseProxy=B,
    ),
    "types.OrchestratorAuth": d(Token=S),
    "types.NodeManager": d(DisconnectTimeout=DURATION, ManualApproval=B),
    "types.Scheduler": d(
        WorkerCount=I,
        HousekeepingInterval=DURATION,
        HousekeepingTimeout=DURATION,
        QueueBackoff=DURATION,
    ),
    "types.EvaluationBroker": d(VisibilityTimeout=DURATION, MaxRetryCount=I),
    "types.Compute": d(
        Enabled=B,
        Orchestrators=arr(S),
        Auth=ref("types.ComputeAuth"),
        TLS=OBJECT,
        Heartbeat=ref("types.Heartbeat"),
        AllocatedCapacity=ref("types.ResourceScaler"),
        AllowListedLocalPaths=arr(S),
        Env=OBJECT,
        Network=OBJECT,
    ),
    "types.ComputeAuth": d(Token=S),
    "types.Heartbeat": d(
        InfoUpdateInterval=DURATION, ResourceUpdateInterval=DURATION, Interval=DURATION
    ),
    "types.ResourceScaler": d(CPU=S, Memory=S, Disk=S, GPU=S),
    "types.WebUI": d(Enabled=B, Listen=S, Backend=S),
    "types.EngineConfig": d(Disabled=arr(S), Types=OBJECT),
    "types.JobDefaults": d(
        Batch=ref("types.BatchJobDefaultsConfig"),
        Ops=ref("types.BatchJobDefaultsConfig"),
        Daemon=ref("types.LongRunningJobDefaultsConfig"),
        Service=ref("types.LongRunningJobDefaultsConfig"),
    ),
    "types.BatchJobDefaultsConfig": d(Priority=I, Task=ref("types.BatchTaskDefaultConfig")),
    "types.BatchTaskDefaultConfig": d(
        Resources=ref("types.ResourcesConfig"),
        Publisher=ref("types.DefaultPublisherConfig"),
        Timeouts=ref("types.TaskTimeoutConfig"),
    ),
    "types.LongRunningJobDefaultsConfig": d(
        Priority=I, Task=ref("types.LongRunningTaskDefaultConfig")
    ),
    "types.LongRunningTaskDefaultConfig": d(Resources=ref("types.ResourcesConfig")),
    "types.ResourcesConfig": d(CPU=S, Memory=S, Disk=S, GPU=S),
    "types.DefaultPublisherConfig": d(Type=S, Params=dmap(S)),
    "types.TaskTimeoutConfig": d(ExecutionTimeout=DURATION, TotalTimeout=DURATION),
    "types.JobAdmissionControl": d(
        Locality=ANY,  # models.JobSelectionDataLocality
        RejectStatelessJobs=B,
        AcceptNetworkedJobs=B,  # in the Go type up to 1.6, "deprecated in v1.7"
        RejectNetworkedJobs=B,
        ProbeHTTP=S,
        ProbeExec=S,
    ),
    "types.Logging": d(Level=S, Mode=S, LogDebugInfoInterval=DURATION),
    "types.UpdateConfig": d(Interval=DURATION),
}

# -- checking -----------------------------------------------------------------------------

_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
_GO_DURATION = re.compile(r"^[-+]?(0|((\d+(\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h))+)$")


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    return {int: "int", float: "float", str: "string", list: "array", dict: "object"}.get(
        type(value), type(value).__name__
    )


@dataclass
class Checker:
    """Checks answers against DEFINITIONS and collects every problem with its JSON path.

    `additions` names, per definition, the keys bacedge sends that Bacalhau does not define;
    any other unknown key is a problem, and so is an addition that differs from a Bacalhau
    property only in case (Go's decoder would read it into that property).
    `enum_additions` names values bacedge sends outside a Bacalhau enum, per enum name.
    """

    additions: Mapping[str, Collection[str]] = field(default_factory=dict)
    enum_additions: Mapping[str, Collection[Any]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    seen: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    added: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))

    def definition(self, value: Any, name: str, path: str) -> None:
        self.check(value, ref(name), path)

    def check(self, value: Any, t: T, path: str) -> None:
        if value is None:
            if not (t.nullable or t.kind == "any"):
                self._fail(path, t, value)
            return
        kind = t.kind
        if kind == "any":
            return
        if kind == "ref":
            self._object(value, t.ref, path)
            return
        ok = {
            "string": isinstance(value, str),
            "time": isinstance(value, str) and bool(_RFC3339.match(value)),
            "duration": isinstance(value, str) and bool(_GO_DURATION.match(value)),
            "integer": type(value) is int,
            "uint": type(value) is int and value >= 0,
            "number": type(value) in (int, float),
            "boolean": type(value) is bool,
            "array": isinstance(value, list),
            "map": isinstance(value, dict),
            "object": isinstance(value, dict),
        }[kind]
        if not ok:
            self._fail(path, t, value)
            return
        if t.enum and value not in t.enum and value not in self.enum_additions.get(t.enum_name, ()):
            self.errors.append(
                f"{path}: {value!r} is not in Bacalhau's {t.enum_name} "
                f"({', '.join(map(repr, t.enum))})"
            )
        if kind == "array" and t.item is not None:
            for i, item in enumerate(value):
                self.check(item, t.item, f"{path}[{i}]")
        if kind == "map" and t.item is not None:
            for key, item in value.items():
                self.check(item, t.item, f"{path}[{key!r}]")

    def _fail(self, path: str, t: T, value: Any) -> None:
        got = json_type(value)
        if isinstance(value, str) and t.kind in ("time", "duration"):
            got = f"string {value!r}"
        self.errors.append(f"{path}: expected {t.describe()}, got {got}")

    def _object(self, value: Any, name: str, path: str) -> None:
        definition = DEFINITIONS[name]
        if not isinstance(value, dict):
            self.errors.append(f"{path}: expected object ({name}), got {json_type(value)}")
            return
        props = definition.properties
        by_lower = {p.lower(): p for p in props}
        present = set()
        for key, item in value.items():
            prop = key if key in props else None
            if prop is not None:
                present.add(prop)
                self.seen[name].add(prop)
                self.check(item, props[prop], f"{path}.{key}")
            elif key.lower() in by_lower:
                self.errors.append(
                    f"{path}.{key}: Bacalhau's {name} spells this key {by_lower[key.lower()]!r}"
                )
            elif key in self.additions.get(name, ()):
                self.added[name].add(key)
            else:
                self.errors.append(
                    f"{path}.{key}: not a property of Bacalhau's {name} "
                    "and not a listed bacedge addition"
                )
        for prop in sorted(definition.required - present):
            self.errors.append(f"{path}.{prop}: required by Bacalhau's {name}, missing")

    def unsent(self) -> dict[str, set[str]]:
        """Bacalhau properties of each checked definition that no answer carried."""
        return {
            name: missing
            for name in self.seen
            if (missing := set(DEFINITIONS[name].properties) - self.seen[name])
        }
