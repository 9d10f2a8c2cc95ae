"""Service figures: exposure scores, package sizes, start -> READY, compute RSS idle.

Run as root: .venv/bin/python bench/bench_service.py [--rootfs DIR]
Builds the .deb (and bundles), debootstraps Debian 12 unless --rootfs names one,
installs the .deb offline, boots it under systemd-nspawn and reads systemd's clocks.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.system.machine import Machine, chroot, copy_tree, debootstrap  # noqa: E402

UNITS = ["bacedge-orchestrator.service", "bacedge-compute.service"]


def exposure(unit: str) -> str:
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", str(ROOT / "systemd" / unit)],
        capture_output=True,
        text=True,
    )
    match = re.search(r"Overall exposure level for \S+: ([0-9.]+ \w+)", result.stdout)
    return match.group(1) if match else "?"


def build(script: str, *args: str) -> Path:
    subprocess.run(
        ["bash", str(ROOT / "packaging" / script), *args], check=True, capture_output=True
    )
    pattern = "bacedge_*.deb" if "deb" in script else f"bacedge-bundle-*-{args[-1]}.tar.gz"
    return max((ROOT / "dist").glob(pattern), key=lambda p: p.stat().st_mtime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rootfs", type=Path, help="an existing Debian 12 rootfs to copy")
    args = parser.parse_args()
    print("== exposure (systemd-analyze security --offline=true)")
    for unit in UNITS:
        print(f"  {unit:32s} {exposure(unit)}")
    print("== package sizes")
    deb = build("build-deb.sh")
    print(f"  {deb.name:40s} {deb.stat().st_size / 2**20:6.1f} MiB")
    for arch in ("x86_64", "aarch64"):
        bundle = build("build-bundle.sh", "--arch", arch)
        print(f"  {bundle.name:40s} {bundle.stat().st_size / 2**20:6.1f} MiB")
    with tempfile.TemporaryDirectory(prefix="bench-service-") as tmp:
        root = Path(tmp) / "root"
        root.mkdir()
        if args.rootfs:
            copy_tree(args.rootfs, root)
        else:
            debootstrap(root)
        (root / "root" / deb.name).write_bytes(deb.read_bytes())
        chroot(root, "dpkg", "-i", f"/root/{deb.name}")
        machine = Machine(root, "bacedge-bench", Path(tmp) / "console.log")
        machine.boot()
        try:
            machine.run("systemctl", "enable", "--now", *UNITS, timeout=120)
            print("== systemctl start -> READY=1 (systemd's monotonic clock)")
            for unit in UNITS:
                machine.run("systemctl", "restart", unit, timeout=60)
                show = machine.run(
                    "systemctl",
                    "show",
                    "-p",
                    "InactiveExitTimestampMonotonic",
                    "-p",
                    "ActiveEnterTimestampMonotonic",
                    unit,
                ).stdout
                values = dict(line.split("=", 1) for line in show.split())
                ready = (
                    int(values["ActiveEnterTimestampMonotonic"])
                    - int(values["InactiveExitTimestampMonotonic"])
                ) / 1000
                print(f"  {unit:32s} {ready:7.0f} ms")
            time.sleep(5)
            pid = machine.run("systemctl", "show", "-p", "MainPID", "--value", UNITS[1]).stdout
            rss = int(machine.run("ps", "-o", "rss=", "-p", pid.strip()).stdout) / 1024
            print(f"== compute service RSS, idle: {rss:.0f} MiB")
        finally:
            machine.poweroff()


if __name__ == "__main__":
    main()
