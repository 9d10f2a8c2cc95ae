"""The appliance's provisioning file: checked with file and line, merged over the profile."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from edge.appliance import provision
from edge.appliance.health import Report
from edge.appliance.provision import ProvisionError, parse

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

GOOD = """\
[node]
name = "cam-2"
labels = { site = "plant-a" }
role = "compute"

[orchestrator]
url = "nats://hub.lan:4222"

[store]
buckets = ["data", "frames"]

[ssh]
authorized_keys = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOk operator@laptop"]
"""


def _file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "provision.toml"
    path.write_text(text)
    return path


def test_a_good_file_is_read(tmp_path: Path) -> None:
    prov = parse(_file(tmp_path, GOOD))
    assert (prov.name, prov.role, prov.orchestrator_url) == (
        "cam-2",
        "compute",
        "nats://hub.lan:4222",
    )
    assert prov.labels == {"site": "plant-a"} and prov.buckets == ["data", "frames"]
    config = provision.compose({"store": {"buckets": ["data"]}}, prov.role, prov)
    text = provision.render_config(config)
    assert tomllib.loads(text) == {
        "node": {"name": "cam-2", "labels": {"site": "plant-a"}},
        "store": {"buckets": ["data", "frames"]},
        "compute": {"orchestrators": ["nats://hub.lan:4222"]},
    }


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ('[node]\nname = "a"\nrole = "hub"\n', 3, "node.role 'hub' is not one of"),
        ("[node]\nlabels = 3\n", 2, "node.labels must be a table"),
        ('[nodes]\nname = "x"\n', 1, "unknown section [nodes]"),
        ('[node]\n\nnmae = "x"\n', 3, "unknown key node.nmae"),
        ('[store]\nbuckets = ["Bad_Name"]\n', 2, "bucket name 'Bad_Name'"),
        ('[node]\nname = "x"\nname = "y"\n', 3, "Cannot overwrite a value"),
        ('[node]\ntimezone = "Mars/Olympus"\n', 2, "unknown time zone"),
        ('[ssh]\nauthorized_keys = ["hunter2"]\n', 2, "not an SSH public key"),
        ('[tokens]\nnats = "short"\n', 2, "at least 16 characters"),
    ],
)
def test_errors_name_the_file_and_line(tmp_path: Path, text: str, line: int, problem: str) -> None:
    path = _file(tmp_path, text)
    with pytest.raises(ProvisionError) as caught:
        parse(path)
    assert caught.value.line == line
    assert str(caught.value).startswith(f"{path} line {line}: ")
    assert problem.lower() in str(caught.value).lower()


def _etc(tmp_path: Path) -> Path:
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "appliance.toml").write_text('profile = "standalone"\nrole = "standalone"\n')
    (etc / "appliance-config.toml").write_text('[store]\nbuckets = ["data", "results"]\n')
    return etc


def test_first_boot_generates_device_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BACEDGE_PROVISION_FILE", str(tmp_path / "absent.toml"))
    etc, run = _etc(tmp_path), tmp_path / "run"
    (tmp_path / "absent.toml").write_text("")
    status = provision.run(etc, run, host=False)
    assert status["ok"] and status["role"] == "standalone"
    tokens = {n: (etc / "credentials" / n).read_text() for n in ("nats-token", "api-token")}
    assert all(len(t.strip()) == 64 for t in tokens.values())
    assert (etc / "credentials" / "api-token").stat().st_mode & 0o777 == 0o600
    # A second device (another etc) gets other tokens; a reboot keeps them.
    other = tmp_path / "other"
    other.mkdir()
    etc2 = _etc(other)
    provision.run(etc2, other / "run", host=False)
    assert (etc2 / "credentials" / "api-token").read_text() != tokens["api-token"]
    provision.run(etc, run, host=False)
    assert (etc / "credentials" / "api-token").read_text() == tokens["api-token"]


def test_a_bad_file_keeps_the_previous_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    etc, run = _etc(tmp_path), tmp_path / "run"
    source = _file(tmp_path, GOOD)
    monkeypatch.setenv("BACEDGE_PROVISION_FILE", str(source))
    assert provision.run(etc, run, host=False)["ok"]
    before = (etc / "config.toml").read_text()
    assert 'name = "cam-2"' in before
    source.write_text(GOOD.replace('name = "cam-2"', 'name = "cam 2"'))
    status = provision.run(etc, run, host=False)
    assert not status["ok"] and status["problem"].startswith(f"{source} line 2: node.name")
    assert (etc / "config.toml").read_text() == before
    assert json.loads((run / "provision.json").read_text())["ok"] is False


def test_health_line() -> None:
    report = Report(node="n-1")
    for part in ("store", "wasm", "docker"):
        report.set(part, True)
    assert report.line() == "bacedge-appliance: ready node=n-1 wasm=ok docker=ok store=ok"
    report.set("docker", False, "Traceback...\nimage localhost/busybox:latest is not on the node")
    report.reasons["provision"] = "/boot/efi/bacedge/provision.toml line 3: bad"
    assert report.line() == (
        "bacedge-appliance: degraded node=n-1 wasm=ok docker=fail store=ok "
        "(docker: image localhost/busybox:latest is not on the node; "
        "provision: /boot/efi/bacedge/provision.toml line 3: bad)"
    )
