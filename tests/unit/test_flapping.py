"""A node that keeps reconnecting backs off from new work (FlapPolicy), visibly."""

from __future__ import annotations

import pytest

from edge.models import NodeState
from edge.orchestrator import nodes as nodes_module
from edge.orchestrator.index import Candidates
from edge.orchestrator.nodes import FlapPolicy, NodeManager
from edge.orchestrator.planners.base import NodePool

from .test_node_index import batch, info


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(nodes_module.time, "monotonic", fake)
    return fake


def test_the_hold_doubles_past_the_limit_up_to_its_maximum() -> None:
    policy = FlapPolicy(limit=3, window=300, backoff=30, backoff_max=600)
    assert [policy.hold(n) for n in range(1, 10)] == [0, 0, 0, 30, 60, 120, 240, 480, 600]
    assert policy.hold(10**9) == 600  # no overflow however many
    assert FlapPolicy(limit=0).hold(1000) == 0  # 0: never


def test_by_default_an_operator_restarting_a_node_never_backs_it_off(clock: Clock) -> None:
    """Defaults: more than 5 connections in a minute. A service restarted by hand a few
    times (the .deb's system tests restart the compute unit four times in a few minutes)
    keeps taking work; a process or link dropping every few seconds does not."""
    manager = NodeManager(30, True)
    for _ in range(5):  # five restarts, 10 s apart: within a minute, not past the limit
        node = manager.handshake(info("n-1", 4, {}, ["noop"]), connecting=True)
        clock.now += 10
    assert node.eligible
    manager.handshake(info("n-1", 4, {}, ["noop"]), connecting=True)  # the sixth in 60 s
    assert not node.eligible and "no new work for 30s" in node.state.Scheduling.BackOffReason


def test_a_flapping_node_backs_off_says_so_and_returns_when_it_ends(clock: Clock) -> None:
    manager = NodeManager(30, True, flap=FlapPolicy(limit=2, window=60, backoff=10))
    job = batch(cpu="1")
    kept = manager.index.candidates(job, job.task.Resources.parse())
    node = manager.handshake(info("n-1", 4, {}, ["noop"]), connecting=True)
    manager.handshake(info("n-1", 4, {}, ["noop"]))  # an update of a connected node: no count
    clock.now += 5
    manager.handshake(info("n-1", 4, {}, ["noop"]), connecting=True)
    assert node.eligible and len(kept) == 1
    clock.now += 5
    manager.handshake(info("n-1", 4, {}, ["noop"]), connecting=True)  # third in 60 s
    assert not node.eligible and len(kept) == 0
    scheduling = node.state.Scheduling
    assert scheduling.word == "BACKOFF" and scheduling.BackOffUntil
    assert "connected 3 times in 60s: no new work for 10s" in scheduling.BackOffReason
    wire = node.state.model_dump(mode="json")
    assert wire["Scheduling"]["BackOffUntil"] == scheduling.BackOffUntil  # shown, not hidden
    reasons = NodePool(job, manager.index).closed
    assert str(reasons["n-1"]) == "are backing off after reconnecting too often"
    # The operator's cordon does not erase the back-off, nor the back-off the cordon.
    manager.set_scheduling("n-1", "cordon")
    assert node.state.Scheduling.BackOffUntil and node.state.Scheduling.word == "CORDONED"
    manager.set_scheduling("n-1", "uncordon")
    clock.now += 9
    assert manager.end_backoffs() == [] and not node.eligible
    clock.now += 1
    assert manager.end_backoffs() == [node] and node.eligible and len(kept) == 1
    assert "Scheduling" not in node.state.model_dump(mode="json")  # Bacalhau's shape again
    assert manager.end_backoffs() == []
    fresh = Candidates(job, job.task.Resources.parse(), manager.nodes.values())
    assert set(fresh.where) == set(kept.where) == {"n-1"}


def test_connections_outside_the_window_are_forgotten(clock: Clock) -> None:
    manager = NodeManager(30, True, flap=FlapPolicy(limit=2, window=60, backoff=10))
    for _ in range(10):  # a restart every 40 s: never 3 within a minute
        node = manager.handshake(info("n-1", 4, {}, ["noop"]), connecting=True)
        assert node.eligible
        clock.now += 40


def test_a_node_reconnecting_after_a_noticed_disconnection_counts_without_saying_so(
    clock: Clock,
) -> None:
    """Agents that send no reason: a handshake after the orchestrator marked the node
    disconnected is a connection all the same."""
    manager = NodeManager(30, True, flap=FlapPolicy(limit=1, window=600, backoff=5))
    node = manager.handshake(info("n-1", 4, {}, ["noop"]))
    clock.now += 31
    assert manager.expire()[0] == [node]
    manager.handshake(info("n-1", 4, {}, ["noop"]))
    assert node.backoff_until == clock.now + 5 and not node.eligible


def test_a_restarted_orchestrator_forgets_back_offs(clock: Clock) -> None:
    state = NodeState.model_validate(
        {
            "Info": {"NodeID": "n-1"},
            "Scheduling": {"BackOffUntil": "2030-01-01T00:00:00Z", "BackOffReason": "x"},
        }
    )
    manager = NodeManager(30, True)
    manager.load([state])
    assert manager.nodes["n-1"].state.Scheduling.word == ""
