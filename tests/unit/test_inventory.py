from __future__ import annotations

from pathlib import Path

import psutil

from edge.compute.agent import stable_node_id
from edge.compute.inventory import gpus, machine


def test_machine_inventory_matches_psutil(tmp_path: Path) -> None:
    capacity, inventory = machine(tmp_path)
    assert capacity.CPU == float(psutil.cpu_count(logical=True))
    assert capacity.Memory == psutil.virtual_memory().total
    assert 0 < capacity.Disk <= psutil.disk_usage(str(tmp_path)).total
    assert inventory.CPUCount == psutil.cpu_count(logical=True)
    assert inventory.MemoryTotal == capacity.Memory
    assert inventory.CPUModel and inventory.Hostname and inventory.Arch


def test_no_nvml_means_zero_gpus_not_a_crash() -> None:
    found, driver = gpus()
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:  # no driver on this machine: the documented "0 GPUs" path
        assert found == [] and driver == ""
    else:  # a machine with a GPU: every device is reported with its identity
        count = pynvml.nvmlDeviceGetCount()
        pynvml.nvmlShutdown()
        assert len(found) == count and all(g.UUID and g.Memory > 0 for g in found)


def test_node_id_is_stable_across_restarts(tmp_path: Path) -> None:
    first = stable_node_id(tmp_path)
    assert first.startswith("n-")
    assert stable_node_id(tmp_path) == first
    assert (tmp_path / "node_id").read_text().strip() == first
