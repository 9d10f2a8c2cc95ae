"""How a container gets the GPUs the orchestrator reserved for its execution.

Through CDI (`nvidia.com/gpu=<UUID>`) when the host's NVIDIA CDI spec names them (what
`nvidia-ctk cdi generate` writes to /etc/cdi or /var/run/cdi), else through the device
nodes (`/dev/nvidiaN` plus the control nodes that exist). The task also sees them in
`NVIDIA_VISIBLE_DEVICES` (set by the runner for every engine).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from edge.models import GPUInfo

log = logging.getLogger("bacedge.compute")

CDI_DIRS = (Path("/etc/cdi"), Path("/var/run/cdi"))
NVIDIA_KIND = "nvidia.com/gpu"
CONTROL_NODES = (
    "/dev/nvidiactl",
    "/dev/nvidia-uvm",
    "/dev/nvidia-uvm-tools",
    "/dev/nvidia-modeset",
)


def gpu_name(gpu: GPUInfo) -> str:
    """How NVIDIA names a GPU to containers: its UUID, or its index when NVML gave none."""
    return gpu.UUID or str(gpu.Index)


def visible_devices(gpus: Sequence[GPUInfo]) -> str:
    """`NVIDIA_VISIBLE_DEVICES` for these GPUs."""
    return ",".join(gpu_name(g) for g in gpus)


def _read_spec(path: Path) -> Any:
    """A CDI spec file's data; PyYAML is loaded only when a node has YAML specs."""
    text = path.read_text()
    if path.suffix == ".json":
        return json.loads(text)
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(str(exc)) from None


def cdi_device_names(kind: str = NVIDIA_KIND, dirs: Iterable[Path] = CDI_DIRS) -> set[str]:
    """The device names of `kind` that the CDI specs in `dirs` declare."""
    names: set[str] = set()
    for directory in dirs:
        try:
            files = sorted(p for p in directory.iterdir() if p.suffix in (".yaml", ".yml", ".json"))
        except OSError:
            continue
        for path in files:
            try:
                spec = _read_spec(path)
            except (OSError, ValueError) as exc:
                log.warning("unreadable CDI spec", extra={"path": str(path), "error": str(exc)})
                continue
            if not isinstance(spec, dict) or spec.get("kind") != kind:
                continue
            for device in spec.get("devices") or []:
                if isinstance(device, dict) and device.get("name"):
                    names.add(str(device["name"]))
    return names


def gpu_devices(
    gpus: Sequence[GPUInfo], dirs: Iterable[Path] = CDI_DIRS, dev: Path = Path("/dev")
) -> list[str]:
    """Podman `devices` for these GPUs: CDI names when the NVIDIA CDI spec names every one
    (by UUID, or by index), else `host:container:rwm` device nodes that exist."""
    if not gpus:
        return []
    declared = cdi_device_names(NVIDIA_KIND, dirs)
    cdi: list[str] = []
    for gpu in gpus:
        name = next((n for n in (gpu.UUID, str(gpu.Index)) if n and n in declared), None)
        if name is None:
            break
        cdi.append(f"{NVIDIA_KIND}={name}")
    else:
        return cdi
    nodes = [str(dev / f"nvidia{g.Index}") for g in gpus]
    nodes += [str(dev / Path(p).name) for p in CONTROL_NODES]
    return [f"{p}:{p}:rwm" for p in nodes if Path(p).exists()]
