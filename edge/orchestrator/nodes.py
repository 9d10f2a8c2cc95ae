"""Node membership and liveness: handshakes, heartbeats, approval, disconnection."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

from edge.models import (
    GPUInfo,
    NodeConnection,
    NodeInfo,
    NodeMembership,
    NodeScheduling,
    NodeState,
    Resources,
    SchedulingState,
)

from .errors import BadRequest, NotFound, quoted
from .history import parse_rfc3339, rfc3339
from .index import NodeIndex


@dataclass
class LiveNode:
    """A node's published state plus what only the orchestrator tracks."""

    state: NodeState
    last_seen: float = 0.0  # monotonic
    allocated: Resources = field(default_factory=Resources)
    active: set[str] = field(default_factory=set)  # execution IDs placed here, not terminal
    held: dict[str, tuple[Resources, frozenset[str]]] = field(default_factory=dict)
    """What each active execution holds, as allocated: released exactly so, whatever its
    job's spec says by then (a new version may ask for other resources)."""
    gpus_used: frozenset[str] = frozenset()  # gpu_key of each GPU reserved by an execution
    connections: deque[float] = field(default_factory=deque)  # monotonic, within the window
    backoff_until: float = 0.0  # monotonic; 0: takes work (FlapPolicy)

    @property
    def node_id(self) -> str:
        return self.state.node_id

    @property
    def schedulable(self) -> bool:
        """Connected and approved (cordoned or not)."""
        return self.state.connected and self.state.Membership == NodeMembership.APPROVED

    @property
    def eligible(self) -> bool:
        """Takes new work: schedulable, neither cordoned nor drained, not backing off."""
        return (
            self.schedulable
            and self.state.Scheduling.Status == NodeScheduling.ELIGIBLE
            and not self.backoff_until
        )

    @property
    def draining(self) -> bool:
        return self.state.Scheduling.Status == NodeScheduling.DRAINING

    @property
    def drain_deadline(self) -> int | None:
        """Unix ns after which a draining node's batch work is moved; None: never."""
        if not self.draining or not self.state.Scheduling.DrainDeadline:
            return None
        return parse_rfc3339(self.state.Scheduling.DrainDeadline)

    def free(self) -> Resources:
        return self.state.Info.ComputeNodeInfo.MaxCapacity.sub(self.allocated)

    def free_gpus(self) -> list[GPUInfo]:
        """The node's GPUs no execution holds, in index order."""
        gpus = self.state.Info.ComputeNodeInfo.MaxCapacity.GPUs
        return sorted((g for g in gpus if gpu_key(g) not in self.gpus_used), key=lambda g: g.Index)


def gpu_key(gpu: GPUInfo) -> str:
    """One GPU on its node: its UUID, or its index when NVML gave none."""
    return gpu.UUID or f"#{gpu.Index}"


@dataclass(frozen=True)
class FlapPolicy:
    """How a node that keeps reconnecting is kept from thrashing the scheduler.

    Each connection of a node (its first, a reconnect after its link dropped, a restart)
    is counted over `window` seconds; past `limit` the node gets no new work for `backoff`
    seconds, doubled for each further connection up to `backoff_max`. What it runs stays:
    only offers stop, which a node that vanishes every few seconds would lose and have
    placed again. `limit` 0: never back off.
    """

    limit: int = 5
    window: float = 60.0
    backoff: float = 30.0
    backoff_max: float = 600.0

    def hold(self, connections: int) -> float:
        """Seconds without new work for a node with `connections` in the window; 0: none."""
        if self.limit <= 0 or connections <= self.limit:
            return 0.0
        return min(self.backoff_max, self.backoff * 2 ** min(connections - self.limit - 1, 32))


class NodeManager:
    """The nodes, and their index for placement: every change to a node's connection,
    membership, scheduling, info or work goes through here, which keeps the index current."""

    def __init__(
        self,
        heartbeat_timeout: float,
        auto_approve: bool,
        disconnect_grace: float = 0.0,
        flap: FlapPolicy | None = None,
    ) -> None:
        self.heartbeat_timeout = heartbeat_timeout
        self.auto_approve = auto_approve
        self.disconnect_grace = disconnect_grace
        self.flap = flap or FlapPolicy()
        self.nodes: dict[str, LiveNode] = {}
        self.index = NodeIndex(self.nodes)
        self._backing_off: set[str] = set()

    def load(self, states: list[NodeState]) -> None:
        """Known nodes from the store start disconnected, with one timeout's grace to return
        (and no back-off: the connections that earned one were counted by another process)."""
        now = time.monotonic()
        for state in states:
            state.ConnectionState.Status = NodeConnection.DISCONNECTED
            state.Scheduling.BackOffUntil = state.Scheduling.BackOffReason = ""
            node = self.nodes[state.node_id] = LiveNode(state=state, last_seen=now)
            self.index.update(node)

    def handshake(self, info: NodeInfo, connecting: bool = False) -> LiveNode:
        """A node's info, on a new connection (`connecting`: the node says it connected,
        restarted or was forgotten here) or as an update of a connected node's facts."""
        now = rfc3339()
        node = self.nodes.get(info.NodeID)
        if node is None:
            membership = NodeMembership.APPROVED if self.auto_approve else NodeMembership.PENDING
            node = LiveNode(state=NodeState(Info=info, Membership=membership))
            self.nodes[info.NodeID] = node
        node.state.Info = info
        conn = node.state.ConnectionState
        if connecting or conn.Status != NodeConnection.CONNECTED:
            self._count_connection(node)
        if conn.Status != NodeConnection.CONNECTED:
            conn.ConnectedSince = now
        conn.Status = NodeConnection.CONNECTED
        conn.LastHeartbeat = now
        conn.LastError = ""
        node.last_seen = time.monotonic()
        self.index.update(node)
        return node

    def _count_connection(self, node: LiveNode) -> None:
        now = time.monotonic()
        window = node.connections
        window.append(now)
        while window and window[0] < now - self.flap.window:
            window.popleft()
        hold = self.flap.hold(len(window))
        if not hold:
            return
        node.backoff_until = now + hold
        self._backing_off.add(node.node_id)
        scheduling = node.state.Scheduling
        scheduling.BackOffUntil = rfc3339(time.time_ns() + int(hold * 1e9))
        scheduling.BackOffReason = (
            f"connected {len(window)} times in {self.flap.window:g}s: no new work for "
            f"{hold:g}s, doubled while it keeps reconnecting (work it runs stays)"
        )

    def end_backoffs(self) -> list[LiveNode]:
        """Nodes whose back-off has just run out: they take new work again."""
        now = time.monotonic()
        ended = []
        for node_id in list(self._backing_off):
            node = self.nodes.get(node_id)
            if node is not None and node.backoff_until > now:
                continue
            self._backing_off.discard(node_id)
            if node is None:
                continue
            node.backoff_until = 0.0
            node.state.Scheduling.BackOffUntil = node.state.Scheduling.BackOffReason = ""
            self.index.update(node)
            ended.append(node)
        return ended

    def heartbeat(self, node_id: str, available: Resources, running: int, queued: int) -> bool:
        """False when the node is unknown here (it must handshake again)."""
        node = self.nodes.get(node_id)
        if node is None:
            return False
        info = node.state.Info.ComputeNodeInfo
        info.AvailableCapacity = available
        info.RunningExecutions = running
        info.EnqueuedExecutions = queued
        conn = node.state.ConnectionState
        conn.LastHeartbeat = rfc3339()
        node.last_seen = time.monotonic()
        return conn.Status == NodeConnection.CONNECTED

    def expire(self) -> tuple[list[LiveNode], list[LiveNode]]:
        """(nodes just marked disconnected, nodes whose work must fail over now).

        A node silent for a heartbeat timeout is disconnected: it gets no new work. Its
        executions stay its own for `disconnect_grace` more, so a link that drops and heals
        (or a node that reboots) finishes its work and nothing runs twice; after that they
        fail over, so nothing waits forever on a node that is gone.
        """
        now = time.monotonic()
        cutoff = now - self.heartbeat_timeout
        give_up = cutoff - self.disconnect_grace
        disconnected, lost = [], []
        for node in self.nodes.values():
            if node.last_seen >= cutoff:
                continue
            conn = node.state.ConnectionState
            if conn.Status == NodeConnection.CONNECTED:
                conn.Status = NodeConnection.DISCONNECTED
                conn.DisconnectedSince = rfc3339()
                conn.LastError = f"no heartbeat for {self.heartbeat_timeout:.0f}s"
                disconnected.append(node)
                self.index.update(node)
            if node.active and node.last_seen < give_up:
                timeout, grace = self.heartbeat_timeout, self.disconnect_grace
                conn.LastError = (
                    f"did not reconnect within {timeout + grace:.0f}s (heartbeat timeout "
                    f"{timeout:.0f}s + disconnect grace {grace:.0f}s)"
                )
                lost.append(node)
        return disconnected, lost

    def get(self, node_id: str) -> LiveNode:
        node = self.nodes.get(node_id)
        if node is None:
            matches = [n for k, n in self.nodes.items() if k.startswith(node_id)]
            if len(matches) == 1:
                return matches[0]
            if not matches:
                raise NotFound(f"node {quoted(node_id)} not found: check `bacedge node list`")
            raise BadRequest(f"node reference {node_id!r} is ambiguous: use more of the ID")
        return node

    def set_membership(self, node_id: str, action: str) -> LiveNode:
        node = self.get(node_id)
        target = {"approve": NodeMembership.APPROVED, "reject": NodeMembership.REJECTED}.get(action)
        if target is None:
            raise BadRequest(f"unknown node action {action!r}: use approve, reject or delete")
        if node.state.Membership == target:
            raise BadRequest(f"node {node.node_id} is already {target.value.lower()}")
        node.state.Membership = target
        self.index.update(node)
        return node

    def set_scheduling(
        self, node_id: str, action: str, message: str = "", deadline: float | None = None
    ) -> LiveNode:
        """cordon, uncordon or drain (with a deadline in seconds for its batch work)."""
        node = self.get(node_id)
        status = {
            "cordon": NodeScheduling.CORDONED,
            "uncordon": NodeScheduling.ELIGIBLE,
            "drain": NodeScheduling.DRAINING,
        }[action]
        current = node.state.Scheduling.Status
        if status == current and action != "drain":
            word = "schedulable" if status == NodeScheduling.ELIGIBLE else status.value.lower()
            raise BadRequest(f"node {node.node_id} is already {word}")
        if action == "drain" and current == NodeScheduling.DRAINED:
            raise BadRequest(f"node {node.node_id} is already drained")
        now = time.time_ns()
        node.state.Scheduling = SchedulingState(
            Status=status,
            Message=message,
            Since=rfc3339(now),
            DrainDeadline=rfc3339(now + int(deadline * 1e9)) if deadline is not None else "",
            BackOffUntil=node.state.Scheduling.BackOffUntil,  # the operator's word is not this
            BackOffReason=node.state.Scheduling.BackOffReason,
        )
        self.index.update(node)
        return node

    def drained(self, node: LiveNode) -> None:
        """A draining node with nothing left to run."""
        node.state.Scheduling.Status = NodeScheduling.DRAINED
        self.index.update(node)

    def draining(self) -> list[LiveNode]:
        """The nodes being drained, in no particular order (the index keeps their IDs: the
        sweep visits these, not the whole fleet)."""
        return [self.nodes[n] for n in self.index.draining if n in self.nodes]

    def allocate(
        self, node: LiveNode, execution_id: str, need: Resources, gpus: frozenset[str]
    ) -> None:
        """An execution placed on the node holds `need` and these GPUs until released."""
        if execution_id in node.active:
            return  # holds what it was given already
        node.active.add(execution_id)
        node.held[execution_id] = (need, gpus)
        node.allocated = node.allocated.add(need)
        node.gpus_used = node.gpus_used | gpus
        self.index.update(node)

    def release(self, node: LiveNode, execution_id: str) -> None:
        held = node.held.pop(execution_id, None)
        node.active.discard(execution_id)
        if held is None:
            return
        need, gpus = held
        node.allocated = node.allocated.sub(need)
        node.gpus_used = node.gpus_used - gpus
        self.index.update(node)

    def delete(self, node_id: str) -> LiveNode:
        node = self.get(node_id)
        del self.nodes[node.node_id]
        self.index.discard(node.node_id)
        self._backing_off.discard(node.node_id)
        return node
