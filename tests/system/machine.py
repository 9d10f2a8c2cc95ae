"""A Debian rootfs booted under systemd-nspawn, driven from outside with nsenter."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from tests.podman_image import TAG

REPO = Path(__file__).resolve().parents[2]
PACKAGES = [
    "systemd",
    "systemd-sysv",
    "dbus",
    "dbus-user-session",
    "python3",
    "podman",
    "containernetworking-plugins",
    "runc",
    "uidmap",
    "slirp4netns",
    "fuse-overlayfs",
    "busybox-static",
    "iproute2",
    "procps",
    "curl",
    "ca-certificates",
    "passwd",
    "adduser",
]


def debian_mirror() -> str:
    """The mirror this machine's apt uses (the only one it can reach)."""
    for source in sorted(Path("/etc/apt/sources.list.d").glob("*.sources")):
        for line in source.read_text().splitlines():
            if line.startswith("URIs:") and "debian" in line and "security" not in line:
                return line.split()[1]
    for line in Path("/etc/apt/sources.list").read_text().splitlines():
        parts = line.split()
        if parts[:1] == ["deb"] and "security" not in line:
            return parts[1]
    raise RuntimeError("no Debian mirror configured in /etc/apt")


def debootstrap(root: Path, suite: str = "bookworm") -> None:
    subprocess.run(
        [
            "debootstrap",
            "--variant=minbase",
            f"--include={','.join(PACKAGES)}",
            suite,
            str(root),
            debian_mirror(),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def copy_tree(source: Path, target: Path) -> None:
    subprocess.run(["cp", "-a", "--reflink=auto", f"{source}/.", str(target)], check=True)


def chroot(
    root: Path, *command: str, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run in the rootfs without network (`unshare -n`): installs must be offline."""
    return subprocess.run(
        ["unshare", "--net", "chroot", str(root), *command],
        capture_output=True,
        text=True,
        check=check,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", **(env or {})},
    )


def ensure_nspawn_runtime() -> None:
    """systemd-nspawn wants /run/systemd/nspawn, which needs a tmpfs when systemd is not PID 1."""
    path = Path("/run/systemd/nspawn")
    path.mkdir(parents=True, exist_ok=True)
    mounts = Path("/proc/mounts").read_text()
    if f" {path} " not in mounts:
        subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(path)], check=True)


@dataclass
class Machine:
    root: Path
    name: str
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    leader: int = 0
    history: list[str] = field(default_factory=list)

    def boot(self, timeout: float = 120.0) -> None:
        ensure_nspawn_runtime()
        handle = self.log.open("wb")
        self.proc = subprocess.Popen(
            [
                "systemd-nspawn",
                "-D",
                str(self.root),
                "--boot",
                "--register=no",
                "--keep-unit",
                "--private-network",
                # nspawn filters keyctl, which runc needs for each container's session
                # keyring; a real edge host allows it.
                "--system-call-filter=@keyring",
                f"--machine={self.name}",
                "--console=pipe",
            ],
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.leader:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nspawn exited: {self.log.read_text()[-2000:]}")
            for child in psutil.Process(self.proc.pid).children(recursive=True):
                if child.name() == "systemd":
                    self.leader = child.pid
                    break
            time.sleep(0.2)
        state = ""
        while not state and time.monotonic() < deadline:
            # Empty until the container's manager answers on its bus (a busy host is slow).
            state = self.run(
                "systemctl", "is-system-running", "--wait", check=False, timeout=timeout
            ).stdout.strip()
            if not state:
                time.sleep(0.5)
        if state not in ("running", "degraded"):
            raise RuntimeError(f"system did not come up: {state}")

    def run(
        self, *command: str, check: bool = True, timeout: float = 120.0, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        assert self.leader, "not booted"
        self.history.append(" ".join(command))
        result = subprocess.run(
            [
                "nsenter",
                "-t",
                str(self.leader),
                "-a",
                "env",
                "-i",
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "HOME=/root",
                *command,
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"{' '.join(command)} -> {result.returncode}\n{result.stdout}\n{result.stderr}"
            )
        return result

    def docker_run(self, *command: str) -> subprocess.CompletedProcess[str]:
        """`bacedge docker run` of the test busybox image, through the node's own Podman."""
        return self.run("bacedge", "docker", "run", TAG, "--", *command, timeout=180)

    def wait_for(self, *command: str, timeout: float = 90.0, what: str = "") -> str:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            result = self.run(*command, check=False)
            last = result.stdout + result.stderr
            if result.returncode == 0:
                return result.stdout
            time.sleep(0.5)
        raise AssertionError(f"timed out waiting for {what or ' '.join(command)}: {last}")

    def health_line(self, timeout: float) -> str:
        """The appliance's health line of this boot. It goes to the console and the journal;
        under nspawn (--console=pipe, no /dev/console) only the journal has it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            journal = self.run(
                "journalctl",
                *("-b", "-o", "cat", "--no-pager", "-u", "bacedge-appliance-health"),
                check=False,
            ).stdout
            for line in journal.splitlines():
                if line.startswith(("bacedge-appliance: ready", "bacedge-appliance: degraded")):
                    return line
            time.sleep(1)
        raise AssertionError(f"no health line in {timeout:.0f}s")

    def poweroff(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        if self.leader:
            subprocess.run(
                ["nsenter", "-t", str(self.leader), "-a", "systemctl", "poweroff"],
                capture_output=True,
                check=False,
            )
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def have_tools() -> list[str]:
    return [
        t
        for t in ("debootstrap", "systemd-nspawn", "nsenter", "unshare")
        if shutil.which(t) is None
    ]


def is_root() -> bool:
    return os.geteuid() == 0


@dataclass
class QemuDisk:
    """A copy of a raw disk image powered on under qemu TCG with OVMF, no network, its
    serial console in a file: the way an operator would try an appliance image in a VM.
    KVM guests do not run on our test machines, so this is slow (minutes per boot)."""

    raw: Path
    work: Path
    name: str
    grow: str = "+1G"  # room for the first boot to grow the root partition into
    proc: subprocess.Popen[bytes] | None = None

    @property
    def serial(self) -> Path:
        return self.work / f"{self.name}.serial.log"

    @property
    def disk(self) -> Path:
        return self.work / f"{self.name}.raw"

    def power_on(self, provision: str | None = None) -> None:
        """Copy the image, give it room to grow, write `provision` (TOML) to its ESP as
        `bacedge/provision.toml` as an operator would after flashing, and power on."""
        disk = self.disk
        subprocess.run(["cp", "--sparse=always", str(self.raw), str(disk)], check=True)
        subprocess.run(["truncate", "-s", self.grow, str(disk)], check=True)
        if provision is not None:
            table = subprocess.run(
                ["sfdisk", "--json", str(disk)], capture_output=True, text=True, check=True
            )
            parts = json.loads(table.stdout)["partitiontable"]["partitions"]
            esp = next(p for p in parts if p.get("name") == "esp")
            source = self.work / f"{self.name}.provision.toml"
            source.write_text(provision)
            image = f"{disk}@@{esp['start'] * 512}"  # mtools: the FAT file system at that offset
            subprocess.run(
                ["mcopy", "-o", "-i", image, str(source), "::bacedge/provision.toml"],
                check=True,
                capture_output=True,
            )
        variables = self.work / f"{self.name}.vars.fd"
        shutil.copy("/usr/share/OVMF/OVMF_VARS.fd", variables)
        code = "/usr/share/OVMF/OVMF_CODE.fd"
        self.proc = subprocess.Popen(
            [
                "qemu-system-x86_64",
                *("-accel", "tcg", "-m", "2048", "-smp", "2"),
                *("-drive", f"if=pflash,format=raw,readonly=on,file={code}"),
                *("-drive", f"if=pflash,format=raw,file={variables}"),
                *("-drive", f"file={disk},format=raw,if=virtio"),
                *("-nic", "none", "-display", "none", "-serial", f"file:{self.serial}"),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def wait_for(self, pattern: re.Pattern[str], timeout: float) -> re.Match[str]:
        """The first console line matching `pattern` (fails with the console's tail)."""
        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            text = self.serial.read_text(errors="replace") if self.serial.exists() else ""
            found = pattern.search(text)
            if found:
                return found
            if self.proc is not None and self.proc.poll() is not None:
                break
            time.sleep(1)
        raise AssertionError(f"{pattern.pattern!r} not on the console: ...{text[-3000:]}")

    def power_off(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
