"""Figures for an appliance image built by images/build.sh.

    python -m bench.appliance DIST_DIR [--qemu] [--qemu-copies 2]

Prints: image sizes (raw, on disk, compressed), and from a boot of the rootfs under
systemd-nspawn with no network: time to the health line, first job latency after boot (docker
and wasm, end to end through the CLI), RSS of every bacedge process and of the store's
server idle. With --qemu: power-on to the ready line of the raw image under qemu TCG with
OVMF (`-nic none`, serial console), and with --qemu-copies 2 that two copies are two nodes.
Run as root on a machine with the tools of scripts/install.sh.
"""

from __future__ import annotations

import argparse
import re
import shlex
import subprocess
import tempfile
import time
from pathlib import Path

from tests.system.machine import Machine, QemuDisk

LINE = re.compile(r"bacedge-appliance: (ready|degraded) node=(\S+).*")


def _mb(n: int) -> str:
    return f"{n / 1048576:.0f} MiB"


def sizes(dist: Path) -> Path:
    raw = next(dist.glob("*.raw"))
    tarball = next(dist.glob("*.rootfs.tar.zst"))
    used = int(
        subprocess.run(["du", "-B1", str(raw)], capture_output=True, text=True).stdout.split()[0]
    )
    print(f"raw image:            {_mb(raw.stat().st_size)} ({_mb(used)} allocated)")
    print(f"rootfs tar.zst:       {_mb(tarball.stat().st_size)}")
    zst = subprocess.run(
        f"zstd -q -T0 -10 -c {shlex.quote(str(raw))} | wc -c",
        shell=True,
        capture_output=True,
        text=True,
    )
    print(f"raw image, zstd -10:  {_mb(int(zst.stdout))}")
    return tarball


def nspawn(tarball: Path, work: Path) -> None:
    root = work / "root"
    root.mkdir()
    subprocess.run(["tar", "--zstd", "-xpf", str(tarball), "-C", str(root)], check=True)
    box = Machine(root, "bacedge-bench", work / "console.log")
    start = time.monotonic()
    try:
        box.boot(timeout=300)
        booted = time.monotonic() - start
        line = box.health_line(600)
        ready = time.monotonic() - start
        print(f"nspawn boot:          system up {booted:.1f} s, health line {ready:.1f} s:", line)

        def cli(*args: str) -> float:
            line = ". /etc/profile.d/bacedge.sh; exec bacedge " + shlex.join(args)
            t0 = time.monotonic()
            box.run("sh", "-c", line, timeout=300)
            return time.monotonic() - t0

        docker = cli("docker", "run", "localhost/busybox:latest", "--", "echo", "hi")
        wasm = cli("wasm", "run", "/usr/share/bacedge/selftest/hello.wasm", "--", "hi")
        print(
            f"job after boot:       docker {docker:.2f} s, wasm {wasm:.2f} s",
            "(submit to output, through the CLI)",
        )
        time.sleep(20)  # idle
        ps = box.run("ps", "-eo", "rss=,args=").stdout.splitlines()
        total = 0
        for row in ps:
            rss, args = row.strip().split(None, 1)
            if "bacedge" in args or "weed" in args or "nats-server" in args:
                kind = next(
                    (
                        k
                        for k in (
                            "--store",
                            "--orchestrator",
                            "--compute",
                            "weed",
                            "nats-server",
                            "health",
                        )
                        if k in args
                    ),
                    args[:40],
                )
                if "bin/podman" in args or "conmon" in args:
                    continue
                total += int(rss)
                print(f"  RSS {int(rss) / 1024:6.0f} MiB  {kind}")
        print(f"RSS idle, all:        {total / 1024:.0f} MiB")
    finally:
        box.poweroff()


def qemu(raw: Path, work: Path, copies: int) -> None:
    nodes = []
    for n in range(copies):
        disk = QemuDisk(raw, work, f"copy{n}")
        start = time.monotonic()
        disk.power_on()
        try:
            found = disk.wait_for(LINE, 1800)
            print(
                f"qemu TCG copy {n}: power-on to health line {time.monotonic() - start:.0f} s:",
                found.group(0),
            )
            nodes.append(found.group(2))
        finally:
            disk.power_off()
    if copies > 1:
        print(f"distinct nodes:       {len(set(nodes)) == len(nodes)} ({', '.join(nodes)})")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("dist", type=Path)
    parser.add_argument("--qemu", action="store_true")
    parser.add_argument("--qemu-copies", type=int, default=1)
    parser.add_argument("--no-nspawn", action="store_true")
    args = parser.parse_args()
    tarball = sizes(args.dist)
    with tempfile.TemporaryDirectory(dir="/var/tmp") as tmp:
        if not args.no_nspawn:
            (Path(tmp) / "n").mkdir()
            nspawn(tarball, Path(tmp) / "n")
        if args.qemu:
            (Path(tmp) / "q").mkdir()
            qemu(next(args.dist.glob("*.raw")), Path(tmp) / "q", args.qemu_copies)


if __name__ == "__main__":
    main()
