"""What each table shows: columns, cells, sort keys and filter fields, from the wire models.

Pure functions of (models, clock) so that the screens stay thin and the same row always
renders the same way, which is what keyed diffs and snapshot tests depend on.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from edge.cli.output import (
    age,
    display_id,
    format_rfc3339,
    labels_text,
    parse_rfc3339,
    state_colour,
)
from edge.download import published_location
from edge.models import (
    ComputeStateType,
    Execution,
    GPUInfo,
    Job,
    JobHistory,
    JobStateType,
    NodeConnection,
    NodeMembership,
    NodeState,
    display_type,
    format_bytes,
)

from .filters import Field
from .widgets.cells import Cell
from .widgets.table import Column

# --------------------------------------------------------------------------- helpers

_STYLE = {
    "green": "green",
    "blue": "dodger_blue1",
    "cyan": "cyan",
    "red": "bold red",
    "yellow": "yellow",
    "magenta": "magenta",
}
_JOB_STATE_ORDER = {
    JobStateType.FAILED: 0,
    JobStateType.RUNNING: 1,
    JobStateType.QUEUED: 2,
    JobStateType.PENDING: 3,
    JobStateType.STOPPED: 4,
    JobStateType.COMPLETED: 5,
    JobStateType.UNDEFINED: 6,
}
ACTIVE_EXECUTION = frozenset(
    {
        ComputeStateType.NEW,
        ComputeStateType.ASK_FOR_BID,
        ComputeStateType.ASK_FOR_BID_ACCEPTED,
        ComputeStateType.BID_ACCEPTED,
        ComputeStateType.RUNNING,
        ComputeStateType.PUBLISHING,
    }
)


def state_style(label: str) -> str:
    """The Rich style for a state word, from the CLI's colour table (one source)."""
    return _STYLE.get(state_colour(label) or "", "")


def state_cell(label: str, order: int = 0) -> Cell:
    return Cell(label, state_style(label), (order, label.lower()))


def age_cell(ns: int, now_ns: int) -> Cell:
    """Age text (`5m ago`); sorts newest first by default."""
    return Cell(age(ns, now_ns).removesuffix(" ago"), "", -ns)


def age_expiry(ns: int, now_ns: int) -> int:
    """When the text of `age(ns)` next changes (ns), so unchanged rows are not rebuilt."""
    if ns <= 0:
        return 2**62
    elapsed = max(0, now_ns - ns)
    for unit, limit in ((10**9, 60), (60 * 10**9, 60), (3600 * 10**9, 24), (86400 * 10**9, 7)):
        if elapsed < unit * limit:
            return ns + (elapsed // unit + 1) * unit
    return 2**62  # shown as a date from here on


def engine_of(job: Job) -> str:
    return job.Tasks[0].Engine.Type if job.Tasks else ""


def short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


def node_name(node: NodeState) -> str:
    info = node.Info
    return info.Labels.get("name") or info.ComputeNodeInfo.Inventory.Hostname or ""


# --------------------------------------------------------------------------- jobs

_NEWEST = ("(newest first)", "(oldest first)")


JOB_COLUMNS = [
    Column("id", "ID"),
    Column("name", "NAME"),
    Column("type", "TYPE"),
    Column("state", "STATE"),
    Column("executions", "EXEC"),
    Column("engine", "ENGINE"),
    Column("age", "AGE", order=_NEWEST),
]


def execution_counts(executions: Sequence[Execution] | None) -> tuple[int, int] | None:
    """(running, total); None when not fetched yet."""
    if executions is None:
        return None
    running = sum(1 for e in executions if e.state in ACTIVE_EXECUTION)
    return running, len(executions)


def job_row(job: Job, counts: tuple[int, int] | None, now_ns: int) -> tuple[Cell, ...]:
    state = job.State.StateType
    exec_text = "…" if counts is None else f"{counts[0]}/{counts[1]}"
    return (
        Cell(display_id(job.ID), "", job.ID),
        Cell(short(job.Name, 40), "bold" if not state.terminal else ""),
        Cell(job.Type.value),
        state_cell(state.value, _JOB_STATE_ORDER.get(state, 9)),
        Cell(exec_text, "dim" if counts is None else "", counts or (-1, -1)),
        Cell(engine_of(job)),
        age_cell(job.CreateTime, now_ns),
    )


JOB_FIELDS: dict[str, Field[Job]] = {
    "state": Field(lambda j: [j.State.StateType.value]),
    "type": Field(lambda j: [j.Type.value]),
    "label": Field(lambda j: [], labels=lambda j: j.Labels),
    "engine": Field(lambda j: [engine_of(j)]),
    "name": Field(lambda j: [j.Name]),
    "id": Field(lambda j: [j.ID]),
    "namespace": Field(lambda j: [j.Namespace]),
}


def job_haystack(job: Job) -> str:
    labels = " ".join(f"{k}={v}" for k, v in job.Labels.items())
    state = job.State
    parts = [job.ID, job.Name, job.Type.value, state.StateType.value, engine_of(job), labels]
    return " ".join([*parts, state.Message])


# --------------------------------------------------------------------------- executions


EXECUTION_COLUMNS = [
    Column("id", "ID"),
    Column("job", "JOB"),
    Column("node", "NODE"),
    Column("state", "STATE"),
    Column("desired", "DESIRED"),
    Column("exit", "EXIT"),
    Column("age", "CREATED", order=_NEWEST),
    Column("modified", "MODIFIED", order=_NEWEST),
]


def execution_row(execution: Execution, job_name: str, node: str, now_ns: int) -> tuple[Cell, ...]:
    label = execution.ComputeState.StateType.label
    out = execution.RunOutput
    exit_text = str(out.ExitCode) if out is not None and execution.terminal else ""
    return (
        Cell(display_id(execution.ID), "", execution.ID),
        Cell(short(job_name, 30)),
        Cell(short(node, 24)),
        state_cell(label, int(execution.ComputeState.StateType)),
        Cell(execution.DesiredState.StateType.label),
        Cell(exit_text, "red" if exit_text not in ("", "0") else "", out.ExitCode if out else -1),
        age_cell(execution.CreateTime, now_ns),
        age_cell(execution.ModifyTime, now_ns),
    )


EXECUTION_FIELDS: dict[str, Field[Execution]] = {
    "state": Field(lambda e: [e.ComputeState.StateType.label]),
    "desired": Field(lambda e: [e.DesiredState.StateType.label]),
    "job": Field(lambda e: [e.JobID, e.Job.Name if e.Job is not None else ""]),
    "node": Field(lambda e: [e.NodeID]),
    "id": Field(lambda e: [e.ID]),
}


def execution_haystack(execution: Execution) -> str:
    message = execution.ComputeState.Message
    state = execution.ComputeState.StateType.label
    return f"{execution.ID} {execution.JobID} {execution.NodeID} {state} {message}"


# --------------------------------------------------------------------------- results

RESULT_COLUMNS = [
    Column("execution", "EXECUTION"),
    Column("node", "NODE"),
    Column("type", "PUBLISHER"),
    Column("location", "LOCATION"),
    Column("size", "SIZE"),
]
NOTHING_PUBLISHED = "nothing published: stdout, stderr and exit code only"


def result_row(execution: Execution, node: str, size: int | None) -> tuple[Cell, ...]:
    """A completed execution's published result; `size` is the archive's, once known."""
    published = execution.PublishedResult
    location = published_location(published) if published.Type else NOTHING_PUBLISHED
    return (
        Cell(display_id(execution.ID), "", execution.ID),
        Cell(short(node, 24)),
        Cell(display_type(published.Type) or "none", "" if published.Type else "dim"),
        Cell(location, "" if published.Type else "dim"),
        Cell(format_bytes(size) if size is not None else "", "", -1 if size is None else size),
    )


# --------------------------------------------------------------------------- nodes


# Fixed-width figures first, so that they stay on screen at 160 columns whatever the IDs,
# names and labels; the descriptive columns, the widest and least read, come last.
NODE_COLUMNS = [
    Column("id", "ID"),
    Column("name", "NAME"),
    Column("status", "STATUS"),
    Column("approval", "APPROVAL"),
    Column("cpu", "CPU"),
    Column("memory", "MEMORY"),
    Column("disk", "DISK"),
    Column("gpus", "GPUS"),
    Column("engines", "ENGINES"),
    Column("labels", "LABELS"),
]
ID_WIDTH = 24  # a node named after its host; generated IDs are shortened to 8-10
NAME_WIDTH = 20
GPUS_WIDTH = 40
LABELS_WIDTH = 30


def node_gpus(node: NodeState) -> list[GPUInfo]:
    info = node.Info.ComputeNodeInfo
    return info.MaxCapacity.GPUs or info.AvailableCapacity.GPUs


def gpu_summary(node: NodeState) -> str:
    """The node's GPUs in a few words, alike ones counted: `2x H100 80GB HBM3 80.0 GiB 35%
    75%`, `Tesla T4 15.0 GiB`. Utilization only where it is measured (Bacalhau does not)."""
    groups: dict[tuple[str, int], list[GPUInfo]] = {}
    for gpu in node_gpus(node):
        name = gpu.Name.replace("NVIDIA ", "").replace("GeForce ", "") or "GPU"
        groups.setdefault((name, gpu.Memory), []).append(gpu)
    parts = []
    for (name, memory), alike in groups.items():
        words = [f"{len(alike)}x {name}" if len(alike) > 1 else name]
        if memory:
            words.append(format_bytes(alike[0].memory_bytes))
        words.extend(f"{g.Utilization}%" for g in alike if g.Utilization is not None)
        parts.append(" ".join(words))
    total = node.Info.ComputeNodeInfo.MaxCapacity.GPU
    if not parts and total:
        return f"{total} GPU"
    return ", ".join(parts)


_UNITS = (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10))


def used_of(used: int, total: int) -> str:
    """`4.0/16.0 GiB`: used and total in the total's unit, to keep the column narrow."""
    for unit, size in _UNITS:
        if total >= size:
            return f"{used / size:.1f}/{total / size:.1f} {unit}"
    return f"{used}/{total} B"


def _used(total: float, available: float) -> float:
    return max(0.0, total - available)


def node_status(node: NodeState) -> list[str]:
    """The connection, then bacedge's cordon or drain when the node takes no new work, as
    `bacedge node list` shows them (`CONNECTED,DRAINING`)."""
    word = node.Scheduling.word
    return [node.ConnectionState.Status.value, *([word] if word else [])]


def status_cell(node: NodeState) -> Cell:
    """The STATUS cell, coloured by the cordon or drain when there is one (the CLI's way)."""
    words = node_status(node)
    text = ",".join(words)
    return Cell(text, state_style(words[-1]), (0, text.lower()))


def node_row(node: NodeState) -> tuple[Cell, ...]:
    info = node.Info.ComputeNodeInfo
    total, free = info.MaxCapacity, info.AvailableCapacity
    approval = node.Membership.value
    cpu = f"{_used(total.CPU, free.CPU):.1f}/{total.CPU:.1f}" if total.CPU else ""
    used_memory = int(_used(total.Memory, free.Memory))
    memory = used_of(used_memory, total.Memory) if total.Memory else ""
    disk = format_bytes(total.Disk) if total.Disk else ""
    return (
        Cell(short(display_id(node.Info.NodeID), ID_WIDTH), "", node.Info.NodeID),
        Cell(short(node_name(node), NAME_WIDTH)),
        status_cell(node),
        state_cell(approval),
        Cell(cpu, "", total.CPU and _used(total.CPU, free.CPU) / total.CPU),
        Cell(memory, "", total.Memory and used_memory / total.Memory),
        Cell(disk, "", total.Disk),
        Cell(short(gpu_summary(node), GPUS_WIDTH), "", total.GPU),
        Cell(",".join(info.ExecutionEngines)),
        Cell(labels_text(_user_labels(node.Info.Labels), LABELS_WIDTH)),
    )


def _user_labels(labels: Mapping[str, str]) -> dict[str, str]:
    """Labels without the ones every node has (name, arch, OS): those have their columns."""
    hidden = {"name", "Architecture", "Operating-System"}
    return {k: v for k, v in labels.items() if k not in hidden}


NODE_FIELDS: dict[str, Field[NodeState]] = {
    "status": Field(node_status),  # status:cordoned, status:draining too
    "approval": Field(lambda n: [n.Membership.value]),
    "label": Field(lambda n: [], labels=lambda n: n.Info.Labels),
    "engine": Field(lambda n: n.Info.ComputeNodeInfo.ExecutionEngines),
    "type": Field(lambda n: [n.Info.NodeType]),
    "id": Field(lambda n: [n.Info.NodeID]),
    "gpu": Field(lambda n: [g.Name for g in node_gpus(n)]),
}


def node_haystack(node: NodeState) -> str:
    info = node.Info
    labels = " ".join(f"{k}={v}" for k, v in info.Labels.items())
    return (
        f"{info.NodeID} {node_name(node)} {' '.join(node_status(node))} "
        f"{node.Membership.value} {labels} {gpu_summary(node)}"
    )


# --------------------------------------------------------------------------- history


HISTORY_COLUMNS = [
    Column("time", "TIME"),
    Column("level", "LEVEL"),
    Column("execution", "EXECUTION"),
    Column("state", "STATE"),
    Column("topic", "TOPIC"),
    Column("event", "EVENT"),
]


def history_row(item: JobHistory) -> tuple[Cell, ...]:
    state = item.state_text
    newest = state.rsplit("→", 1)[-1].strip()
    when = parse_rfc3339(item.Time)
    return (
        Cell(format_rfc3339(item.Time), "", (when.timestamp() if when else 0.0, item.SeqNum)),
        Cell("Execution" if item.ExecutionID else "Job"),
        Cell(display_id(item.ExecutionID)),
        Cell(state, state_style(newest)),
        Cell(item.Event.Topic),
        Cell(short(item.Event.Message or item.Comment, 100)),
    )


def history_key(index: int, item: JobHistory) -> str:
    return f"{item.SeqNum}-{index}" if item.SeqNum else f"h{index}"


# --------------------------------------------------------------------------- sorting


@dataclass(frozen=True)
class SortSpec:
    column: str
    reverse: bool = False

    def describe(self, columns: Sequence[Column]) -> str:
        column = next((c for c in columns if c.key == self.column), None)
        if column is None:
            return self.column
        return f"{column.label.lower()} {column.order[1] if self.reverse else column.order[0]}"


def sort_keys(
    rows: Mapping[str, Sequence[Cell]], columns: Sequence[Column], spec: SortSpec
) -> list[str]:
    """Row keys ordered by one column's sort values, ties broken by key (stable order)."""
    index = next((i for i, c in enumerate(columns) if c.key == spec.column), 0)

    def key(k: str) -> tuple[Any, str]:
        return (rows[k][index].sort, k)

    try:
        return sorted(rows, key=key, reverse=spec.reverse)
    except TypeError:  # mixed sort types from odd data: fall back to text
        return sorted(rows, key=lambda k: (rows[k][index].text, k), reverse=spec.reverse)


# --------------------------------------------------------------------------- overview


@dataclass(frozen=True)
class Attention:
    """One thing an operator should look at, and where Enter takes them."""

    key: str
    severity: str  # error | warning
    kind: str  # job | execution | node
    target: str  # ID to open
    what: str
    why: str
    since_ns: int


@dataclass
class Overview:
    nodes_total: int = 0
    nodes_connected: int = 0
    nodes_pending: int = 0
    cpu: tuple[float, float] = (0.0, 0.0)  # allocated, total
    memory: tuple[int, int] = (0, 0)
    disk: tuple[int, int] = (0, 0)
    gpus: dict[str, tuple[int, int]] = field(default_factory=dict)  # model -> allocated, total
    jobs_by_state: dict[str, int] = field(default_factory=dict)
    jobs_total: int = 0
    completions: list[int] = field(default_factory=list)  # per minute, oldest first
    attention: list[Attention] = field(default_factory=list)


QUEUED_TOO_LONG_NS = 5 * 60 * 10**9
SPARK_MINUTES = 30
ATTENTION_LIMIT = 200


def overview(
    jobs: Iterable[Job],
    nodes: Iterable[NodeState],
    executions: Iterable[Execution],
    now_ns: int,
    queued_too_long_ns: int = QUEUED_TOO_LONG_NS,
) -> Overview:
    """Fleet totals, job counts, completions per minute and what needs attention."""
    out = Overview()
    attention: list[Attention] = []
    cpu_used = cpu_total = 0.0
    mem_used = mem_total = disk_used = disk_total = 0
    gpus: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for node in nodes:
        out.nodes_total += 1
        connected = node.ConnectionState.Status == NodeConnection.CONNECTED
        out.nodes_connected += connected
        info = node.Info.ComputeNodeInfo
        node_id = node.Info.NodeID
        label = node_name(node) or display_id(node_id)
        if node.Membership == NodeMembership.PENDING:
            out.nodes_pending += 1
            attention.append(
                Attention(
                    f"node-pending-{node_id}",
                    "warning",
                    "node",
                    node_id,
                    f"node {label}",
                    "waiting for approval",
                    0,
                )
            )
        if not connected and node.Membership != NodeMembership.REJECTED:
            since = parse_rfc3339(node.ConnectionState.DisconnectedSince)
            reason = node.ConnectionState.LastError or "disconnected"
            attention.append(
                Attention(
                    f"node-down-{node_id}",
                    "error",
                    "node",
                    node_id,
                    f"node {label}",
                    reason,
                    int(since.timestamp() * 1e9) if since else 0,
                )
            )
        if not connected or node.Membership != NodeMembership.APPROVED:
            continue
        total, free = info.MaxCapacity, info.AvailableCapacity
        cpu_total += total.CPU
        cpu_used += _used(total.CPU, free.CPU)
        mem_total += total.Memory
        mem_used += int(_used(total.Memory, free.Memory))
        disk_total += total.Disk
        disk_used += int(_used(total.Disk, free.Disk))
        busy = max(0, total.GPU - free.GPU)
        models = [g.Name or "GPU" for g in total.GPUs] or ["GPU"] * total.GPU
        for i, model in enumerate(models):
            gpus[model][1] += 1
            gpus[model][0] += 1 if i < busy else 0
    out.cpu = (cpu_used, cpu_total)
    out.memory = (mem_used, mem_total)
    out.disk = (disk_used, disk_total)
    out.gpus = {model: (used, total) for model, (used, total) in sorted(gpus.items())}

    counts: Counter[str] = Counter()
    buckets = [0] * SPARK_MINUTES
    minute = 60 * 10**9
    for job in jobs:
        state = job.State.StateType
        counts[state.value] += 1
        if state == JobStateType.COMPLETED:
            ago = (now_ns - job.ModifyTime) // minute
            if 0 <= ago < SPARK_MINUTES:
                buckets[SPARK_MINUTES - 1 - int(ago)] += 1
        elif state == JobStateType.FAILED and now_ns - job.ModifyTime < 24 * 3600 * 10**9:
            attention.append(
                Attention(
                    f"job-failed-{job.ID}",
                    "error",
                    "job",
                    job.ID,
                    f"job {job.Name or display_id(job.ID)}",
                    short(job.State.Message or "failed", 80),
                    job.ModifyTime,
                )
            )
        elif state in (JobStateType.QUEUED, JobStateType.PENDING):
            waited = now_ns - job.CreateTime
            if job.CreateTime and waited > queued_too_long_ns:
                attention.append(
                    Attention(
                        f"job-queued-{job.ID}",
                        "warning",
                        "job",
                        job.ID,
                        f"job {job.Name or display_id(job.ID)}",
                        _queued_why(state.value, job, now_ns),
                        job.CreateTime,
                    )
                )
    for execution in executions:
        if execution.state != ComputeStateType.FAILED:
            continue
        if now_ns - execution.ModifyTime > 24 * 3600 * 10**9:
            continue
        message = execution.ComputeState.Message
        if execution.RunOutput is not None and execution.RunOutput.ErrorMsg:
            message = execution.RunOutput.ErrorMsg
        attention.append(
            Attention(
                f"exec-failed-{execution.ID}",
                "error",
                "execution",
                execution.JobID,
                f"execution {display_id(execution.ID)} on {display_id(execution.NodeID)}",
                short(message or "failed", 80),
                execution.ModifyTime,
            )
        )
    out.jobs_by_state = dict(counts)
    out.jobs_total = sum(counts.values())
    out.completions = buckets
    attention.sort(key=lambda a: (a.severity != "error", -a.since_ns, a.key))
    out.attention = attention[:ATTENTION_LIMIT]
    return out


ATTENTION_COLUMNS = [
    Column("severity", " "),
    Column("what", "WHAT"),
    Column("why", "WHY"),
    Column("since", "SINCE", order=_NEWEST),
]


def attention_row(item: Attention, now_ns: int) -> tuple[Cell, ...]:
    icon, style = ("✖", "bold red") if item.severity == "error" else ("▲", "yellow")
    return (
        Cell(icon, style, item.severity != "error"),
        Cell(item.what),
        Cell(item.why),
        age_cell(item.since_ns, now_ns) if item.since_ns else Cell(""),
    )


def _queued_why(state: str, job: Job, now_ns: int) -> str:
    waited = age(job.CreateTime, now_ns).removesuffix(" ago")
    message = f": {short(job.State.Message, 60)}" if job.State.Message else ""
    return f"{state.lower()} for {waited}{message}"
