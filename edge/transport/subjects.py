"""Every NATS subject bacedge uses, in one place.

Orchestrator-bound subjects are shared (one orchestrator listens, queue group);
node-bound subjects carry the node ID so a node only hears its own work.
"""

from __future__ import annotations

PREFIX = "bacedge"
ORCH_QUEUE = "bacedge-orchestrator"

HANDSHAKE = f"{PREFIX}.node.handshake"  # request: NodeInfo -> HandshakeReply
HEARTBEAT = f"{PREFIX}.node.heartbeat"  # publish: Heartbeat
UPDATES = f"{PREFIX}.orchestrator.updates"  # request: UpdateBatch -> UpdateAck


def offer(node_id: str) -> str:
    """Request: OfferBatch -> OfferReply (executions to accept and start)."""
    return f"{PREFIX}.compute.{node_id}.offer"


def cancel(node_id: str) -> str:
    """Request: CancelRequest -> CancelReply."""
    return f"{PREFIX}.compute.{node_id}.cancel"


def logs(node_id: str) -> str:
    """Request: LogRequest -> LogReply; frames then go to LogRequest.Subject."""
    return f"{PREFIX}.compute.{node_id}.logs"


PRESIGN = f"{PREFIX}.orchestrator.presign"  # request: PresignRequest -> PresignReply


def results(node_id: str) -> str:
    """Request: ResultChunkRequest -> raw bytes of a `local` result archive, with headers
    `Size` (the whole archive) or `Error`."""
    return f"{PREFIX}.compute.{node_id}.results"
