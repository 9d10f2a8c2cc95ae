"""Nodes as the orchestrator sees them: info, membership, connection."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

from pydantic import Field

from .base import WireModel
from .resources import Resources


class NodeMembership(str, Enum):
    PENDING = "PENDING"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"


class NodeConnection(str, Enum):
    CONNECTED = "CONNECTED"
    DISCONNECTED = "DISCONNECTED"


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


_ComputeNodeInfo = ComputeNodeInfo


class NodeInfo(WireModel):
    NodeID: str = ""
    NodeType: str = "Compute"
    Labels: dict[str, str] = Field(default_factory=dict)
    ComputeNodeInfo: _ComputeNodeInfo = Field(default_factory=_ComputeNodeInfo)
    BacalhauVersion: dict[str, str] = Field(default_factory=dict)


class ConnectionState(WireModel):
    Status: NodeConnection = NodeConnection.DISCONNECTED
    LastHeartbeat: str = ""  # RFC 3339, as Bacalhau sends it
    ConnectedSince: str = ""
    DisconnectedSince: str = ""
    LastError: str = ""


_ConnectionState = ConnectionState


class NodeState(WireModel):
    Info: NodeInfo = Field(default_factory=NodeInfo)
    Membership: NodeMembership = NodeMembership.APPROVED
    ConnectionState: _ConnectionState = Field(default_factory=_ConnectionState)

    @property
    def node_id(self) -> str:
        return self.Info.NodeID

    @property
    def connected(self) -> bool:
        return self.ConnectionState.Status == NodeConnection.CONNECTED
