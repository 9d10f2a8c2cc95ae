"""Eligible nodes indexed for placement: choosing a node for an execution looks at a few
groups of alike nodes, not at every node, so placing stays cheap with 10,000 nodes.

The rules are scheduler.py's, one definition each; the index only decides which nodes
need looking at:

- per job signature (what the static rules read: the task's engine, image, inputs and
  resources, the job's constraints), the eligible nodes that pass the static filters, with
  their static ranks (`Candidates`): worked out once, then kept current node by node as
  nodes join, leave, change or take work (`NodeIndex.update`);
- those nodes grouped by what the dynamic rules read (free capacity, executions placed):
  the nodes of a group score alike, so each group is scored once, and the node is drawn
  uniformly among the tied nodes of the best groups, as `select_node` draws among tied
  nodes.

A plan reads it through a `View`, which counts the plan's own placements on copies of the
nodes and leaves the index as it is (the orchestrator updates it when it applies the plan).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Hashable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from edge.lru import LRU
from edge.models import Job, NodeInfo, Resources

from .scheduler import (
    DYNAMIC_FILTERS,
    DYNAMIC_RANKERS,
    RANKERS,
    RELATIVE,
    STATIC_FILTERS,
    STATIC_RANKERS,
    Reason,
    static_signature,
)

if TYPE_CHECKING:
    from .nodes import LiveNode

Ranks = tuple[float, ...]
Free = tuple[float, int, int, int]
Key = tuple[Ranks, Free, int]
"""A group: static ranks, free amounts (CPU, Memory, Disk, GPU), executions placed."""

_RELATIVE_COLUMNS = [i for i, rank in enumerate(RANKERS) if rank in RELATIVE]
_TRIES = 32  # random draws from a group before listing its valid members


def free_amounts(node: LiveNode) -> Free:
    """`node.free()`'s amounts (what the dynamic rules read), without building a model."""
    total, used = node.state.Info.ComputeNodeInfo.MaxCapacity, node.allocated
    return (
        max(0.0, total.CPU - used.CPU),
        max(0, total.Memory - used.Memory),
        max(0, total.Disk - used.Disk),
        max(0, total.GPU - used.GPU),
    )


class _Group:
    """Nodes with one key, in a list for uniform draws (removal swaps with the last)."""

    __slots__ = ("at", "members")

    def __init__(self) -> None:
        self.members: list[LiveNode] = []
        self.at: dict[str, int] = {}

    def add(self, node: LiveNode) -> None:
        self.at[node.node_id] = len(self.members)
        self.members.append(node)

    def remove(self, node_id: str) -> None:
        i = self.at.pop(node_id)
        last = self.members.pop()
        if i < len(self.members):
            self.members[i] = last
            self.at[last.node_id] = i


class Candidates:
    """For one job signature: the eligible nodes that pass the static filters, grouped."""

    def __init__(self, job: Job, need: Resources, nodes: Iterable[LiveNode]) -> None:
        self.job = job
        self.need = need
        # Per eligible node: the Info it was judged on, and its static ranks (None: a static
        # filter refuses it). A handshake brings a new Info, and the node is judged again.
        self.static: dict[str, tuple[NodeInfo, Ranks | None]] = {}
        self.where: dict[str, Key] = {}
        self.groups: dict[Key, _Group] = {}
        self._scores: dict[Key, tuple[Reason | None, Ranks]] = {}
        for node in nodes:
            self.update(node)

    def ranks(self, node: LiveNode) -> Ranks | None:
        """The node's static ranks, or None when it is no candidate (not eligible, or a
        static filter refuses it)."""
        if not node.eligible:
            return None
        info = node.state.Info
        seen = self.static.get(node.node_id)
        if seen is not None and seen[0] is info:
            return seen[1]
        job, need = self.job, self.need
        refused = any(rule(job, need, node) for rule in STATIC_FILTERS)
        ranks = None if refused else tuple(rank(job, need, node) for rank in STATIC_RANKERS)
        self.static[node.node_id] = (info, ranks)
        return ranks

    def update(self, node: LiveNode) -> None:
        node_id = node.node_id
        ranks = self.ranks(node)
        if ranks is None:
            if not node.eligible:
                self.static.pop(node_id, None)
            self._leave(node_id)
            return
        key = (ranks, free_amounts(node), len(node.active))
        old = self.where.get(node_id)
        if old == key:
            same = self.groups[key]
            same.members[same.at[node_id]] = node  # the same node, or its new object
            return
        self._leave(node_id)
        self.where[node_id] = key
        group = self.groups.get(key)
        if group is None:
            group = self.groups[key] = _Group()
        group.add(node)

    def discard(self, node_id: str) -> None:
        self.static.pop(node_id, None)
        self._leave(node_id)

    def _leave(self, node_id: str) -> None:
        key = self.where.pop(node_id, None)
        if key is None:
            return
        group = self.groups[key]
        group.remove(node_id)
        if not group.members:
            del self.groups[key]

    def judge(self, key: Key, node: LiveNode) -> tuple[Reason | None, Ranks]:
        """The dynamic verdict of a group, from one of its nodes (any: they read alike)."""
        cached = self._scores.get(key)
        if cached is None:
            if len(self._scores) > 4 * len(self.groups) + 256:  # forget groups long gone
                self._scores = {k: v for k, v in self._scores.items() if k in self.groups}
            job, need = self.job, self.need
            why = next((w for rule in DYNAMIC_FILTERS if (w := rule(job, need, node))), None)
            ranks = () if why else tuple(rank(job, need, node) for rank in DYNAMIC_RANKERS)
            cached = self._scores[key] = (why, ranks)
        return cached

    def __len__(self) -> int:
        return len(self.where)


class NodeIndex:
    """All known nodes (a NodeManager's dict, shared) and, for the job signatures planned
    lately, their candidates. Whoever changes a node calls `update` (NodeManager does)."""

    MAX_SIGNATURES = 16

    def __init__(self, nodes: dict[str, LiveNode]) -> None:
        self.nodes = nodes
        self._candidates: LRU[Hashable, Candidates] = LRU(self.MAX_SIGNATURES)
        # Draining nodes: plans look for work to move, and the sweep for drains to finish,
        # only on these (most often none).
        self.draining: set[str] = {n.node_id for n in nodes.values() if n.draining}

    @classmethod
    def of(cls, nodes: Iterable[LiveNode]) -> NodeIndex:
        """An index of a list of nodes (planner tests, one-off plans)."""
        return cls({node.node_id: node for node in nodes})

    def __iter__(self) -> Iterator[LiveNode]:
        return iter(self.nodes.values())

    def __len__(self) -> int:
        return len(self.nodes)

    def get(self, node_id: str) -> LiveNode | None:
        return self.nodes.get(node_id)

    def update(self, node: LiveNode) -> None:
        """The node joined, left, changed its info, scheduling or membership, or took or
        finished work: every kept signature sees it again."""
        if node.draining:
            self.draining.add(node.node_id)
        else:
            self.draining.discard(node.node_id)
        for candidates in self._candidates.values():
            candidates.update(node)

    def discard(self, node_id: str) -> None:
        self.draining.discard(node_id)
        for candidates in self._candidates.values():
            candidates.discard(node_id)

    def candidates(self, job: Job, need: Resources) -> Candidates:
        signature = static_signature(job, need)
        found = self._candidates.get(signature)
        if found is None:
            found = Candidates(job, need, self.nodes.values())
            self._candidates.put(signature, found)
        return found


class View:
    """One plan's look at the candidates: the plan's placements are counted on copies of
    their nodes (`replace`), the candidates themselves are left as they are."""

    def __init__(self, candidates: Candidates) -> None:
        self.candidates = candidates
        self.planned: dict[str, tuple[LiveNode, Key | None]] = {}
        self._local: dict[Key, dict[str, LiveNode]] = {}  # the copies that are candidates
        self._gone: Counter[Key] = Counter()  # a group's nodes replaced by copies

    def replace(self, node: LiveNode) -> None:
        """`node` (a copy with the plan's placements counted) stands for its node now."""
        node_id = node.node_id
        prior = self.planned.get(node_id)
        if prior is not None:
            self._drop_local(node_id, prior[1])
        else:
            key = self.candidates.where.get(node_id)
            if key is not None:
                self._gone[key] += 1
        ranks = self.candidates.ranks(node)
        key = None if ranks is None else (ranks, free_amounts(node), len(node.active))
        self.planned[node_id] = (node, key)
        if key is not None:
            self._local.setdefault(key, {})[node_id] = node

    def _drop_local(self, node_id: str, key: Key | None) -> None:
        if key is None:
            return
        local = self._local[key]
        del local[node_id]
        if not local:
            del self._local[key]

    def select(self, exclude: Mapping[str, Any], rng: random.Random | None) -> LiveNode | None:
        """The best candidate outside `exclude` (or None), with select_node's ranking and
        a uniform draw among the tied nodes."""
        excluded: Counter[Key] = Counter()
        excluded_local: Counter[Key] = Counter()
        for node_id in exclude:
            planned = self.planned.get(node_id)
            if planned is not None:
                if planned[1] is not None:
                    excluded_local[planned[1]] += 1
            elif (key := self.candidates.where.get(node_id)) is not None:
                excluded[key] += 1
        # (score, nodes it stands for, the group: its members and whether they are copies)
        entries: list[tuple[list[float], int, Any, bool]] = []
        judge = self.candidates.judge
        for key, group in self.candidates.groups.items():
            size = len(group.members) - self._gone[key] - excluded[key]
            if size > 0:
                why, ranks = judge(key, group.members[0])
                if why is None:
                    entries.append(([*key[0], *ranks], size, group, False))
        for key, local in self._local.items():
            size = len(local) - excluded_local[key]
            if size > 0:
                why, ranks = judge(key, next(iter(local.values())))
                if why is None:
                    entries.append(([*key[0], *ranks], size, local, True))
        if not entries:
            return None
        for column in _RELATIVE_COLUMNS:  # 0-100 against the best candidate, as select_node
            top = max(score[column] for score, *_ in entries)
            for score, *_ in entries:
                score[column] = round(100 * score[column] / top) if top > 0 else 0
        best = max(score for score, *_ in entries)
        tied = [(size, group, copies) for score, size, group, copies in entries if score == best]
        draw = rng.random if rng is not None else random.random
        point = draw() * sum(size for size, *_ in tied)
        chosen = tied[-1]
        for entry in tied:  # a group as likely as the nodes it stands for
            if point < entry[0]:
                chosen = entry
                break
            point -= entry[0]
        _, group, copies = chosen
        if copies:
            valid = [node for node_id, node in group.items() if node_id not in exclude]
            return valid[min(int(draw() * len(valid)), len(valid) - 1)]
        members = group.members
        for _ in range(_TRIES):
            node = members[min(int(draw() * len(members)), len(members) - 1)]
            if node.node_id not in self.planned and node.node_id not in exclude:
                return node
        valid = [n for n in members if n.node_id not in self.planned and n.node_id not in exclude]
        return valid[min(int(draw() * len(valid)), len(valid) - 1)]
