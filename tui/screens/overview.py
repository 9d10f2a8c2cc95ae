"""Screen 1: the fleet at a glance, and what needs attention now."""

from __future__ import annotations

from typing import ClassVar

from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Sparkline, Static

from edge.models import JobStateType, format_bytes

from ..client import Needs
from ..views import (
    ATTENTION_COLUMNS,
    SPARK_MINUTES,
    Attention,
    Overview,
    attention_row,
    overview,
    state_style,
)
from ..widgets.table import KeyedTable
from .base import BaseScreen

_RECENT_FOR_FAILURES = 100


class Bar:
    """`███████░░░░ 45%` filling the width it is given; red past 90%, yellow past 70%."""

    def __init__(self, used: float, total: float) -> None:
        self.share = used / total if total else 0.0

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement(4, options.max_width)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        percent = f"{self.share:5.0%}"
        width = options.max_width - len(percent)
        if width < 2:
            yield Text(percent.strip(), no_wrap=True, end="")
            return
        filled = round(self.share * width)
        style = "red" if self.share > 0.9 else "yellow" if self.share > 0.7 else "green"
        text = Text("█" * filled, style, no_wrap=True, end="")
        text.append("░" * (width - filled), "dim")
        text.append(percent)
        yield text


def _gpu_model(name: str) -> str:
    return name.replace("NVIDIA ", "").replace("GeForce ", "")[:16]


class OverviewScreen(BaseScreen):
    TITLE_TEXT = "Overview"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open", "Open", id="overview.open"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._attention: dict[str, Attention] = {}

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="overview-top"):
            yield Static(id="overview-nodes", classes="panel")
            yield Static(id="overview-resources", classes="panel")
            yield Static(id="overview-jobs", classes="panel")
        with Vertical(id="overview-spark", classes="panel"):
            yield Static(id="spark-title")
            yield Sparkline([0] * SPARK_MINUTES, id="completions")
        yield Static(" Needs attention", id="attention-title", classes="section-title")
        yield KeyedTable(ATTENTION_COLUMNS, id="attention")

    def needs(self) -> Needs:
        return Needs(recent_executions=_RECENT_FOR_FAILURES)

    def refresh_data(self) -> None:
        if not self.is_mounted:
            return
        data = self.bapp.data
        now = self.now_ns()
        stats = overview(data.jobs.values(), data.nodes.values(), data.all_executions(), now)
        self._panels(stats)
        self._attention = {a.key: a for a in stats.attention}
        rows = {a.key: attention_row(a, now) for a in stats.attention}
        table = self.query_one("#attention", KeyedTable)
        table.apply(rows, [a.key for a in stats.attention])
        title = f" Needs attention ({len(rows)})" if rows else " Needs attention: nothing"
        self.query_one("#attention-title", Static).update(title)

    def _panels(self, stats: Overview) -> None:
        nodes = Text()
        nodes.append("Nodes\n", "bold")
        nodes.append(f"{stats.nodes_connected}", "bold green" if stats.nodes_connected else "")
        nodes.append(f" / {stats.nodes_total} connected\n")
        down = stats.nodes_total - stats.nodes_connected
        if down:
            nodes.append(f"{down} disconnected\n", "red")
        if stats.nodes_pending:
            nodes.append(f"{stats.nodes_pending} pending approval\n", "bold yellow")
        else:
            nodes.append("0 pending approval\n", "dim")
        self.query_one("#overview-nodes", Static).update(nodes)

        panel = self.query_one("#overview-resources", Static)
        resources = Table.grid(expand=True)
        resources.add_column(ratio=1, no_wrap=True)
        resources.add_row(Text("Allocated / total", "bold"))
        cpu_used, cpu_total = stats.cpu
        mem_used, mem_total = stats.memory
        rows: list[tuple[str, str, float, float]] = [
            ("CPU", f"{cpu_used:.1f}/{cpu_total:.1f} cores", cpu_used, cpu_total),
            (
                "Memory",
                f"{format_bytes(mem_used)}/{format_bytes(mem_total)}",
                mem_used,
                mem_total,
            ),
        ]
        for model, (busy, count) in stats.gpus.items():
            rows.append((f"GPU {_gpu_model(model)}", f"{busy}/{count}", busy, count))
        for label, numbers, used, total in rows:
            line = Table.grid(expand=True)
            line.add_column(style="bold", no_wrap=True, width=8)
            line.add_column(ratio=1, no_wrap=True)
            line.add_column(justify="right", no_wrap=True)
            if len(label) > 8:  # a GPU model: its name on a line of its own
                resources.add_row(Text(label, "bold", overflow="ellipsis", no_wrap=True))
                label = ""
            line.add_row(label, Bar(used, total), f" {numbers}")
            resources.add_row(line)
        if not stats.gpus:
            resources.add_row(Text.assemble(("GPU     ", "bold"), ("none", "dim")))
        panel.update(resources)

        jobs = Text()
        jobs.append(f"Jobs ({stats.jobs_total:,})\n", "bold")
        for state in JobStateType:
            count = stats.jobs_by_state.get(state.value, 0)
            if count or state in (JobStateType.RUNNING, JobStateType.FAILED):
                jobs.append(f"{state.value:<10}", state_style(state.value))
                jobs.append(f"{count:>7,}\n")
        self.query_one("#overview-jobs", Static).update(jobs)

        total = sum(stats.completions)
        peak = max(stats.completions) if stats.completions else 0
        self.query_one("#spark-title", Static).update(
            Text.assemble(
                ("Job completions", "bold"),
                f", last {SPARK_MINUTES} min: {total:,} (peak {peak:,}/min)",
            )
        )
        self.query_one("#completions", Sparkline).data = [float(v) for v in stats.completions]

    def selected(self) -> Attention | None:
        key = self.query_one("#attention", KeyedTable).selected_key
        return self._attention.get(key) if key else None

    @on(DataTable.RowSelected, "#attention")
    def _selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open()

    def action_open(self) -> None:
        item = self.selected()
        if item is None:
            return
        if item.kind == "node":
            self.bapp.open_node(item.target)
        else:
            self.bapp.open_job(item.target)
