from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import psutil
import pytest

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
        totals = [
            pynvml.nvmlDeviceGetMemoryInfo(pynvml.nvmlDeviceGetHandleByIndex(i)).total
            for i in range(count)
        ]
        pynvml.nvmlShutdown()
        assert len(found) == count and all(g.UUID and g.Memory > 0 for g in found)
        assert [g.Memory for g in found] == [total // 2**20 for total in totals]  # MiB
        assert all(g.MemoryUsed is not None and g.MemoryUsed <= g.Memory for g in found)


def test_gpu_memory_goes_on_the_wire_in_mib(monkeypatch: pytest.MonkeyPatch) -> None:
    """NVML counts bytes; Bacalhau's GPU.Memory is MiB. A stand-in NVML (this machine may
    have no GPU; the test above checks a real one) reports a T4 and a board whose
    utilization NVML cannot read, which stays unknown rather than 0%."""
    mib = 2**20

    class Unsupported(Exception):
        pass

    def utilization(handle: int) -> Any:
        if handle == 1:
            raise Unsupported("NVML_ERROR_NOT_SUPPORTED")
        return types.SimpleNamespace(gpu=37)

    fake = types.SimpleNamespace(
        nvmlInit=lambda: None,
        nvmlShutdown=lambda: None,
        nvmlSystemGetDriverVersion=lambda: b"550.54.15",
        nvmlDeviceGetCount=lambda: 2,
        nvmlDeviceGetHandleByIndex=lambda index: index,
        nvmlDeviceGetMemoryInfo=lambda handle: types.SimpleNamespace(
            total=15360 * mib, used=1024 * mib + 123
        ),
        nvmlDeviceGetUtilizationRates=utilization,
        nvmlDeviceGetPciInfo=lambda handle: types.SimpleNamespace(busId=b"00000000:00:1E.0"),
        nvmlDeviceGetName=lambda handle: b"Tesla T4",
        nvmlDeviceGetUUID=lambda handle: f"GPU-{handle}",
    )
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    found, driver = gpus()
    assert driver == "550.54.15"
    assert [(g.Name, g.Memory, g.MemoryUsed, g.Utilization) for g in found] == [
        ("Tesla T4", 15360, 1024, 37),
        ("Tesla T4", 15360, 1024, None),
    ]
    assert "Utilization" not in found[1].wire()


def test_node_id_is_stable_across_restarts(tmp_path: Path) -> None:
    first = stable_node_id(tmp_path)
    assert first.startswith("n-")
    assert stable_node_id(tmp_path) == first
    assert (tmp_path / "node_id").read_text().strip() == first
