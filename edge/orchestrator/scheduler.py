"""Node selection: filters say why a node cannot run a job; rankers order the rest.

Each rule is a small function of (job, node) so adding a rule means adding one
function to a list, as in Bacalhau's node selector.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from edge.models import Constraint, Job, Resources
from edge.models.node import find_image

from .nodes import LiveNode

Filter = Callable[[Job, Resources, LiveNode], str | None]
Ranker = Callable[[Job, Resources, LiveNode], float]


def _engine(job: Job, _need: Resources, node: LiveNode) -> str | None:
    engine = job.task.Engine.Type
    if engine not in node.state.Info.ComputeNodeInfo.ExecutionEngines:
        return f"do not run {engine!r} tasks"
    return None


def constraint_matches(constraint: Constraint, labels: dict[str, str]) -> bool:
    op = constraint.Operator.lower()
    value = labels.get(constraint.Key)
    values = constraint.Values
    if op in ("=", "=="):
        return value is not None and value in values[:1]
    if op == "!=":
        return value is None or value not in values[:1]
    if op == "in":
        return value is not None and value in values
    if op == "notin":
        return value is None or value not in values
    if op == "exists":
        return value is not None
    if op == "!":
        return value is None
    if op in ("gt", "lt"):
        try:
            number, bound = float(value or ""), float(values[0])
        except (ValueError, IndexError):
            return False
        return number > bound if op == "gt" else number < bound
    return False


def _constraints(job: Job, _need: Resources, node: LiveNode) -> str | None:
    labels = node.state.Info.Labels
    for constraint in job.Constraints:
        if not constraint_matches(constraint, labels):
            wanted = ",".join(constraint.Values)
            return f"have labels that do not match {constraint.Key} {constraint.Operator} {wanted}"
    return None


def _size(_job: Job, need: Resources, node: LiveNode) -> str | None:
    total = node.state.Info.ComputeNodeInfo.MaxCapacity
    if not need.fits_in(total):
        return "are too small for the task (even when idle)"
    return None


def _capacity(_job: Job, need: Resources, node: LiveNode) -> str | None:
    if not need.fits_in(node.free()):
        return "have not enough free capacity now"
    return None


def _has_image(job: Job, _need: Resources, node: LiveNode) -> float:
    """Nodes that already hold a docker task's image first: no pull, or no refused bid on
    a node that cannot pull it."""
    task = job.task
    if task.Engine.Type != "docker":
        return 0.0
    image = task.Engine.param("Image")
    if not isinstance(image, str) or not image:
        return 0.0
    images = node.state.Info.ComputeNodeInfo.Inventory.Images
    return 1.0 if find_image(image, images) is not None else 0.0


def _least_loaded(_job: Job, need: Resources, node: LiveNode) -> float:
    return -float(len(node.active))


FILTERS: list[Filter] = [_engine, _constraints, _size, _capacity]
RANKERS: list[Ranker] = [_has_image, _least_loaded]  # compared in order, as a tuple


@dataclass
class Placement:
    node: LiveNode | None
    reasons: dict[str, str]  # node ID -> why it was not chosen


def select_node(job: Job, need: Resources, nodes: list[LiveNode]) -> Placement:
    """The best node for one execution, or why none fits."""
    reasons: dict[str, str] = {}
    fits: list[LiveNode] = []
    for node in nodes:
        for rule in FILTERS:
            why = rule(job, need, node)
            if why:
                reasons[node.node_id] = why
                break
        else:
            fits.append(node)
    if not fits:
        return Placement(None, reasons)
    best = max(fits, key=lambda n: tuple(rank(job, need, n) for rank in RANKERS))
    return Placement(best, reasons)


def explain(reasons: dict[str, str], connected: int) -> str:
    """Why nothing was placed, in one line for the job's state message."""
    if connected == 0:
        return "no compute node is connected"
    counts: dict[str, int] = {}
    for why in reasons.values():
        counts[why] = counts.get(why, 0) + 1
    parts = [f"{n} node(s) {why}" for why, n in sorted(counts.items())]
    return "no node can run this job now: " + "; ".join(parts)
