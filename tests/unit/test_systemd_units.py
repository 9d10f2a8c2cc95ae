"""The shipped units: `systemd-analyze verify` prints nothing, exposure scores stay low."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

UNITS_DIR = Path(__file__).resolve().parents[2] / "systemd"
NATS_UNITS = ["bacedge-orchestrator.service", "bacedge-compute.service"]
UNITS = [*NATS_UNITS, "bacedge-store.service"]
MAX_EXPOSURE = 2.0


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A root with the units installed and the ExecStart binary present."""
    root = tmp_path_factory.mktemp("root")
    binary = root / "opt/bacedge/bin/bacedge"
    binary.parent.mkdir(parents=True)
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    (root / "etc/systemd/system").mkdir(parents=True)
    for unit in UNITS:
        shutil.copy(UNITS_DIR / unit, root / "etc/systemd/system" / unit)
    (root / "usr/lib/systemd").mkdir(parents=True)
    shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    return root


def test_units_verify_without_a_word(root: Path) -> None:
    # verify exits 0 on unknown keys, so any output at all is a failure.
    result = subprocess.run(
        ["systemd-analyze", "verify", f"--root={root}", *UNITS], capture_output=True, text=True
    )
    assert result.returncode == 0 and result.stdout == "" and result.stderr == "", result


@pytest.mark.parametrize("unit", UNITS)
def test_exposure_score(root: Path, unit: str) -> None:
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", f"--root={root}", unit],
        capture_output=True,
        text=True,
    )
    match = re.search(r"Overall exposure level for \S+: ([0-9.]+)", result.stdout)
    assert match, result.stdout + result.stderr
    assert float(match.group(1)) <= MAX_EXPOSURE, result.stdout


@pytest.mark.parametrize("unit", UNITS)
def test_units_are_notify_with_watchdog_and_credentials(unit: str) -> None:
    text = (UNITS_DIR / unit).read_text()
    for line in (
        "Type=notify",
        "WatchdogSec=",
        "Restart=on-failure",
        "StartLimitBurst=",
        "StateDirectory=bacedge",
        "NoNewPrivileges=yes",
        "User=bacedge",
    ):
        assert line in text, f"{unit} lacks {line}"
    if unit in NATS_UNITS:
        assert "LoadCredential=nats-token:" in text, f"{unit} lacks its NATS token"
    assert "Environment=BACEDGE_NATS_TOKEN" not in text  # secrets travel as credentials


def test_the_store_runs_before_the_nodes_that_use_it() -> None:
    """Compute nodes read the store's credentials file when they start; the store unit
    runs only the store, and nothing else pulls it in (it ships disabled)."""
    store = (UNITS_DIR / "bacedge-store.service").read_text()
    assert "ExecStart=/opt/bacedge/bin/bacedge serve --store --config" in store
    assert "--orchestrator" not in store and "--compute" not in store
    compute = (UNITS_DIR / "bacedge-compute.service").read_text()
    assert "After=network-online.target bacedge-orchestrator.service bacedge-store.service" in (
        compute
    )
    for unit in NATS_UNITS:
        assert "Wants=bacedge-store" not in (UNITS_DIR / unit).read_text()
