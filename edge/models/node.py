"""Nodes as the orchestrator sees them: info, membership, connection."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from pydantic import (
    Field,
    SerializerFunctionWrapHandler,
    field_serializer,
    field_validator,
    model_serializer,
    model_validator,
)

from .base import WireModel
from .resources import Resources
from .version import GO_ZERO_TIME


class NodeMembership(str, Enum):
    PENDING = "PENDING"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"


class NodeConnection(str, Enum):
    CONNECTED = "CONNECTED"
    DISCONNECTED = "DISCONNECTED"


class NodeScheduling(str, Enum):
    """Whether a node takes new work (bacedge addition: Bacalhau has no cordon or drain)."""

    ELIGIBLE = "ELIGIBLE"
    CORDONED = "CORDONED"  # no new work; what runs stays
    DRAINING = "DRAINING"  # no new work; service and daemon work moves, batch work finishes
    DRAINED = "DRAINED"  # drained: nothing of the fleet's runs here any more


class Inventory(WireModel):
    """What the machine is, beyond schedulable capacity (bacedge's addition)."""

    CPUModel: str = ""
    CPUCount: int = 0
    MemoryTotal: int = 0
    DiskTotal: int = 0
    DiskFree: int = 0
    GPUDriverVersion: str = ""
    Hostname: str = ""
    OS: str = ""
    Arch: str = ""
    Limits: dict[str, str] = Field(default_factory=dict)
    Images: list[str] = Field(default_factory=list)  # tags tasks can use without a pull


_Inventory = Inventory  # field names equal type names on the wire


# -- container image references ------------------------------------------------------------

DOCKER_HUB = "docker.io"


@dataclass(frozen=True)
class ImageRef:
    """A container image reference split as Docker reads it ("busybox" is
    docker.io/library/busybox:latest); `domain` stays empty for a short name, whose registry
    the node decides (Podman also finds a short name among local images of any registry)."""

    domain: str
    path: str
    tag: str
    digest: str = ""

    @classmethod
    def parse(cls, reference: str) -> ImageRef:
        ref = reference.strip()
        name, _, digest = ref.partition("@")
        slash = name.rfind("/")
        colon = name.rfind(":")
        tag = ""
        if colon > slash:
            name, tag = name[:colon], name[colon + 1 :]
        domain, sep, path = name.partition("/")
        if not sep or not ("." in domain or ":" in domain or domain == "localhost"):
            domain, path = "", name
        if not tag and not digest:
            tag = "latest"
        return cls(domain=domain, path=path, tag=tag, digest=digest)

    @property
    def registry(self) -> str:
        return self.domain or DOCKER_HUB

    @property
    def repository(self) -> str:
        """Registry and path, fully qualified ("docker.io/library/busybox")."""
        if self.registry != DOCKER_HUB or "/" in self.path:
            return f"{self.registry}/{self.path}"
        return f"{DOCKER_HUB}/library/{self.path}"

    def canonical(self) -> str:
        """The fully qualified name, as Podman lists images and pulls them."""
        name = f"{self.repository}:{self.tag}" if self.tag else self.repository
        return f"{name}@{self.digest}" if self.digest else name

    def matches(self, local: ImageRef) -> bool:
        """Whether a local image named `local` satisfies this reference."""
        if (self.digest or local.tag) != (local.digest if self.digest else self.tag):
            return False
        if self.domain:
            return self.repository == local.repository
        return local.path == self.path or local.repository == self.repository


def find_image(reference: str, images: Iterable[str]) -> str | None:
    """The first of `images` (local names) that `reference` selects, or None."""
    wanted = ImageRef.parse(reference)
    for image in images:
        if wanted.matches(ImageRef.parse(image)):
            return image
    return None


def registry_allowed(reference: str, allowed: Iterable[str]) -> bool:
    """Whether a node may pull `reference`: an entry is a registry ("ghcr.io"), a
    repository prefix ("ghcr.io/acme") or "*"."""
    name = ImageRef.parse(reference).canonical()
    for entry in allowed:
        entry = entry.strip().rstrip("/")
        if entry == "*" or (entry and (name == entry or name.startswith(entry + "/"))):
            return True
    return False


class StoreInfo(WireModel):
    """An S3 store the node holds (bacedge addition): its data does not have to move."""

    Endpoint: str = ""
    Backend: str = ""
    Buckets: list[str] = Field(default_factory=list)
    Alive: bool = False


class ComputeNodeInfo(WireModel):
    ExecutionEngines: list[str] = Field(default_factory=list)
    Publishers: list[str] = Field(default_factory=list)
    StorageSources: list[str] = Field(default_factory=list)
    MaxCapacity: Resources = Field(default_factory=Resources)
    AvailableCapacity: Resources = Field(default_factory=Resources)
    QueueCapacity: Resources = Field(default_factory=Resources)
    MaxJobRequirements: Resources = Field(default_factory=Resources)
    RunningExecutions: int = 0
    EnqueuedExecutions: int = 0
    Inventory: _Inventory = Field(default_factory=_Inventory)
    Stores: list[StoreInfo] = Field(default_factory=list)
    AllowedLocalPaths: list[str] = Field(default_factory=list)  # bacedge: for data locality


_ComputeNodeInfo = ComputeNodeInfo


PROTOCOL = "bacedge/v1"
"""What bacedge nodes speak over NATS (Bacalhau's own nodes list "bprotocol/v2", "ncl/v1")."""


class NodeInfo(WireModel):
    NodeID: str = ""
    NodeType: str = "Compute"  # Bacalhau's values: "Requester" or "Compute"
    Labels: dict[str, str] = Field(default_factory=dict)
    SupportedProtocols: list[str] = Field(default_factory=lambda: [PROTOCOL])
    ComputeNodeInfo: _ComputeNodeInfo = Field(default_factory=_ComputeNodeInfo)
    BacalhauVersion: dict[str, str] = Field(default_factory=dict)


class ConnectionState(WireModel):
    Status: NodeConnection = NodeConnection.DISCONNECTED
    LastHeartbeat: str = ""  # RFC 3339, as Bacalhau sends it
    ConnectedSince: str = ""
    DisconnectedSince: str = ""
    LastError: str = ""

    @field_validator("LastHeartbeat", "ConnectedSince", "DisconnectedSince", mode="before")
    @classmethod
    def _zero_time_is_unset(cls, value: Any) -> Any:
        return "" if value is None or value == GO_ZERO_TIME else value

    @field_serializer("LastHeartbeat", "ConnectedSince", "DisconnectedSince")
    def _unset_is_zero_time(self, value: str) -> str:
        """Bacalhau's times are Go `time.Time`s: a Go client cannot decode "" into one, and
        Bacalhau itself sends the zero time for "never"."""
        return value or GO_ZERO_TIME


_ConnectionState = ConnectionState


class SchedulingState(WireModel):
    """bacedge addition: `bacedge node cordon|uncordon|drain`."""

    Status: NodeScheduling = NodeScheduling.ELIGIBLE
    Message: str = ""
    Since: str = ""  # RFC 3339
    DrainDeadline: str = ""  # RFC 3339; empty: batch work on a draining node may finish
    # Set by the orchestrator, not an operator: a node that keeps reconnecting gets no new
    # work until then, whatever its Status ([orchestrator] flap_limit).
    BackOffUntil: str = ""  # RFC 3339
    BackOffReason: str = ""

    @property
    def word(self) -> str:
        """What `node list` adds to the connection (`CONNECTED,CORDONED`); "" when the
        node takes work as any Bacalhau node does."""
        if self.Status != NodeScheduling.ELIGIBLE:
            return self.Status.value
        return "BACKOFF" if self.BackOffUntil else ""


class NodeState(WireModel):
    Info: NodeInfo = Field(default_factory=NodeInfo)
    Membership: NodeMembership = NodeMembership.APPROVED
    ConnectionState: _ConnectionState = Field(default_factory=_ConnectionState)
    Scheduling: SchedulingState = Field(default_factory=SchedulingState)

    # No return annotation: pydantic would then describe the wire form as a bare object.
    @model_serializer(mode="wrap")
    def _eligible_left_out(self, handler: SerializerFunctionWrapHandler):  # type: ignore[no-untyped-def]
        """Bacalhau's exact shape, in its order: `Connection` (deprecated in Go but always
        sent, and what Bacalhau's web UI reads) repeats `ConnectionState.Status`; a node that
        takes work as any Bacalhau node does carries no `Scheduling`."""
        data = handler(self)
        state = data.get("ConnectionState")
        if isinstance(state, dict) and "Status" in state:
            data = {
                "Info": data.get("Info"),
                "Membership": data.get("Membership"),
                "Connection": state["Status"],
                **data,
            }
        if not self.Scheduling.word and not self.Scheduling.Message:
            data.pop("Scheduling", None)
        return data

    @model_validator(mode="before")
    @classmethod
    def _older_bacalhau_shapes(cls, data: Any) -> Any:
        """Nodes as older Bacalhau servers list them, read into today's shape.

        Up to 1.5 the connection is a word, `Connection: "CONNECTED"` (1.6 sends it too,
        beside `ConnectionState`); before that `{Info, Approval, Liveness}`; before node
        approval a list item is the NodeInfo itself, and the server lists only the nodes
        heard from lately (its node store forgets the others), so those are connected.
        """
        if not isinstance(data, dict):
            return data
        keys = {k.lower(): k for k in data if isinstance(k, str)}
        if "info" not in keys and "nodeid" in keys:
            return {
                "Info": data,
                "Membership": "APPROVED",
                "ConnectionState": {"Status": "CONNECTED"},
            }
        out = dict(data)
        if "membership" not in keys and "approval" in keys:
            out["Membership"] = data[keys["approval"]]
        word = next((data[keys[k]] for k in ("connection", "liveness") if k in keys), None)
        if "connectionstate" not in keys and isinstance(word, str):
            out["ConnectionState"] = {"Status": word}
        return out

    @property
    def node_id(self) -> str:
        return self.Info.NodeID

    @property
    def connected(self) -> bool:
        return self.ConnectionState.Status == NodeConnection.CONNECTED
