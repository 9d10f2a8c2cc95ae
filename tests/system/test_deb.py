"""The .deb on a real Debian 12, installed offline and booted under real systemd."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from tests.podman_image import build_busybox_archive

from .conftest import install_deb
from .machine import Machine, chroot, copy_tree

UNITS = ("bacedge-orchestrator.service", "bacedge-compute.service")
STORE_UNIT = "bacedge-store.service"  # shipped disabled; enabled by test_store_unit_serves_s3


def test_deb_installs_offline(installed: Path) -> None:
    version = chroot(installed, "/usr/bin/bacedge", "--version").stdout
    assert "bacedge" in version
    assert chroot(installed, "getent", "passwd", "bacedge").stdout.startswith("bacedge:")
    assert "bacedge:" in (installed / "etc/subuid").read_text()
    token = installed / "etc/bacedge/credentials/nats-token"
    assert token.stat().st_mode & 0o777 == 0o600 and len(token.read_text()) == 64
    for unit in (*UNITS, STORE_UNIT):
        assert (installed / "lib/systemd/system" / unit).exists()
    nats = chroot(installed, "/opt/bacedge/bin/nats-server", "--version").stdout
    assert "nats-server" in nats
    assert "version" in chroot(installed, "/opt/bacedge/bin/weed", "version").stdout


def test_edited_config_survives_reinstall(installed: Path, deb_file: Path) -> None:
    config = installed / "etc/bacedge/config.toml"
    edited = config.read_text() + "\n# edited by the operator\n"
    config.write_text(edited)
    result = install_deb(installed, deb_file)
    assert result.returncode == 0, result.stderr
    assert config.read_text() == edited


def _node_ids(machine: Machine) -> list[str]:
    nodes = json.loads(machine.run("bacedge", "node", "list", "--output", "json").stdout)
    return [n["Info"]["NodeID"] for n in nodes if n["ConnectionState"]["Status"] == "CONNECTED"]


def test_units_start_and_run_jobs(machine: Machine) -> None:
    machine.run("systemctl", "enable", "--now", *UNITS, timeout=120)
    for unit in UNITS:
        assert (
            machine.run("systemctl", "is-active", unit, check=False).stdout.strip() == "active"
        ), machine.run("journalctl", "-u", unit, "--no-pager", check=False).stdout
    state = machine.run("systemctl", "is-system-running", check=False).stdout.strip()
    failed = machine.run("systemctl", "--failed", "--no-legend", "--plain", check=False).stdout
    assert state == "running" or "bacedge" not in failed, failed
    machine.wait_for("curl", "-sf", "http://127.0.0.1:1234/api/v1/agent/alive", what="API")
    deadline = time.monotonic() + 60
    while not _node_ids(machine) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert len(_node_ids(machine)) == 1
    run = machine.run("bacedge", "wasm", "run", "/root/hello.wasm", "--", "from-systemd")
    assert run.stdout.splitlines()[0] == "from-systemd"
    logs = machine.run("journalctl", "-u", "bacedge-orchestrator", "-o", "cat", "--no-pager")
    assert any(line.startswith("{") and '"level"' in line for line in logs.stdout.splitlines())


def test_store_unit_serves_s3(machine: Machine) -> None:
    """The hardened store unit runs SeaweedFS; root's `bacedge store` finds its credentials."""
    machine.run("systemctl", "enable", "--now", STORE_UNIT, timeout=120)
    active = machine.run("systemctl", "is-active", STORE_UNIT, check=False).stdout.strip()
    assert active == "active", machine.run(
        "journalctl", "-u", STORE_UNIT, "--no-pager", check=False
    ).stdout
    machine.run("bacedge", "store", "mb", "sys-test")
    machine.run("bacedge", "store", "cp", "/root/hello.wasm", "s3://sys-test/")
    status = json.loads(machine.run("bacedge", "store", "status", "--output", "json").stdout)
    assert status["alive"] and status["backend"] == "seaweedfs"
    assert status["endpoint"] == "http://127.0.0.1:9000"
    assert [b["objects"] for b in status["buckets"] if b["name"] == "sys-test"] == [1]
    creds = machine.root / "var/lib/bacedge/store/credentials.json"
    assert creds.stat().st_mode & 0o777 == 0o600


def test_podman_job_runs_in_the_service_users_podman(machine: Machine) -> None:
    """The user manager's podman.socket (lingering, enabled offline by the postinst) serves
    the hardened compute unit through its read-only bind of /run/user/UID/podman."""
    uid = machine.run("id", "-u", "bacedge").stdout.strip()
    sock = f"/run/user/{uid}/podman/podman.sock"
    machine.wait_for("test", "-S", sock, what="the bacedge user's podman.socket")
    archive = build_busybox_archive()
    shutil.copy(archive, machine.root / "root" / "busybox.tar")
    machine.run("bacedge", "image", "load", "--user", "bacedge", "/root/busybox.tar", timeout=180)
    run = machine.docker_run("sh", "-c", "echo from-podman; id -u")
    lines = run.stdout.splitlines()
    assert lines[:2] == ["from-podman", "0"], run.stdout + run.stderr
    # Rootless: the socket, and so the containers, belong to the service user, not root.
    assert machine.run("stat", "-c", "%U", sock).stdout.strip() == "bacedge"


def _main_pid(machine: Machine, unit: str) -> int:
    return int(machine.run("systemctl", "show", "-p", "MainPID", "--value", unit).stdout)


def test_hung_compute_is_restarted_by_the_watchdog(machine: Machine) -> None:
    unit = "bacedge-compute.service"
    dropin = machine.root / "etc/systemd/system/bacedge-compute.service.d/test-watchdog.conf"
    dropin.write_text("[Service]\nWatchdogSec=4\nTimeoutStopSec=4\n")
    machine.run("systemctl", "daemon-reload")
    machine.run("systemctl", "restart", unit, timeout=60)
    before = _main_pid(machine, unit)
    restarts = int(machine.run("systemctl", "show", "-p", "NRestarts", "--value", unit).stdout)
    machine.run("kill", "-STOP", str(before))

    def restarted() -> bool:
        now = int(machine.run("systemctl", "show", "-p", "NRestarts", "--value", unit).stdout)
        active = machine.run("systemctl", "is-active", unit, check=False).stdout.strip()
        return now > restarts and active == "active" and _main_pid(machine, unit) != before

    deadline = time.monotonic() + 90
    while not restarted():
        assert time.monotonic() < deadline, machine.run(
            "journalctl", "-u", unit, "-n", "30", "--no-pager", check=False
        ).stdout
        time.sleep(1)
    journal = machine.run("journalctl", "-u", unit, "--no-pager", check=False).stdout
    assert "Watchdog timeout" in journal
    dropin.unlink()
    machine.run("systemctl", "daemon-reload")


def test_restart_keeps_node_id_and_loses_no_job(machine: Machine, tmp_path: Path) -> None:
    unit = "bacedge-compute.service"
    machine.run("systemctl", "restart", unit, timeout=60)
    deadline = time.monotonic() + 60
    while not _node_ids(machine) and time.monotonic() < deadline:
        time.sleep(0.5)
    before = _node_ids(machine)
    spec = {
        "Name": "survives-restart",
        "Tasks": [
            {"Engine": {"Type": "noop", "Params": {"SleepSeconds": 5, "Stdout": "made it\n"}}}
        ],
    }
    job_id = machine.run(
        "bacedge", "job", "run", "--id-only", "--no-wait", "-", input=json.dumps(spec)
    ).stdout.strip()
    machine.wait_for(
        "sh", "-c", f"bacedge job describe {job_id} | grep -q Running", what="the job to run"
    )
    machine.run("systemctl", "restart", unit, timeout=60)
    machine.wait_for(
        "sh",
        "-c",
        f"bacedge job describe {job_id} | grep -q 'State *= *Completed'",
        timeout=120,
        what="the job to complete after the restart",
    )
    assert _node_ids(machine) == before


def test_purge_removes_what_install_created(
    base_rootfs: Path, deb_file: Path, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    copy_tree(base_rootfs, root)
    assert install_deb(root, deb_file).returncode == 0
    (root / "var/lib/bacedge").mkdir(parents=True, exist_ok=True)
    (root / "var/lib/bacedge/results.txt").write_text("job output\n")
    result = chroot(root, "dpkg", "--purge", "bacedge", check=False)
    assert result.returncode == 0, result.stderr
    for path in (
        "opt/bacedge",
        "etc/bacedge",
        "lib/systemd/system/bacedge-compute.service",
        "etc/systemd/system/bacedge-compute.service.d",
        "usr/bin/bacedge",
    ):
        assert not (root / path).exists(), path
    assert chroot(root, "getent", "passwd", "bacedge", check=False).returncode != 0
    assert "bacedge:" not in (root / "etc/subuid").read_text()
    assert (root / "var/lib/bacedge/results.txt").read_text() == "job output\n"  # user data
