"""Rendering for the CLI: tables like Bacalhau's, describe blocks, JSON/YAML, ages, colours.

Everything here returns strings and takes the clock and the colour decision as arguments,
so it is tested without a terminal and without a server.
"""

from __future__ import annotations

import functools
import json
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import IO, TYPE_CHECKING, Any

import click
from pydantic import BaseModel

from edge import models
from edge.models.ids import short_id
from edge.models.resources import format_bytes

if TYPE_CHECKING:  # annotations only: a table of jobs loads no node or event models
    from edge.models import Execution, Job, JobHistory, NodeInfo, NodeState, Resources

OUTPUT_FORMATS = ("table", "json", "yaml")

_STATE_COLOURS: dict[str, str] = {
    "completed": "green",
    "approved": "green",
    "connected": "green",
    "healthy": "green",
    "ok": "green",
    "running": "blue",
    "publishing": "cyan",
    "bidaccepted": "cyan",
    "askforbidaccepted": "cyan",
    "failed": "red",
    "rejected": "red",
    "disconnected": "red",
    "stopped": "yellow",
    "cancelled": "yellow",
    "bidrejected": "yellow",
    "askforbidrejected": "yellow",
    "pending": "yellow",
    "queued": "magenta",
    "cordoned": "yellow",
    "draining": "yellow",
    "drained": "yellow",
    "backoff": "yellow",
}
# IDs the way Bacalhau's CLI shortens them (idgen.ShortID, idgen.ShortNodeID): a one-letter
# kind and a UUID (`j-…`, `e-…`, `n-…`) or a bare UUID keep the kind and the UUID's first 8
# characters; a libp2p peer ID (how Bacalhau nodes on libp2p are named, `Qm…`) its first 8.
_KIND_ID_RE = re.compile(r"^([a-z])-([0-9a-f]{8})-[0-9a-f-]+$")
_UUID_RE = re.compile(r"^([0-9a-f]{8})-[0-9a-f]{4}-(?:[0-9a-f]{4}-){2}[0-9a-f]{12}$")
_PEER_ID_RE = re.compile(r"^Qm[1-9A-HJ-NP-Za-km-z]{44}$")  # base58: no 0, O, I or l


# --------------------------------------------------------------------------- colour


def colour_enabled(err: bool = False, stream: IO[str] | None = None) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set (no-color.org)."""
    if os.environ.get("NO_COLOR"):
        return False
    target = stream or (sys.stderr if err else sys.stdout)
    try:
        return bool(target.isatty())
    except (AttributeError, ValueError):
        return False


def state_colour(label: str) -> str | None:
    return _STATE_COLOURS.get(label.replace(" ", "").lower())


def paint(text: str, colour: str | None, enabled: bool, bold: bool = False) -> str:
    if not enabled or (colour is None and not bold):
        return text
    return click.style(text, fg=colour, bold=bold)


def paint_state(label: str, enabled: bool) -> str:
    return paint(label, state_colour(label), enabled)


# --------------------------------------------------------------------------- ids and time


def display_id(value: str) -> str:
    """Short form for generated IDs, as Bacalhau's CLI prints them: `j-1a2b3c4d` for
    `j-1a2b3c4d-…`, `1a2b3c4d` for a bare UUID, `QmXaXu9N` for a 46-character peer ID.
    Anything else (a node named after its host) stays whole."""
    if _KIND_ID_RE.match(value):
        return short_id(value)
    match = _UUID_RE.match(value)
    if match:
        return match.group(1)
    return short_id(value) if _PEER_ID_RE.match(value) else value


def transfer_text(execution_id: str, done: int, total: int | None) -> str:
    """A download's progress: `e-1a2b3c4d  12.0 MiB / 40.0 MiB` (no total when unknown)."""
    of = f" / {format_bytes(total)}" if total else ""
    return f"{display_id(execution_id)}  {format_bytes(done)}{of}"


def human_duration(seconds: float) -> str:
    """`0.4s`, `12.3s`, `3m 4s`, `2h 3m`, `3d 4h`: precise when short, coarse when long."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < 3600:
        return f"{whole // 60}m {whole % 60}s"
    if whole < 86400:
        return f"{whole // 3600}h {whole % 3600 // 60}m"
    return f"{whole // 86400}d {whole % 86400 // 3600}h"


def age(ns: int, now_ns: int | None = None) -> str:
    """How long ago a unix-nanosecond time was: `5s ago`, `3m ago`, a date past a week."""
    if ns <= 0:
        return ""
    now = time.time_ns() if now_ns is None else now_ns
    seconds = (now - ns) / 1e9
    if seconds < 0:
        seconds = 0
    if seconds < 60:
        return f"{int(seconds)}s ago"
    if seconds < 3600:
        return f"{int(seconds // 60)}m ago"
    if seconds < 86400:
        return f"{int(seconds // 3600)}h ago"
    if seconds < 7 * 86400:
        return f"{int(seconds // 86400)}d ago"
    return datetime.fromtimestamp(ns / 1e9).strftime("%Y-%m-%d")


def format_ns(ns: int) -> str:
    """A unix-nanosecond time in local time, to the second."""
    if ns <= 0:
        return ""
    return datetime.fromtimestamp(ns / 1e9).strftime("%Y-%m-%d %H:%M:%S")


def parse_rfc3339(text: str) -> datetime | None:
    """RFC 3339 as Go writes it (`Z`, nanoseconds), which 3.10's fromisoformat refuses."""
    if not text:
        return None
    value = text.strip().replace("Z", "+00:00").replace("z", "+00:00")
    match = re.match(r"^(.*?T\d{2}:\d{2}:\d{2})(\.\d+)?(.*)$", value)
    if match:
        digits = (match.group(2) or "")[1:7]  # 3.10 takes exactly 6 digits, Go sends 0-9
        fraction = f".{digits.ljust(6, '0')}" if digits else ""
        value = f"{match.group(1)}{fraction}{match.group(3)}"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def format_rfc3339(text: str) -> str:
    parsed = parse_rfc3339(text)
    return parsed.astimezone().strftime("%Y-%m-%d %H:%M:%S") if parsed else text


def rfc3339_ns(text: str) -> int:
    parsed = parse_rfc3339(text)
    return int(parsed.timestamp() * 1e9) if parsed else 0


# --------------------------------------------------------------------------- generic renderers


@dataclass(frozen=True)
class Cell:
    """A table cell with an optional colour; widths are measured on the plain text."""

    text: str
    colour: str | None = None


_UNPRINTABLE = {
    code: f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
    for code in (*range(0x20), *range(0x7F, 0xA0), *range(0x202A, 0x202F), *range(0x2066, 0x206A))
}
"""Control characters (C0, DEL, C1) and bidirectional overrides, shown escaped."""


_UNPRINTABLE_BUT_TAB = {k: v for k, v in _UNPRINTABLE.items() if k != 0x09}


def printable(text: str, tabs: bool = False) -> str:
    """Text from the cluster (job and node names, labels, state messages: anyone who can
    submit a job or run a node writes them) as it may reach a terminal: control characters
    escaped, so a name cannot move the cursor, retitle the window or write the clipboard
    (OSC 52), nor reorder what is shown around it (bidi overrides)."""
    return text.translate(_UNPRINTABLE_BUT_TAB if tabs else _UNPRINTABLE)


def printable_lines(text: str) -> str:
    """`printable`, each line of a multi-line message kept on its own line."""
    return "\n".join(printable(line, tabs=True) for line in text.split("\n"))


def _cell_text(cell: str | Cell) -> str:
    return printable(cell.text if isinstance(cell, Cell) else cell)


def render_table(
    headers: Sequence[str], rows: Iterable[Sequence[str | Cell]], colour: bool = False
) -> str:
    """Columns padded to the widest cell, two spaces apart, no borders (like Bacalhau's)."""
    body = [list(row) for row in rows]
    widths = [len(h) for h in headers]
    for row in body:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(_cell_text(cell)))
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    for row in body:
        parts = []
        for i, cell in enumerate(row):
            text = _cell_text(cell)
            padded = text.ljust(widths[i]) if i < len(row) - 1 else text
            if isinstance(cell, Cell) and cell.colour and colour:
                padded = click.style(text, fg=cell.colour) + padded[len(text) :]
            parts.append(padded)
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def render_fields(pairs: Sequence[tuple[str, str]]) -> str:
    """`Key   = value` lines aligned on `=`, the way Bacalhau's describe prints them."""
    shown = [(k, v) for k, v in pairs if v not in ("", None)]
    if not shown:
        return ""
    width = max(len(k) for k, _ in shown)
    return "\n".join(f"{k.ljust(width)} = {printable(str(v))}" for k, v in shown)


def to_data(value: Any) -> Any:
    """Models to their wire dicts (recursively), so JSON/YAML show Bacalhau's field names."""
    if isinstance(value, BaseModel):
        wire = getattr(value, "wire", None)
        return wire() if callable(wire) else value.model_dump(mode="json")
    if isinstance(value, Mapping):
        return {str(k): to_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_data(v) for v in value]
    return value


@functools.cache
def _yaml_dumper() -> type[Any]:
    """A SafeDumper writing multi-line strings (task output) as `|` blocks instead of
    escaped one-liners; built on first use, so commands that print no YAML skip PyYAML."""
    import yaml

    def represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
        style = "|" if "\n" in data else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)

    class BlockStringDumper(yaml.SafeDumper):
        pass

    BlockStringDumper.add_representer(str, represent_str)
    return BlockStringDumper


def dump(value: Any, fmt: str) -> str:
    """JSON or YAML text of models, lists of models or plain data."""
    data = to_data(value)
    if fmt == "json":
        return json.dumps(data, indent=2, ensure_ascii=False)
    if fmt == "yaml":
        import yaml

        return yaml.dump(
            data,
            Dumper=_yaml_dumper(),
            sort_keys=False,
            allow_unicode=True,
            default_flow_style=False,
        ).rstrip("\n")
    raise ValueError(f"unknown output format {fmt!r}")


def labels_text(labels: Mapping[str, str], limit: int | None = None) -> str:
    text = " ".join(f"{k}={v}" for k, v in sorted(labels.items()))
    if limit is not None and len(text) > limit:
        return text[: max(0, limit - 1)] + "…"
    return text


def _truncate(text: str, limit: int | None) -> str:
    if limit is None or len(text) <= limit:
        return text
    return text[: max(0, limit - 1)] + "…"


# --------------------------------------------------------------------------- tables


def jobs_table(
    jobs: Sequence[Job], colour: bool = False, wide: bool = False, now_ns: int | None = None
) -> str:
    rows = [
        [
            age(job.CreateTime, now_ns),
            job.ID if wide else display_id(job.ID),
            _truncate(job.Name, None if wide else 40),
            job.Type.value,
            Cell(job.State.StateType.value, state_colour(job.State.StateType.value)),
        ]
        for job in jobs
    ]
    return render_table(["CREATED", "ID", "JOB", "TYPE", "STATE"], rows, colour)


def executions_table(
    executions: Sequence[Execution],
    colour: bool = False,
    wide: bool = False,
    now_ns: int | None = None,
) -> str:
    def ident(value: str) -> str:
        return value if wide else display_id(value)

    rows: list[list[str | Cell]] = []
    for ex in executions:
        compute = ex.ComputeState.StateType.label
        desired = ex.DesiredState.StateType.label
        rows.append(
            [
                age(ex.CreateTime, now_ns),
                age(ex.ModifyTime, now_ns),
                ident(ex.ID),
                ident(ex.NodeID),
                str(ex.Revision),
                Cell(compute, state_colour(compute)),
                desired,
            ]
        )
    headers = ["CREATED", "MODIFIED", "ID", "NODE ID", "REV.", "COMPUTE STATE", "DESIRED STATE"]
    return render_table(headers, rows, colour)


def versions_table(
    versions: Sequence[Job], colour: bool = False, wide: bool = False, now_ns: int | None = None
) -> str:
    """`job versions`: each version of a job's spec, newest last."""
    rows: list[list[str | Cell]] = []
    for version in sorted(versions, key=lambda j: j.Version):
        task = version.Tasks[0] if version.Tasks else None
        engine = ""
        if task is not None:
            target = task.Engine.param("Image") or task.Engine.param("EntryModule") or ""
            engine = f"{task.Engine.Type} {target if isinstance(target, str) else ''}".strip()
        rows.append(
            [
                str(version.Version),
                age(version.ModifyTime, now_ns),
                version.Type.value,
                str(version.Count),
                _truncate(engine, None if wide else 40),
            ]
        )
    return render_table(["VERSION", "UPDATED", "TYPE", "COUNT", "ENGINE"], rows, colour)


def history_table(items: Sequence[JobHistory], colour: bool = False, wide: bool = False) -> str:
    rows: list[list[str | Cell]] = []
    for item in items:
        state = item.state_text
        new_state = state.rsplit("→", 1)[-1].strip()
        rows.append(
            [
                format_rfc3339(item.Time),
                "Execution" if item.Type.value == "ExecutionLevel" else "Job",
                str(item.NewRevision) if item.NewRevision else "",
                (item.ExecutionID if wide else display_id(item.ExecutionID)),
                Cell(state, state_colour(new_state)),
                item.Event.Topic,
                _truncate(item.Event.Message or item.Comment, None if wide else 80),
            ]
        )
    headers = ["TIME", "LEVEL", "REV.", "EXEC. ID", "STATE", "TOPIC", "EVENT"]
    return render_table(headers, rows, colour)


def _capacity(available: Resources, total: Resources) -> tuple[str, str, str, str]:
    """`available / max` per resource, as Bacalhau's node list shows them."""
    if not (total.CPU or total.Memory or total.Disk or total.GPU):
        return "", "", "", ""
    return (
        f"{available.CPU:.1f} / {total.CPU:.1f}",
        f"{format_bytes(available.Memory)} / {format_bytes(total.Memory)}",
        f"{format_bytes(available.Disk)} / {format_bytes(total.Disk)}",
        f"{available.GPU} / {total.GPU}",
    )


def nodes_table(nodes: Sequence[NodeState], colour: bool = False, wide: bool = False) -> str:
    rows: list[list[str | Cell]] = []
    for node in nodes:
        info = node.Info.ComputeNodeInfo
        cpu, memory, disk, gpu = _capacity(info.AvailableCapacity, info.MaxCapacity)
        approval = node.Membership.value
        status = node.ConnectionState.Status.value
        scheduling = node.Scheduling.word
        if scheduling:  # as kubectl's "Ready,SchedulingDisabled"
            status = f"{status},{scheduling}"
            colour_of = state_colour(scheduling)
        else:
            colour_of = state_colour(status)
        rows.append(
            [
                node.Info.NodeID if wide else display_id(node.Info.NodeID),
                node.Info.NodeType,
                Cell(approval, state_colour(approval)),
                Cell(status, colour_of),
                labels_text(node.Info.Labels, None if wide else 50),
                cpu,
                memory,
                disk,
                gpu,
            ]
        )
    headers = ["ID", "TYPE", "APPROVAL", "STATUS", "LABELS", "CPU", "MEMORY", "DISK", "GPU"]
    return render_table(headers, rows, colour)


# --------------------------------------------------------------------------- describe


def _section(title: str, body: str, colour: bool) -> str:
    return f"{paint(title, None, colour, bold=True)}\n{body}" if body else ""


def _indent(text: str, prefix: str = "  ") -> str:
    return "\n".join(prefix + line if line else line for line in text.splitlines())


def _engine_summary(job: Job) -> list[tuple[str, str]]:
    if not job.Tasks:
        return []
    task = job.task
    engine = task.Engine
    target = engine.param("Image") or engine.param("EntryModule") or ""
    if isinstance(target, Mapping):  # legacy wasm form with a module object
        target = target.get("Target") or target.get("Alias") or "module"
    params = engine.param("Parameters") or []
    inputs = ", ".join(f"{src.Source.Type}:{src.Target or src.Alias}" for src in task.InputSources)
    results = ", ".join(f"{r.Name}:{r.Path}" for r in task.ResultPaths)
    res = task.Resources
    resources = ", ".join(
        f"{name} {value}"
        for name, value in (
            ("CPU", res.CPU),
            ("Memory", res.Memory),
            ("Disk", res.Disk),
            ("GPU", res.GPU),
        )
        if value
    )
    return [
        ("Engine", f"{engine.Type} {target}".strip()),
        ("Parameters", " ".join(str(p) for p in params) if isinstance(params, list) else ""),
        ("Publisher", task.Publisher.Type),
        ("Inputs", inputs),
        ("Results", results),
        ("Resources", resources),
        (
            "Timeout",
            f"{task.Timeouts.ExecutionTimeout}s" if task.Timeouts.ExecutionTimeout else "",
        ),
    ]


def _execution_outputs(executions: Sequence[Execution], colour: bool) -> list[str]:
    blocks = []
    for ex in executions:
        out = ex.RunOutput
        if out is None:
            continue
        tag = f" ({display_id(ex.ID)}, exit code {out.ExitCode})"
        if out.Stdout:
            more = "\n[output truncated]" if out.StdoutTruncated else ""
            blocks.append(_section("Standard Output" + tag, out.Stdout.rstrip("\n") + more, colour))
        if out.Stderr:
            more = "\n[output truncated]" if out.StderrTruncated else ""
            blocks.append(_section("Standard Error" + tag, out.Stderr.rstrip("\n") + more, colour))
        if out.ErrorMsg:
            blocks.append(_section("Error" + tag, out.ErrorMsg, colour))
    return blocks


def describe_job(
    job: Job,
    history: Sequence[JobHistory] | None = None,
    executions: Sequence[Execution] | None = None,
    colour: bool = False,
    now_ns: int | None = None,
) -> str:
    """The readable summary `job describe` prints: fields, task, history, executions, output."""
    state = job.State.StateType.value
    fields = [
        ("ID", job.ID),
        ("Name", job.Name),
        ("Namespace", job.Namespace),
        ("Type", job.Type.value),
        ("State", paint_state(state, colour)),
        ("Message", job.State.Message),
        ("Count", str(job.Count)),
        ("Priority", str(job.Priority) if job.Priority else ""),
        ("Labels", labels_text(job.Labels)),
        (
            "Created",
            f"{format_ns(job.CreateTime)} ({age(job.CreateTime, now_ns)})"
            if job.CreateTime
            else "",
        ),
        (
            "Modified",
            f"{format_ns(job.ModifyTime)} ({age(job.ModifyTime, now_ns)})"
            if job.ModifyTime
            else "",
        ),
        ("Version", str(job.Version)),
        *_engine_summary(job),
    ]
    blocks = [render_fields(fields)]
    if executions:
        counts = Counter(ex.ComputeState.StateType.label for ex in executions)
        summary = render_fields([(k, str(v)) for k, v in sorted(counts.items())])
        blocks.append(_section("Summary", _indent(summary), colour))
    if history:
        blocks.append(_section("Job History", history_table(history, colour), colour))
    if executions:
        blocks.append(
            _section("Executions", executions_table(executions, colour, now_ns=now_ns), colour)
        )
        blocks.append(_section("GPUs", _indent(_reserved_gpus(executions)), colour))
        blocks.extend(_execution_outputs(executions, colour))
    return "\n\n".join(b for b in blocks if b)


def _reserved_gpus(executions: Sequence[Execution]) -> str:
    """Which GPUs of its node each execution holds (the orchestrator reserves them)."""
    lines = []
    for ex in executions:
        gpus = [g for r in ex.AllocatedResources.Tasks.values() for g in r.GPUs]
        if gpus:
            held = ", ".join(
                f"{g.Index}" + (f" {g.Name}" if g.Name else "") + (f" ({g.UUID})" if g.UUID else "")
                for g in gpus
            )
            lines.append(f"{display_id(ex.ID)} on {display_id(ex.NodeID)}: {held}")
    return "\n".join(lines)


def describe_node_info(info: NodeInfo) -> list[tuple[str, str]]:
    """Identity and capabilities, shared by `node describe` and `agent node`."""
    compute = info.ComputeNodeInfo
    inv = compute.Inventory
    version = models.BuildVersionInfo.model_validate(info.BacalhauVersion).GitVersion
    return [
        ("ID", info.NodeID),
        ("Type", info.NodeType),
        ("Labels", labels_text(info.Labels)),
        ("Version", version or info.BacalhauVersion.get("Version", "")),
        ("Engines", ", ".join(compute.ExecutionEngines)),
        ("Publishers", ", ".join(compute.Publishers)),
        ("Storage", ", ".join(compute.StorageSources)),
        ("Hostname", inv.Hostname),
        ("OS", " ".join(p for p in (inv.OS, inv.Arch) if p)),
        ("CPU Model", f"{inv.CPUModel} ({inv.CPUCount} cores)" if inv.CPUModel else ""),
        ("Running", str(compute.RunningExecutions) if compute.MaxCapacity.CPU else ""),
        ("Queued", str(compute.EnqueuedExecutions) if compute.MaxCapacity.CPU else ""),
    ]


def _scheduling_fields(node: NodeState, colour: bool) -> list[tuple[str, str]]:
    """bacedge's cordon and drain, when the node is not simply eligible."""
    scheduling = node.Scheduling
    if not scheduling.word and not scheduling.Message:
        return []
    return [
        ("Scheduling", paint_state(scheduling.Status.value, colour)),
        ("Since", format_rfc3339(scheduling.Since)),
        ("Drain Deadline", format_rfc3339(scheduling.DrainDeadline)),
        ("Reason", scheduling.Message),
        ("Back-off Until", format_rfc3339(scheduling.BackOffUntil)),
        ("Back-off Reason", scheduling.BackOffReason),
    ]


def describe_node(node: NodeState, colour: bool = False) -> str:
    """What `node describe` prints: identity, approval, connection, capacity and GPUs."""
    info = node.Info
    compute = info.ComputeNodeInfo
    conn = node.ConnectionState
    pairs = describe_node_info(info)
    pairs[2:2] = [
        ("Approval", paint_state(node.Membership.value, colour)),
        ("Status", paint_state(conn.Status.value, colour)),
        ("Last Heartbeat", format_rfc3339(conn.LastHeartbeat)),
        ("Connected Since", format_rfc3339(conn.ConnectedSince) if node.connected else ""),
        (
            "Disconnected Since",
            format_rfc3339(conn.DisconnectedSince) if not node.connected else "",
        ),
        ("Last Error", conn.LastError),
        *_scheduling_fields(node, colour),
    ]
    blocks = [render_fields(pairs)]
    cpu, memory, disk, gpu = _capacity(compute.AvailableCapacity, compute.MaxCapacity)
    if cpu:
        capacity = render_fields([("CPU", cpu), ("Memory", memory), ("Disk", disk), ("GPU", gpu)])
        blocks.append(_section("Capacity (available / max)", _indent(capacity), colour))
    gpus = compute.MaxCapacity.GPUs or compute.AvailableCapacity.GPUs
    if gpus:
        lines = []
        for g in gpus:
            memory_text = format_bytes(g.memory_bytes) if g.Memory else "unknown memory"
            used_bytes = g.memory_used_bytes
            used = f", {format_bytes(used_bytes)} used" if used_bytes is not None else ""
            util = f", {g.Utilization}% busy" if g.Utilization is not None else ""
            lines.append(f"{g.Index}: {g.Vendor} {g.Name} ({memory_text}{used}{util})")
        blocks.append(_section("GPUs", _indent("\n".join(lines)), colour))
    return "\n\n".join(b for b in blocks if b)


def render_mapping(data: Mapping[str, Any]) -> str:
    """A flat-ish mapping (agent version/config) as YAML: readable and faithful."""
    return dump(dict(data), "yaml") if data else ""
