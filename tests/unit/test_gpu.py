"""GPUs reserved for an execution, handed to its container: CDI names or device nodes."""

from __future__ import annotations

import json
from pathlib import Path

from edge.compute.runner import reserved_gpus
from edge.executors.gpu import cdi_device_names, gpu_devices, visible_devices
from edge.models import AllocatedResources, Execution, GPUInfo, Resources

T4 = [GPUInfo(Index=0, UUID="GPU-aaaa"), GPUInfo(Index=1, UUID="GPU-bbbb")]


def test_cdi_names_when_the_nvidia_spec_declares_the_gpus(tmp_path: Path) -> None:
    (tmp_path / "nvidia.yaml").write_text(
        "cdiVersion: 0.5.0\nkind: nvidia.com/gpu\n"
        "devices:\n  - name: GPU-aaaa\n  - name: GPU-bbbb\n  - name: '0'\n  - name: all\n"
    )
    (tmp_path / "other.json").write_text(
        json.dumps({"kind": "vendor.com/x", "devices": [{"name": "GPU-cccc"}]})
    )
    (tmp_path / "broken.yaml").write_text("kind: [")
    assert cdi_device_names(dirs=[tmp_path, tmp_path / "absent"]) == {
        "GPU-aaaa",
        "GPU-bbbb",
        "0",
        "all",
    }
    assert gpu_devices(T4[1:], dirs=[tmp_path]) == ["nvidia.com/gpu=GPU-bbbb"]
    by_index = [GPUInfo(Index=0)]
    assert gpu_devices(by_index, dirs=[tmp_path]) == ["nvidia.com/gpu=0"]


def test_device_nodes_that_exist_when_no_cdi_spec_names_them(tmp_path: Path) -> None:
    dev = tmp_path / "dev"
    dev.mkdir()
    for name in ("nvidia1", "nvidiactl", "nvidia-uvm"):
        (dev / name).touch()
    devices = gpu_devices(T4, dirs=[tmp_path / "no-cdi"], dev=dev)
    assert devices == [f"{dev}/{n}:{dev}/{n}:rwm" for n in ("nvidia1", "nvidiactl", "nvidia-uvm")]
    assert gpu_devices([], dirs=[tmp_path]) == []


def test_the_task_sees_the_gpus_its_execution_holds() -> None:
    held = Resources(GPU=1, GPUs=T4[1:])
    execution = Execution(AllocatedResources=AllocatedResources(Tasks={"main": held}))
    assert reserved_gpus(execution) == T4[1:]
    assert visible_devices(T4) == "GPU-aaaa,GPU-bbbb"
    assert visible_devices([GPUInfo(Index=3)]) == "3"
    # The wire form keeps the reserved GPUs: `job describe` and API clients see them.
    wire = execution.wire()["AllocatedResources"]["Tasks"]["main"]
    assert [g["UUID"] for g in wire["GPUs"]] == ["GPU-bbbb"]
