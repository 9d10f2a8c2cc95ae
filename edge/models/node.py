"""Nodes as the orchestrator sees them: info, membership, connection."""

from __future__ import annotations

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


_Inventory = Inventory  # field names equal type names on the wire


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
