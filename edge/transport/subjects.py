"""Every NATS subject bacedge uses, in one place.

Both directions carry the node's ID: what a node sends goes to `bacedge.node.<ID>.*` and
what it is sent comes on `bacedge.compute.<ID>.*`, so a node with its own NATS identity
(`node_permissions`) can speak and hear only as itself, and the orchestrator checks that
a message's body names the node its subject does. One orchestrator listens on the
wildcards, in a queue group.
"""

from __future__ import annotations

import re
from typing import Any

PREFIX = "bacedge"
ORCH_QUEUE = "bacedge-orchestrator"

# Before per-node subjects (bacedge <= 0.13): still served, for nodes not yet upgraded.
LEGACY_HANDSHAKE = f"{PREFIX}.node.handshake"
LEGACY_HEARTBEAT = f"{PREFIX}.node.heartbeat"
LEGACY_UPDATES = f"{PREFIX}.orchestrator.updates"
LEGACY_PRESIGN = f"{PREFIX}.orchestrator.presign"

# A node ID that is one subject token (no dots, wildcards or spaces) and not too long.
NODE_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")

JOIN = f"{PREFIX}.join"  # request: JoinRequest -> JoinReply (a one-time join token)
JOIN_INBOX = "_INBOX_JOIN"  # where joining nodes, and only they, receive replies


def _from_node(node_id: str, kind: str) -> str:
    return f"{PREFIX}.node.{node_id}.{kind}"


HANDSHAKE_HEADER = "Bacedge-Handshake"
"""Why a node sends its info: CONNECTING (it started, reconnected or was forgotten; each
counts towards [orchestrator] flap_limit) or UPDATING (a fact changed while connected)."""
CONNECTING = "connect"
UPDATING = "update"


def handshake(node_id: str) -> str:
    """Request: NodeInfo -> HandshakeReply."""
    return _from_node(node_id, "handshake")


def heartbeat(node_id: str) -> str:
    """Request: Heartbeat -> {"Known": bool}."""
    return _from_node(node_id, "heartbeat")


def updates(node_id: str) -> str:
    """Request: UpdateBatch -> UpdateAck."""
    return _from_node(node_id, "updates")


def presign(node_id: str) -> str:
    """Request: PresignRequest -> PresignReply."""
    return _from_node(node_id, "presign")


def log_frames(node_id: str, stream: str) -> str:
    """Where a node publishes the lines of one log stream it was asked for."""
    return _from_node(node_id, f"logs.{stream}")


HANDSHAKES = handshake("*")
HEARTBEATS = heartbeat("*")
UPDATE_BATCHES = updates("*")
PRESIGNS = presign("*")


def sender(subject: str) -> str | None:
    """The node a `bacedge.node.<ID>.*` subject is from; None for any other subject."""
    parts = subject.split(".")
    if len(parts) >= 4 and parts[0] == PREFIX and parts[1] == "node":
        return parts[2]
    return None


def impersonates(subject: str, node_id: str) -> bool:
    """A message on a node's own subject whose body speaks for another node."""
    who = sender(subject)
    return who is not None and who != node_id


def inbox(node_id: str) -> str:
    """The inbox prefix of a node's own connection: replies to it, and only to it."""
    return f"_INBOX_{node_id}"


def node_permissions(node_id: str) -> dict[str, Any]:
    """nats-server permissions for a node's own user: it publishes only as itself, hears
    only its own work and replies only to what it was asked."""
    return {
        "publish": {"allow": [_from_node(node_id, ">")]},
        "subscribe": {"allow": [f"{PREFIX}.compute.{node_id}.>", f"{inbox(node_id)}.>"]},
        "allow_responses": True,
    }


def joiner_permissions() -> dict[str, Any]:
    """A node that holds only a join token may ask to join, and hear the answer."""
    return {
        "publish": {"allow": [JOIN]},
        "subscribe": {"allow": [f"{JOIN_INBOX}.>"]},
    }


def offer(node_id: str) -> str:
    """Request: OfferBatch -> OfferReply (executions to accept and start)."""
    return f"{PREFIX}.compute.{node_id}.offer"


def cancel(node_id: str) -> str:
    """Request: CancelRequest -> CancelReply."""
    return f"{PREFIX}.compute.{node_id}.cancel"


def logs(node_id: str) -> str:
    """Request: LogRequest -> LogReply; frames then go to LogRequest.Subject."""
    return f"{PREFIX}.compute.{node_id}.logs"


def results(node_id: str) -> str:
    """Request: ResultChunkRequest -> raw bytes of a `local` result archive, with headers
    `Size` (the whole archive) or `Error`."""
    return f"{PREFIX}.compute.{node_id}.results"
