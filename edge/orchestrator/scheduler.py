"""Node selection: filters say why a node cannot run a job; rankers order the rest.

Each rule is a small function of (job, node) so adding a rule means adding one
function to a list, as in Bacalhau's node selector. The lists say which rules are static
(they read the job and the node's info, which only a handshake changes) and which are
dynamic (they read `node.free()` and `len(node.active)`, nothing else): `index.py` keeps
the static verdicts per job signature and groups nodes by what the dynamic rules read, so
a placement among 10,000 nodes looks at a few groups instead of every node.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

from edge.models import Constraint, Job, Resources
from edge.models.node import find_image
from edge.selectors import matches

if TYPE_CHECKING:  # nodes.py imports the index, which imports these rules
    from .nodes import LiveNode


class Unfit(Enum):
    """Why a node cannot take an execution: a value, never matched by its wording."""

    ENGINE = "engine"
    CONSTRAINTS = "constraints"
    TOO_SMALL = "too small"
    BUSY = "busy"  # waiting for capacity can help
    CORDONED = "cordoned"  # waiting for an operator to uncordon (or a back-off) can help
    REFUSED = "refused"  # the node's bidder refused this job
    FAILED_HERE = "failed here"  # the task failed on this node already
    TAKEN = "taken"  # runs or ran this job already (ops and daemon jobs: once per node)

    @property
    def transient(self) -> bool:
        """Whether waiting (not a new spec) can make the node fit."""
        return self in (Unfit.BUSY, Unfit.CORDONED)


@dataclass(frozen=True)
class Reason:
    """Why one node was not chosen: a kind to decide on and words for the job's message."""

    kind: Unfit
    text: str

    def __str__(self) -> str:
        return self.text


Filter = Callable[[Job, Resources, "LiveNode"], "Reason | None"]
Ranker = Callable[[Job, Resources, "LiveNode"], float]

FAVOUR_PREFIX = "favour_"
"""Bacalhau's label preference: a constraint whose key starts with it ranks matching nodes
higher instead of filtering the others out."""


def _engine(job: Job, _need: Resources, node: LiveNode) -> Reason | None:
    engine = job.task.Engine.Type
    if engine not in node.state.Info.ComputeNodeInfo.ExecutionEngines:
        return Reason(Unfit.ENGINE, f"do not run {engine!r} tasks")
    return None


def preference(constraint: Constraint) -> Constraint | None:
    """The label constraint a `favour_` key prefers, or None for a required one."""
    if not constraint.Key.startswith(FAVOUR_PREFIX):
        return None
    return constraint.model_copy(update={"Key": constraint.Key[len(FAVOUR_PREFIX) :]})


def _constraints(job: Job, _need: Resources, node: LiveNode) -> Reason | None:
    labels = node.state.Info.Labels
    for constraint in job.Constraints:
        if constraint.Key.startswith(FAVOUR_PREFIX):
            continue  # a preference, ranked by _favoured
        if not matches(constraint, labels):
            wanted = ",".join(constraint.Values)
            return Reason(
                Unfit.CONSTRAINTS,
                f"have labels that do not match {constraint.Key} {constraint.Operator} {wanted}",
            )
    return None


def _size(_job: Job, need: Resources, node: LiveNode) -> Reason | None:
    total = node.state.Info.ComputeNodeInfo.MaxCapacity
    if not need.fits_in(total):
        return Reason(Unfit.TOO_SMALL, "are too small for the task (even when idle)")
    return None


def _capacity(_job: Job, need: Resources, node: LiveNode) -> Reason | None:
    if not need.fits_in(node.free()):
        return Reason(Unfit.BUSY, "have not enough free capacity now")
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


def _holds_data(job: Job, _need: Resources, node: LiveNode) -> float:
    """Compute goes to the data: nodes whose own store holds a job's input buckets, and
    nodes that allow its local paths, first (the data does not move, no refused bid)."""
    info = node.state.Info.ComputeNodeInfo
    score = 0.0
    for source in job.task.InputSources:
        kind = source.Source.Type
        if kind == "s3":
            bucket = str(source.Source.param("Bucket") or "")
            endpoint = str(source.Source.param("Endpoint") or "").strip().rstrip("/")
            for store in info.Stores:
                same_store = (
                    not endpoint or endpoint.split("://")[-1] == store.Endpoint.split("://")[-1]
                )
                if same_store and bucket in store.Buckets:
                    score += 1.0
                    break
        elif kind in ("local", "localdirectory"):
            path = str(source.Source.param("SourcePath") or "")
            if path and any(
                path == root or path.startswith(root.rstrip("/") + "/")
                for root in info.AllowedLocalPaths
            ):
                score += 1.0
    return score


def _favoured(job: Job, _need: Resources, node: LiveNode) -> float:
    """Bacalhau's `favour_` label preferences: nodes matching more of them first."""
    labels = node.state.Info.Labels
    score = 0.0
    for constraint in job.Constraints:
        wanted = preference(constraint)
        if wanted is not None and matches(wanted, labels):
            score += 1.0
    return score


# Bacalhau's capacity ranker: resources on comparable scales (cores, MB, GB, GPUs), each
# weighted by its share of what the task asks for (fixed weights when it asks for nothing).
_SCALES = (1.0, 1e6, 1e9, 1.0)
_DEFAULT_WEIGHTS = (0.4, 0.3, 0.2, 0.1)


def _weights(need: Resources) -> tuple[float, ...]:
    parts = [v / scale for v, scale in zip(_amounts(need), _SCALES, strict=True)]
    total = sum(parts)
    return tuple(p / total for p in parts) if total > 0 else _DEFAULT_WEIGHTS


def _amounts(resources: Resources) -> tuple[float, float, float, float]:
    return (resources.CPU, float(resources.Memory), float(resources.Disk), float(resources.GPU))


def _free_capacity(_job: Job, need: Resources, node: LiveNode) -> float:
    """More free capacity first, weighted by what the task needs most (Bacalhau's
    available-capacity ranker; free as the orchestrator counts it, placements included)."""
    weights = _weights(need)
    return sum(
        w * v / scale for w, v, scale in zip(weights, _amounts(node.free()), _SCALES, strict=True)
    )


def _least_loaded(_job: Job, need: Resources, node: LiveNode) -> float:
    return -float(len(node.active))


STATIC_FILTERS: list[Filter] = [_engine, _constraints, _size]  # what waiting cannot change
DYNAMIC_FILTERS: list[Filter] = [_capacity]  # node.free() only
FILTERS: list[Filter] = [*STATIC_FILTERS, *DYNAMIC_FILTERS]
STATIC_RANKERS: list[Ranker] = [_holds_data, _favoured, _has_image]
DYNAMIC_RANKERS: list[Ranker] = [_free_capacity, _least_loaded]  # node.free(), node.active
RANKERS: list[Ranker] = [*STATIC_RANKERS, *DYNAMIC_RANKERS]
"""Compared in order, as a tuple; a random draw breaks ties."""


def static_signature(job: Job, need: Resources) -> Hashable:
    """Everything the static rules read from the job: two jobs with one signature get the
    same static verdict on every node. A static rule that reads more must add it here."""
    task = job.task
    image = task.Engine.param("Image") if task.Engine.Type == "docker" else None
    return (
        task.Engine.Type,
        repr(image),
        tuple((c.Key, c.Operator, tuple(c.Values)) for c in job.Constraints),
        (need.CPU, need.Memory, need.Disk, need.GPU),
        tuple(source.Source.model_dump_json() for source in task.InputSources),
    )


RELATIVE: frozenset[Ranker] = frozenset({_free_capacity})
"""Rankers scored against the best candidate, from 0 to 100, as Bacalhau's integer ranks."""


@dataclass
class Placement:
    node: LiveNode | None
    reasons: dict[str, Reason]  # node ID -> why it was not chosen


def matching_nodes(
    job: Job, need: Resources, nodes: list[LiveNode]
) -> tuple[list[LiveNode], dict[str, Reason]]:
    """The nodes that can run the job at all (engine, constraints, size; busy or not), and
    why each other one cannot: an ops or daemon job runs on every matching node."""
    matching: list[LiveNode] = []
    reasons: dict[str, Reason] = {}
    for node in nodes:
        why = next((w for rule in STATIC_FILTERS if (w := rule(job, need, node))), None)
        if why:
            reasons[node.node_id] = why
        else:
            matching.append(node)
    return matching, reasons


def unfit(job: Job, need: Resources, node: LiveNode) -> Reason | None:
    """Why this node cannot take one more execution of the job now, or None."""
    return next((w for rule in FILTERS if (w := rule(job, need, node))), None)


def select_node(
    job: Job, need: Resources, nodes: list[LiveNode], rng: random.Random | None = None
) -> Placement:
    """The best node for one execution, or why none fits."""
    reasons: dict[str, Reason] = {}
    fits: list[LiveNode] = []
    for node in nodes:
        why = unfit(job, need, node)
        if why:
            reasons[node.node_id] = why
        else:
            fits.append(node)
    if not fits:
        return Placement(None, reasons)
    draw = (rng or random).random
    scores = {n.node_id: [rank(job, need, n) for rank in RANKERS] for n in fits}
    for column, rank in enumerate(RANKERS):
        if rank in RELATIVE:  # 0-100 against the best candidate: 1% is no difference
            top = max(s[column] for s in scores.values())
            for row in scores.values():
                row[column] = round(100 * row[column] / top) if top > 0 else 0
    best = max(fits, key=lambda n: (*scores[n.node_id], draw()))
    return Placement(best, reasons)


def explain(reasons: dict[str, Reason], connected: int) -> str:
    """Why nothing was placed, in one line for the job's state message."""
    if connected == 0:
        return "no compute node is connected"
    counts: dict[str, int] = {}
    for why in reasons.values():
        counts[why.text] = counts.get(why.text, 0) + 1
    parts = [f"{n} node(s) {why}" for why, n in sorted(counts.items())]
    return "no node can run this job now: " + "; ".join(parts)


def waiting_helps(reasons: dict[str, Reason]) -> bool:
    """Whether some node is only busy or cordoned: the job may wait in the queue for it,
    whatever the others said (a node that refused the job or failed it is not asked
    again, and one that is busy may still take it)."""
    return any(r.kind.transient for r in reasons.values())
