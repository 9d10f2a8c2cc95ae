"""Resource strings ("500m", "0.5", "512Mb", "1Gb", "2Gi") to numbers.

Parsing follows Bacalhau (go-humanize): `Mb`/`MB`/`M` are decimal, `Mi`/`MiB` binary.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field, SerializerFunctionWrapHandler, field_validator, model_serializer

from .base import WireModel

_SIZE_UNITS: dict[str, int] = {
    "": 1,
    "b": 1,
    "k": 10**3,
    "kb": 10**3,
    "ki": 2**10,
    "kib": 2**10,
    "m": 10**6,
    "mb": 10**6,
    "mi": 2**20,
    "mib": 2**20,
    "g": 10**9,
    "gb": 10**9,
    "gi": 2**30,
    "gib": 2**30,
    "t": 10**12,
    "tb": 10**12,
    "ti": 2**40,
    "tib": 2**40,
    "p": 10**15,
    "pb": 10**15,
    "pi": 2**50,
    "pib": 2**50,
}
_SIZE_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*$")
_CPU_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(m?)\s*$")


class ResourceError(ValueError):
    """A resource string that cannot be read; the message says what is accepted."""


def parse_cpu(text: str | float | int | None) -> float:
    """CPU cores from "500m", "0.5", "2" or a number."""
    if text is None or text == "":
        return 0.0
    if isinstance(text, (int, float)):
        value = float(text)
    else:
        match = _CPU_RE.match(str(text))
        if not match:
            raise ResourceError(
                f"invalid CPU {text!r}: use cores ('0.5', '2') or millicores ('500m')"
            )
        value = float(match.group(1)) / (1000 if match.group(2) else 1)
    if value < 0:
        raise ResourceError(f"invalid CPU {text!r}: must not be negative")
    return value


def parse_bytes(text: str | int | float | None, what: str = "size") -> int:
    """Bytes from "512Mb", "1Gb", "2Gi", "1024" or a number."""
    if text is None or text == "":
        return 0
    if isinstance(text, (int, float)):
        if text < 0:
            raise ResourceError(f"invalid {what} {text!r}: must not be negative")
        return int(text)
    match = _SIZE_RE.match(str(text))
    unit = match.group(2).lower() if match else ""
    if not match or unit not in _SIZE_UNITS:
        raise ResourceError(
            f"invalid {what} {text!r}: use a number with a unit such as '512Mb', '1Gb' or '2Gi'"
        )
    return int(float(match.group(1)) * _SIZE_UNITS[unit])


def parse_gpu(text: str | int | None) -> int:
    if text is None or text == "":
        return 0
    try:
        value = int(str(text).strip())
    except ValueError:
        raise ResourceError(f"invalid GPU {text!r}: use a whole number such as '1'") from None
    if value < 0:
        raise ResourceError(f"invalid GPU {text!r}: must not be negative")
    return value


def format_bytes(value: int) -> str:
    """Human size for tables ("1.5 GiB")."""
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} PiB"


MIB = 2**20


class GPUInfo(WireModel):
    """One GPU as Bacalhau describes it: `Memory` is the total in MiB, as Bacalhau sends it.

    bacedge adds what NVML measures now, `MemoryUsed` (MiB) and `Utilization` (percent).
    They are None when not measured (a Bacalhau server never sends them) and then left out
    of the wire form, so nobody reads an unmeasured GPU as idle.
    """

    Index: int = 0
    Name: str = ""
    Vendor: str = "NVIDIA"
    Memory: int = 0  # total MiB
    MemoryUsed: int | None = None  # MiB; bacedge's addition
    Utilization: int | None = None  # percent; bacedge's addition
    PCIAddress: str = ""
    UUID: str = ""
    DriverVersion: str = ""

    # No return annotation on purpose: with one, pydantic would describe the serialised
    # form by it (a bare object) in the OpenAPI document instead of by these fields.
    @model_serializer(mode="wrap")
    def _unmeasured_left_out(self, handler: SerializerFunctionWrapHandler):  # type: ignore[no-untyped-def]
        data = handler(self)
        for key in ("MemoryUsed", "Utilization"):
            if data.get(key, 0) is None:
                del data[key]
        return data

    @property
    def memory_bytes(self) -> int:
        return self.Memory * MIB

    @property
    def memory_used_bytes(self) -> int | None:
        return None if self.MemoryUsed is None else self.MemoryUsed * MIB


class Resources(WireModel):
    """Parsed resource amounts: CPU in cores, Memory and Disk in bytes."""

    CPU: float = 0.0
    Memory: int = 0
    Disk: int = 0
    GPU: int = 0
    GPUs: list[GPUInfo] = Field(default_factory=list)

    def fits_in(self, other: Resources) -> bool:
        return (
            self.CPU <= other.CPU + 1e-9
            and self.Memory <= other.Memory
            and self.Disk <= other.Disk
            and self.GPU <= other.GPU
        )

    def add(self, other: Resources) -> Resources:
        return Resources(
            CPU=self.CPU + other.CPU,
            Memory=self.Memory + other.Memory,
            Disk=self.Disk + other.Disk,
            GPU=self.GPU + other.GPU,
        )

    def sub(self, other: Resources) -> Resources:
        return Resources(
            CPU=max(0.0, self.CPU - other.CPU),
            Memory=max(0, self.Memory - other.Memory),
            Disk=max(0, self.Disk - other.Disk),
            GPU=max(0, self.GPU - other.GPU),
            GPUs=self.GPUs,
        )


class ResourcesConfig(WireModel):
    """Resources as a job spec writes them: strings such as "500m" and "512Mb"."""

    CPU: str = ""
    Memory: str = ""
    Disk: str = ""
    GPU: str = ""

    @field_validator("CPU", "Memory", "Disk", "GPU", mode="before")
    @classmethod
    def _numbers_as_text(cls, value: Any) -> Any:
        return "" if value is None else str(value) if isinstance(value, (int, float)) else value

    def parse(self) -> Resources:
        return Resources(
            CPU=parse_cpu(self.CPU),
            Memory=parse_bytes(self.Memory, "memory"),
            Disk=parse_bytes(self.Disk, "disk"),
            GPU=parse_gpu(self.GPU),
        )
