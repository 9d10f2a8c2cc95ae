"""Simulated compute nodes: the real `ComputeNode`, many to a process, for scale tests.

`bacedge devstack --simulated` runs them. Each speaks the real NATS protocol (handshake,
heartbeats, offers and bids, updates sent from its ledger's outbox) through the agent's
own code; only what a simulation cannot have differs: the noop engine only, an inventory
given instead of read from psutil and NVML per node, a deterministic ID per index
(`sim-00001`) with the labels `sim=true` and `name=<ID>`, one NATS connection and one
ledger file shared by the process's nodes (a file each does not scale: see
`edge/compute/ledger.py`), no result server of its own (results are relayed over NATS)
and no local S3 store to watch.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass
from pathlib import Path

from edge.config import Config
from edge.models import Inventory, Resources
from edge.transport.client import Client

from .agent import ComputeNode
from .ledger import Ledger, LedgerDB

SIM_ENGINES = ["noop"]


def sim_node_id(index: int) -> str:
    """The ID of the simulated node with this index (from 1): the same at every start."""
    return f"sim-{index:05d}"


@dataclass(frozen=True)
class SimMachine:
    """What every simulated node reports as its machine (`[compute] cpu`, `memory` and
    `disk` still override it, as on a real node)."""

    cpu: float = 4.0
    memory: int = 8 << 30
    disk: int = 100 << 30


class SimulatedNode(ComputeNode):
    serves_results = False
    watches_stores = False

    def __init__(
        self,
        config: Config,
        index: int,
        servers: list[str],
        token: str | None,
        nc: Client,
        ledger: LedgerDB,
        root: Path,
        machine: SimMachine | None = None,
    ) -> None:
        if list(config.compute.engines) != SIM_ENGINES:
            raise ValueError("simulated nodes run the noop engine only")
        node_id = sim_node_id(index)
        super().__init__(
            config,
            servers,
            token,
            nc,
            node_id=node_id,
            root=root / node_id,
            ledger=Ledger(ledger, node_id),
        )
        self.machine = machine or SimMachine()

    async def _machine(self) -> tuple[Resources, Inventory]:
        m = self.machine
        total = Resources(CPU=m.cpu, Memory=m.memory, Disk=m.disk)
        return total, Inventory(
            CPUModel="simulated",
            CPUCount=max(1, int(m.cpu)),
            MemoryTotal=m.memory,
            DiskTotal=m.disk,
            DiskFree=m.disk,
            Hostname=self.node_id,
            OS="simulated",
            Arch=platform.machine(),
        )

    def _default_labels(self, arch: str) -> dict[str, str]:
        return {**super()._default_labels(arch), "name": self.node_id, "sim": "true"}
