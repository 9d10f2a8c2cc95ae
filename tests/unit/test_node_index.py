"""The node index (edge/orchestrator/index.py): placements chosen among groups of alike nodes
are the ones `select_node` would make among all nodes, the index stays current through
every change the orchestrator makes to a node, and a plan's own placements are counted."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

from edge.models import (
    ComputeNodeInfo,
    Job,
    NodeConnection,
    NodeInfo,
    NodeScheduling,
    NodeState,
    Resources,
    SchedulingState,
)
from edge.orchestrator.index import Candidates, NodeIndex
from edge.orchestrator.nodes import LiveNode, NodeManager
from edge.orchestrator.planners import PlanContext, plan
from edge.orchestrator.planners.base import NodePool
from edge.orchestrator.scheduler import RANKERS, RELATIVE, Reason, Unfit, select_node, unfit

GIB = 1 << 30


def info(node_id: str, cpu: float, labels: dict[str, str], engines: list[str]) -> NodeInfo:
    return NodeInfo(
        NodeID=node_id,
        NodeType="Compute",
        Labels=labels,
        ComputeNodeInfo=ComputeNodeInfo(
            ExecutionEngines=engines,
            MaxCapacity=Resources(CPU=cpu, Memory=8 * GIB, Disk=100 * GIB),
        ),
    )


def live(node_id: str, cpu: float = 4, labels: dict[str, str] | None = None, **kw: Any) -> LiveNode:
    state = NodeState(Info=info(node_id, cpu, labels or {}, kw.pop("engines", ["noop"])))
    state.ConnectionState.Status = NodeConnection.CONNECTED
    state.Membership = state.Membership.APPROVED
    state.Scheduling = SchedulingState(Status=kw.pop("scheduling", NodeScheduling.ELIGIBLE))
    return LiveNode(state=state, **kw)


def batch(count: int = 1, cpu: str = "", **spec: Any) -> Job:
    task = {"Name": "main", "Engine": {"Type": spec.pop("engine", "noop")}}
    if cpu:
        task["Resources"] = {"CPU": cpu}
    return Job.model_validate(
        {"ID": "j-1", "Type": "batch", "Count": count, "Version": 1, "Tasks": [task], **spec}
    )


def best_nodes(job: Job, nodes: list[LiveNode], exclude: dict[str, Reason]) -> set[str]:
    """select_node's ranking, written out: the nodes any of its draws could pick."""
    need = job.task.Resources.parse()
    fits = [n for n in nodes if n.eligible and n.node_id not in exclude]
    fits = [n for n in fits if unfit(job, need, n) is None]
    if not fits:
        return set()
    scores = {n.node_id: [rank(job, need, n) for rank in RANKERS] for n in fits}
    for column, rank in enumerate(RANKERS):
        if rank in RELATIVE:
            top = max(s[column] for s in scores.values())
            for row in scores.values():
                row[column] = round(100 * row[column] / top) if top > 0 else 0
    top_score = max(scores.values())
    return {node_id for node_id, score in scores.items() if score == top_score}


def random_cluster(rng: random.Random, size: int) -> list[LiveNode]:
    nodes = []
    for i in range(size):
        node = live(
            f"n-{i:03d}",
            cpu=rng.choice([2, 4, 8]),
            labels={"zone": rng.choice(["a", "b", "c"]), "name": f"n-{i:03d}"},
            engines=rng.choice([["noop"], ["noop", "wasm"], ["wasm"]]),
            scheduling=rng.choice([NodeScheduling.ELIGIBLE] * 5 + [NodeScheduling.CORDONED]),
        )
        busy = rng.choice([0, 0, 1, 2, 3])
        node.active = {f"e-{i}-{k}" for k in range(busy)}
        node.allocated = Resources(CPU=float(rng.choice([0, 1, 2])) * (busy > 0))
        if rng.random() < 0.1:
            node.state.ConnectionState.Status = NodeConnection.DISCONNECTED
        nodes.append(node)
    return nodes


def random_job(rng: random.Random) -> Job:
    constraints = rng.choice(
        [
            [],
            [{"Key": "zone", "Operator": "in", "Values": ["a", "b"]}],
            [{"Key": "favour_zone", "Operator": "=", "Values": ["c"]}],
        ]
    )
    return batch(
        cpu=rng.choice(["", "1", "2", "3"]),
        engine=rng.choice(["noop", "noop", "wasm"]),
        Constraints=constraints,
    )


def test_the_index_picks_among_the_nodes_select_node_ranks_best() -> None:
    rng = random.Random(13)
    for _ in range(150):
        nodes = random_cluster(rng, rng.randint(1, 40))
        job = random_job(rng)
        passed = rng.sample(nodes, min(len(nodes), rng.randint(0, 3)))
        exclude = {n.node_id: Reason(Unfit.REFUSED, "refused the job") for n in passed}
        pool = NodePool(job, nodes)
        for _ in range(4):  # the plan's own placements count on the next choice
            expected = best_nodes(job, pool.eligible, exclude)
            placement = pool.select(exclude, rng)
            if not expected:
                assert placement.node is None
                # Why each node was passed: what select_node says, as before the index.
                others = [n for n in pool.eligible if n.node_id not in exclude]
                reference = select_node(job, pool.need, others, rng)
                assert placement.reasons == {**pool.closed, **exclude, **reference.reasons}
                break
            assert placement.node is not None and placement.node.node_id in expected
            pool.take(placement.node.node_id)


def test_tied_nodes_are_drawn_uniformly_whatever_their_groups() -> None:
    # Two groups (free CPU 4 and 3.99) tie on every rank (free capacity is ranked 0-100
    # against the best): 2 and 4 nodes, each node drawn 1/6 of the time, not each group 1/2.
    nodes = [live(f"n-{i}", cpu=4 if i < 2 else 3.99) for i in range(6)]
    job = batch()
    assert len(NodePool(job, nodes).index.candidates(job, Resources()).groups) == 2
    rng = random.Random(5)
    drawn = Counter(NodePool(job, nodes).select({}, rng).node.node_id for _ in range(6000))  # type: ignore[union-attr]
    assert set(drawn) == {n.node_id for n in nodes}
    assert all(800 < count < 1200 for count in drawn.values()), drawn


def test_a_plan_counts_its_own_placements_and_never_overfills_a_node() -> None:
    nodes = [live(f"n-{i}", cpu=2) for i in range(3)]
    step = plan(batch(count=10, cpu="1"), [], nodes, PlanContext(rng=random.Random(1)))
    per_node = Counter(c.node_id for c in step.create)
    assert len(step.create) == 6 and set(per_node.values()) == {2}  # 2 CPUs each: full
    assert all(not n.active and n.allocated == Resources() for n in nodes)  # pure
    # Zero-sized work spreads by load instead: least loaded first, so one each, then two.
    step = plan(batch(count=6), [], nodes, PlanContext(rng=random.Random(1)))
    assert Counter(c.node_id for c in step.create) == {"n-0": 2, "n-1": 2, "n-2": 2}


def snapshot(candidates: Candidates) -> dict[str, Any]:
    return {
        node_id: (key, candidates.groups[key].members[candidates.groups[key].at[node_id]])
        for node_id, key in candidates.where.items()
    }


def test_the_index_follows_every_change_the_orchestrator_makes_to_its_nodes() -> None:
    manager = NodeManager(heartbeat_timeout=30, auto_approve=True)
    job = batch(cpu="1", Constraints=[{"Key": "zone", "Operator": "=", "Values": ["a"]}])
    need = job.task.Resources.parse()
    kept = manager.index.candidates(job, need)  # kept current from here on

    def check() -> None:
        fresh = Candidates(job, need, manager.nodes.values())
        assert snapshot(kept) == snapshot(fresh)
        assert set(kept.groups) == set(fresh.groups)

    for i in range(8):
        manager.handshake(info(f"n-{i}", 4, {"zone": "a" if i % 2 else "b"}, ["noop"]))
    check()
    assert len(kept) == 4
    a_node = manager.nodes["n-1"]
    for k in range(3):
        manager.allocate(a_node, f"e-{k}", need, frozenset())
    check()
    manager.release(a_node, "e-1")
    manager.release(a_node, "e-unknown")  # not there: no change
    check()
    manager.set_scheduling("n-3", "cordon")
    check()
    manager.set_scheduling("n-3", "drain")
    manager.drained(manager.nodes["n-3"])
    check()
    manager.set_scheduling("n-3", "uncordon")
    check()
    manager.set_membership("n-5", "reject")
    check()
    manager.handshake(info("n-7", 4, {"zone": "b"}, ["noop"]))  # new info: leaves
    manager.handshake(info("n-0", 4, {"zone": "a"}, ["noop"]))  # new info: joins
    check()
    manager.delete("n-0")
    check()
    manager.handshake(info("n-0", 4, {"zone": "a"}, ["noop"]))  # back, a new LiveNode
    check()
    assert snapshot(kept)["n-0"][1] is manager.nodes["n-0"]
    manager.nodes["n-1"].last_seen = 0  # silent: disconnected by the sweeper
    disconnected, _ = manager.expire()
    assert [n.node_id for n in disconnected] == ["n-1"]
    check()
    assert "n-1" not in kept.where


def test_signatures_share_candidates_and_old_ones_are_forgotten() -> None:
    index = NodeIndex.of([live("n-1"), live("n-2", engines=["wasm"])])
    noop, other_noop = batch(), batch(count=7)  # Count is no static rule's business
    assert index.candidates(noop, Resources()) is index.candidates(other_noop, Resources())
    assert len(index.candidates(batch(engine="wasm"), Resources())) == 1
    for cpu in range(NodeIndex.MAX_SIGNATURES + 1):
        index.candidates(batch(), Resources(CPU=float(cpu)))
    assert len(index._candidates) == NodeIndex.MAX_SIGNATURES


def test_release_gives_back_what_was_allocated_whatever_the_job_asks_by_then() -> None:
    """A job's new version may ask for other resources while its old executions still run:
    each gives back exactly what it was given, so free capacity never drifts."""
    manager = NodeManager(heartbeat_timeout=30, auto_approve=True)
    manager.handshake(info("n-1", 4, {}, ["noop"]))
    node = manager.nodes["n-1"]
    before = node.allocated
    manager.allocate(node, "e-1", Resources(CPU=1), frozenset({"gpu-0"}))
    manager.allocate(node, "e-1", Resources(CPU=1), frozenset())  # the same one again: no-op
    manager.allocate(node, "e-2", Resources(CPU=2), frozenset())
    assert node.allocated.CPU == before.CPU + 3 and node.gpus_used == {"gpu-0"}
    manager.release(node, "e-1")
    assert node.allocated.CPU == before.CPU + 2 and not node.gpus_used
    manager.release(node, "e-1")  # released twice: nothing more comes back
    manager.release(node, "e-2")
    assert node.allocated == before and not node.active and not node.held


def test_the_draining_nodes_are_known_without_visiting_the_fleet() -> None:
    """The sweep asks for the draining nodes every half second: the manager keeps them as
    each drain starts and ends, and gives exactly the nodes whose status says DRAINING."""
    manager = NodeManager(heartbeat_timeout=30, auto_approve=True)

    def draining() -> set[str]:
        listed = {n.node_id for n in manager.draining()}
        assert listed == {n.node_id for n in manager.nodes.values() if n.draining}
        return listed

    for i in range(4):
        manager.handshake(info(f"n-{i}", 4, {}, ["noop"]))
    assert draining() == set()
    manager.set_scheduling("n-1", "drain")
    manager.set_scheduling("n-2", "drain")
    manager.set_scheduling("n-2", "drain", deadline=60)  # again, with a deadline
    assert draining() == {"n-1", "n-2"}
    manager.drained(manager.nodes["n-1"])
    manager.set_scheduling("n-3", "cordon")
    assert draining() == {"n-2"}
    manager.set_scheduling("n-2", "uncordon")
    manager.set_scheduling("n-3", "drain")
    assert draining() == {"n-3"}
    manager.delete("n-3")
    assert draining() == set()
    stored = manager.nodes["n-0"].state.model_copy(deep=True)
    stored.Scheduling.Status = NodeScheduling.DRAINING
    restarted = NodeManager(heartbeat_timeout=30, auto_approve=True)
    restarted.load([stored])  # a drain that began before a restart goes on
    assert [n.node_id for n in restarted.draining()] == ["n-0"]
