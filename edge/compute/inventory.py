"""What this machine offers: CPU, memory and disk from psutil; GPUs from NVML.

NVML is optional: no library, no driver or no GPU all mean zero GPUs, never a crash.
"""

from __future__ import annotations

import contextlib
import logging
import os
import platform
import socket
from pathlib import Path
from typing import Any

import psutil

from edge.models import MIB, GPUInfo, Inventory, Resources

log = logging.getLogger("bacedge.inventory")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "processor\t: arm")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def gpus() -> tuple[list[GPUInfo], str]:
    """Every NVIDIA GPU NVML sees, and the driver version; ([], "") without NVML.

    NVML counts memory in bytes; the wire model, like Bacalhau, in MiB: converted here.
    """
    try:
        import pynvml
    except ImportError:
        return [], ""
    try:
        pynvml.nvmlInit()
    except Exception as exc:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...
        log.debug("NVML unavailable", extra={"error": str(exc)})
        return [], ""
    try:
        driver = _text(pynvml.nvmlSystemGetDriverVersion())
        found = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            utilization: int | None
            try:
                utilization = int(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu)
            except Exception:  # not supported on some boards (e.g. MIG slices): unknown
                utilization = None
            try:
                pci = _text(pynvml.nvmlDeviceGetPciInfo(handle).busId)
            except Exception:
                pci = ""
            found.append(
                GPUInfo(
                    Index=index,
                    Name=_text(pynvml.nvmlDeviceGetName(handle)),
                    Vendor="NVIDIA",
                    Memory=int(memory.total) // MIB,
                    MemoryUsed=int(memory.used) // MIB,
                    Utilization=utilization,
                    PCIAddress=pci,
                    UUID=_text(pynvml.nvmlDeviceGetUUID(handle)),
                    DriverVersion=driver,
                )
            )
        return found, driver
    except Exception as exc:
        log.warning("NVML query failed; reporting no GPUs", extra={"error": str(exc)})
        return [], ""
    finally:
        with contextlib.suppress(Exception):
            pynvml.nvmlShutdown()


def machine(data_dir: Path) -> tuple[Resources, Inventory]:
    """Total capacity and the descriptive inventory of this machine."""
    data_dir.mkdir(parents=True, exist_ok=True)
    cpus = psutil.cpu_count(logical=True) or os.cpu_count() or 1
    memory = psutil.virtual_memory().total
    disk = psutil.disk_usage(str(data_dir))
    gpu_list, driver = gpus()
    capacity = Resources(
        CPU=float(cpus), Memory=int(memory), Disk=int(disk.free), GPU=len(gpu_list), GPUs=gpu_list
    )
    inventory = Inventory(
        CPUModel=cpu_model(),
        CPUCount=cpus,
        MemoryTotal=int(memory),
        DiskTotal=int(disk.total),
        DiskFree=int(disk.free),
        GPUDriverVersion=driver,
        Hostname=socket.gethostname(),
        OS=f"{platform.system()} {platform.release()}",
        Arch=platform.machine(),
    )
    return capacity, inventory
