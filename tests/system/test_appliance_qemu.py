"""The raw disk image powered on as a machine would be: UEFI (OVMF), no network, no
keyboard, a provisioning file written to its ESP as an operator would. Under qemu TCG (no
KVM on test machines) this takes minutes; the nspawn tests in test_appliance.py cover the
same system in detail."""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from .conftest import Build
from .machine import QemuDisk

HEALTH = re.compile(r"bacedge-appliance: (ready|degraded) node=(\S+)[^\r\n]*")
TCG_BOOT_BUDGET_S = 1800  # power-on to the health line took 6-7 min on a 2-core machine


def test_raw_image_boots_to_the_ready_line_and_grows_its_root(
    appliance: Build, tmp_path_factory: pytest.TempPathFactory
) -> None:
    flashed = appliance.path(".raw").stat().st_size
    disk = QemuDisk(appliance.path(".raw"), tmp_path_factory.mktemp("qemu"), "appliance")
    disk.power_on(provision='[node]\nname = "qemu-appliance"\n')
    try:
        found = disk.wait_for(HEALTH, TCG_BOOT_BUDGET_S)
    finally:
        disk.power_off()
    # The ESP was mounted and its file read (a slow firmware or disk must not mean defaults).
    console = disk.serial.read_text(errors="replace")
    assert "bacedge-appliance: provisioned from /boot/efi/bacedge/provision.toml" in console, (
        console[-3000:]
    )
    assert found.group(0) == (
        f"bacedge-appliance: ready node={found.group(2)} wasm=ok docker=ok store=ok"
    ), found.group(0)
    # The disk is 1 GiB larger than the image: the first boot grew the root partition.
    table = subprocess.run(
        ["sfdisk", "--json", str(disk.disk)], capture_output=True, text=True, check=True
    )
    parts = json.loads(table.stdout)["partitiontable"]["partitions"]
    root = next(p for p in parts if p["name"] == "root")
    assert (root["start"] + root["size"]) * 512 > flashed, (root, flashed)
