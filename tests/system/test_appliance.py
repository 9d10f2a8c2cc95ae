"""The appliance image (images/build.sh): built once, booted under systemd-nspawn with no
network, provisioned from its ESP file, checked by its own health line, used from outside."""

from __future__ import annotations

import hashlib
import json
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.wasm_build import build_wasm

from .conftest import Build
from .machine import REPO, Machine

PROVISION = """\
[node]
name = "appliance-test"
labels = { site = "lab" }
timezone = "Europe/Lisbon"
"""


def _unpack(build: Build, target: Path) -> Path:
    target.mkdir(parents=True)
    subprocess.run(
        ["tar", "--zstd", "-xpf", str(build.path(".rootfs.tar.zst")), "-C", str(target)],
        check=True,
    )
    return target


def cli(machine: Machine, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """`bacedge ...` in a root login shell of the device (its API token from profile.d)."""
    line = ". /etc/profile.d/bacedge.sh; exec bacedge " + shlex.join(args)
    return machine.run("sh", "-c", line, timeout=timeout)


@pytest.fixture(scope="module")
def device(appliance: Build, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = _unpack(appliance, tmp_path_factory.mktemp("device") / "root")
    esp = root / "boot/efi/bacedge"
    esp.mkdir(parents=True)
    (esp / "provision.toml").write_text(PROVISION)
    return root


@pytest.fixture(scope="module")
def booted(device: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Machine]:
    log = tmp_path_factory.mktemp("console") / "console.log"
    box = Machine(device, "bacedge-appliance", log)
    try:
        box.boot(timeout=300)
        yield box
    finally:
        box.poweroff()


def test_build_outputs(appliance: Build) -> None:
    sums = (appliance.out / "SHA256SUMS").read_text().splitlines()
    names = {line.split()[1] for line in sums}
    for suffix in (".rootfs.tar.zst", ".raw", ".manifest.json"):
        assert appliance.name + suffix in names
    for line in sums:
        digest, name = line.split()
        data = hashlib.sha256((appliance.out / name).read_bytes()).hexdigest()
        assert data == digest, name
    manifest = json.loads(appliance.path(".manifest.json").read_text())
    assert manifest["debian"] == "trixie" and manifest["arch"] == "x86_64"
    packages = {p["name"]: p["version"] for p in manifest["packages"]}
    assert {"bacedge", "podman", "crun", "systemd-boot-efi", "linux-image-amd64"} <= set(packages)
    assert [i["tags"] for i in manifest["images"]] == [["localhost/busybox:latest"]]
    assert manifest["python"].startswith("Python 3.13")
    gpt = subprocess.run(
        ["sfdisk", "--json", str(appliance.path(".raw"))], capture_output=True, text=True
    )
    parts = json.loads(gpt.stdout)["partitiontable"]["partitions"]
    assert [p["name"] for p in parts] == ["esp", "root"]


def test_image_holds_no_device_identity(device: Path) -> None:
    assert (device / "etc/machine-id").read_text() == ""
    assert not list((device / "etc/ssh").glob("ssh_host_*"))
    assert not (device / "etc/bacedge/credentials/nats-token").exists()
    state = device / "var/lib/bacedge"
    assert not state.exists() or not list(state.iterdir())
    shadow = {
        line.split(":")[0]: line.split(":")[1]
        for line in (device / "etc/shadow").read_text().splitlines()
    }
    assert all(value in ("*", "!", "!*", "") or value.startswith("!") for value in shadow.values())
    wants = device / "etc/systemd/system/multi-user.target.wants"
    assert not (wants / "ssh.service").is_symlink()
    for unit in ("bacedge-store", "bacedge-orchestrator", "bacedge-compute", "bacedge-provision"):
        assert (wants / f"{unit}.service").is_symlink(), unit


def test_missing_preload_is_one_line(tmp_path: Path) -> None:
    done = subprocess.run(
        ["bash", str(REPO / "images/build.sh"), "--preload", str(tmp_path / "nope.tar")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr == f"images/build.sh: --preload {tmp_path / 'nope.tar'}: no such file\n"


def test_boots_provisions_and_reports_ready(booted: Machine) -> None:
    line = booted.health_line(420)
    node = (booted.root / "var/lib/bacedge/compute/node_id").read_text().strip()
    assert line == f"bacedge-appliance: ready node={node} wasm=ok docker=ok store=ok"
    assert booted.run("hostname").stdout.strip() == "appliance-test"
    assert booted.run("readlink", "/etc/localtime").stdout.strip().endswith("Europe/Lisbon")
    assert (
        booted.run("systemctl", "is-active", "ssh.service", check=False).stdout.strip() != "active"
    )
    config = (booted.root / "etc/bacedge/config.toml").read_text()
    assert 'name = "appliance-test"' in config and '"site" = "lab"' in config
    token = booted.root / "etc/bacedge/credentials/api-token"
    assert token.stat().st_mode & 0o777 == 0o600
    # The API refuses calls without the device's token.
    denied = booted.run("bacedge", "node", "list", check=False)
    assert denied.returncode != 0
    # The same verdict, from the API, for anyone who asks the device whether it is well.
    alive = cli(booted, "agent", "alive").stdout
    assert f"Appliance: {line} (checked " in alive, alive
    assert json.loads(cli(booted, "agent", "alive", "--output", "json").stdout)["Appliance"][
        "ready"
    ]


def test_jobs_publish_to_the_local_store_and_come_back(booted: Machine, tmp_path: Path) -> None:
    booted.health_line(420)
    docker = cli(
        booted,
        "docker",
        "run",
        "--id-only",
        "-p",
        "s3://results/{jobID}/",
        "-o",
        "outputs:/outputs",
        "localhost/busybox:latest",
        "--",
        "sh",
        "-c",
        "echo from-docker; echo 42 > /outputs/answer",
    )
    job = docker.stdout.split()[-1]
    assert ".tar.gz" in cli(booted, "store", "ls", f"s3://results/{job}/").stdout
    cli(booted, "job", "get", job, "--output-dir", "/root/docker-result")
    got = booted.root / "root/docker-result"
    assert (got / "stdout").read_text() == "from-docker\n"
    assert (got / "outputs/answer").read_text() == "42\n"

    (booted.root / "root/hello.wasm").write_bytes(build_wasm("hello").read_bytes())
    wasm = cli(
        booted,
        "wasm",
        "run",
        "--id-only",
        "-p",
        "s3://results/{jobID}/",
        "/root/hello.wasm",
        "--",
        "from-wasm",
    )
    job = wasm.stdout.split()[-1]
    cli(booted, "job", "get", job, "--output-dir", "/root/wasm-result")
    assert (booted.root / "root/wasm-result/stdout").read_text().splitlines()[0] == "from-wasm"


def test_reboot_keeps_node_and_data_and_reports_a_bad_file(booted: Machine) -> None:
    booted.health_line(420)
    node = (booted.root / "var/lib/bacedge/compute/node_id").read_text().strip()
    objects = cli(booted, "store", "ls", "-r", "s3://results/").stdout
    config = (booted.root / "etc/bacedge/config.toml").read_text()
    booted.poweroff()
    esp_file = booted.root / "boot/efi/bacedge/provision.toml"
    esp_file.write_text(PROVISION.replace('name = "appliance-test"', "name = appliance test"))
    booted.leader, booted.proc = 0, None
    booted.log = booted.log.with_name("console-2.log")
    booted.boot(timeout=300)
    line = booted.health_line(420)
    assert line.startswith(f"bacedge-appliance: degraded node={node} wasm=ok docker=ok store=ok")
    assert "provision: /boot/efi/bacedge/provision.toml line 2: " in line
    assert (booted.root / "etc/bacedge/config.toml").read_text() == config
    assert (booted.root / "var/lib/bacedge/compute/node_id").read_text().strip() == node
    after = cli(booted, "store", "ls", "-r", "s3://results/").stdout
    assert set(objects.splitlines()) <= set(after.splitlines())


IDENTITY = (
    "etc/machine-id",
    "var/lib/bacedge/compute/node_id",
    "etc/bacedge/credentials/api-token",
    "etc/bacedge/credentials/nats-token",
    "var/lib/bacedge/store/credentials.json",
)


def test_a_second_copy_of_the_image_is_another_device(
    appliance: Build, booted: Machine, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Two devices flashed from one image: every identity is made on each one's first boot."""
    booted.health_line(420)
    root = _unpack(appliance, tmp_path_factory.mktemp("second") / "root")
    second = Machine(root, "bacedge-appliance-2", tmp_path_factory.mktemp("console2") / "log")
    try:
        second.boot(timeout=300)
        for name in IDENTITY:
            second.wait_for("test", "-s", f"/{name}", timeout=300, what=name)
        for name in IDENTITY:
            mine = (booted.root / name).read_text().strip()
            theirs = (root / name).read_text().strip()
            assert mine and theirs and mine != theirs, name
    finally:
        second.poweroff()
