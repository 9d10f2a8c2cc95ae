"""Prometheus metrics for the orchestrator (`GET /metrics` on the API port) and compute
nodes (`[compute] metrics_port`), with the `prometheus-client` package.

Most figures are read from live state when scraped (jobs, executions, nodes, queue depth,
cache and outbox sizes), so the hot paths carry no bookkeeping; only transitions that leave
no state behind are counted as they happen (finished jobs, placement latency, heartbeats,
bytes moved). Each process gets its own registry, so a devstack with many nodes in one
process does not mix their figures.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from edge.models import ComputeStateType, Execution, JobStateType, now_ns

if TYPE_CHECKING:
    from edge.compute.agent import ComputeNode
    from edge.orchestrator.service import Orchestrator

CONTENT_TYPE = CONTENT_TYPE_LATEST
PLACEMENT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)


def _reconnects(nc: Any) -> float:
    stats = getattr(nc, "stats", None) or {}
    return float(stats.get("reconnects", 0))


class OrchestratorMetrics(Collector):
    """Figures of one orchestrator; `observe_*` are its hooks into the state machine."""

    def __init__(self, orchestrator: Orchestrator) -> None:
        self.orch = orchestrator
        self.registry = CollectorRegistry()
        self.finished: Counter[str] = Counter()
        self.heartbeats = 0
        self.placement = Histogram(
            "bacedge_placement_seconds",
            "Time from placing an execution to the node accepting it",
            buckets=PLACEMENT_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(self)

    def observe_job(self, state: JobStateType) -> None:
        if state.terminal:
            self.finished[state.value] += 1

    def observe_execution(self, execution: Execution, state: ComputeStateType) -> None:
        if state == ComputeStateType.BID_ACCEPTED and execution.CreateTime:
            self.placement.observe(max(0.0, (now_ns() - execution.CreateTime) / 1e9))

    def observe_heartbeat(self) -> None:
        self.heartbeats += 1

    def collect(self) -> Iterator[Any]:
        orch = self.orch
        jobs = GaugeMetricFamily(
            "bacedge_jobs", "Jobs in the working set by state", labels=["state"]
        )
        by_state = Counter(j.State.StateType.value for j in orch.jobs.values())
        for state in (JobStateType.PENDING, JobStateType.QUEUED, JobStateType.RUNNING):
            jobs.add_metric([state.value], by_state.get(state.value, 0))
        yield jobs
        done = CounterMetricFamily(
            "bacedge_jobs_finished", "Jobs that reached a final state", labels=["state"]
        )
        for state in (JobStateType.COMPLETED, JobStateType.FAILED, JobStateType.STOPPED):
            done.add_metric([state.value], self.finished.get(state.value, 0))
        yield done
        executions = GaugeMetricFamily(
            "bacedge_executions",
            "Executions of active jobs by compute state and engine",
            labels=["state", "engine"],
        )
        counts: Counter[tuple[str, str]] = Counter()
        for execution in orch.executions.values():
            job = orch.jobs.get(execution.JobID)
            engine = job.task.Engine.Type if job is not None and job.Tasks else ""
            counts[(execution.state.label, engine)] += 1
        for (label, engine), count in sorted(counts.items()):
            executions.add_metric([label, engine], count)
        yield executions
        yield GaugeMetricFamily(
            "bacedge_queue_depth",
            "Jobs waiting for the scheduler or for capacity",
            value=len(orch._pending) + by_state.get(JobStateType.QUEUED.value, 0),
        )
        nodes = GaugeMetricFamily(
            "bacedge_nodes", "Known compute nodes", labels=["connection", "membership"]
        )
        node_counts = Counter(
            (n.state.ConnectionState.Status.value, n.state.Membership.value)
            for n in orch.nodes.nodes.values()
        )
        for (connection, membership), count in sorted(node_counts.items()):
            nodes.add_metric([connection, membership], count)
        yield nodes
        yield CounterMetricFamily(
            "bacedge_heartbeats", "Heartbeats received from compute nodes", value=self.heartbeats
        )
        yield CounterMetricFamily(
            "bacedge_nats_reconnects", "Reconnects of this process's NATS link",
            value=_reconnects(orch.nc),
        )  # fmt: skip
        yield GaugeMetricFamily(
            "bacedge_event_subscribers", "Clients following GET .../events",
            value=orch.events.subscribers,
        )  # fmt: skip
        yield CounterMetricFamily(
            "bacedge_event_overflows", "Event subscribers dropped for falling behind",
            value=orch.events.overflows,
        )  # fmt: skip


class ComputeMetrics(Collector):
    """Figures of one compute node, served on `[compute] metrics_port`."""

    def __init__(self, node: ComputeNode, clock: Callable[[], float] = time.time) -> None:
        self.node = node
        self.started = clock()
        self.registry = CollectorRegistry()
        self.registry.register(self)

    def collect(self) -> Iterator[Any]:
        node = self.node
        executions = GaugeMetricFamily(
            "bacedge_node_executions",
            "Executions on this node by state and engine",
            labels=["state", "engine"],
        )
        counts: Counter[tuple[str, str]] = Counter()
        for execution in node.active.values():
            engine = execution.Job.task.Engine.Type if execution.Job and execution.Job.Tasks else ""
            running = execution.ID in node.running and not node.running[execution.ID].done()
            counts[("Running" if running else "Waiting", engine)] += 1
        for (state, engine), count in sorted(counts.items()):
            executions.add_metric([state, engine], count)
        yield executions
        yield GaugeMetricFamily(
            "bacedge_node_outbox", "Execution updates not yet acknowledged by the orchestrator",
            value=len(node._unsent),
        )  # fmt: skip
        yield GaugeMetricFamily(
            "bacedge_node_connected", "1 while the orchestrator link is up",
            value=1.0 if node.connected.is_set() else 0.0,
        )  # fmt: skip
        cache = node.cache
        yield CounterMetricFamily(
            "bacedge_storage_downloaded_bytes", "Bytes of S3 inputs downloaded",
            value=cache.bytes_downloaded,
        )  # fmt: skip
        hits = CounterMetricFamily(
            "bacedge_storage_cache", "Input cache lookups", labels=["result"]
        )
        hits.add_metric(["hit"], cache.hits)
        hits.add_metric(["miss"], cache.misses)
        yield hits
        yield CounterMetricFamily(
            "bacedge_node_nats_reconnects", "Reconnects of this node's NATS link",
            value=_reconnects(node.nc),
        )  # fmt: skip
