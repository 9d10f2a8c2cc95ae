"""The boot health verdict file as `agent/alive` reads it: never an error for the caller."""

from __future__ import annotations

import json
from pathlib import Path

from edge.appliance import health, status


def test_a_missing_file_means_no_verdict(tmp_path: Path) -> None:
    assert status.read(tmp_path / "health.json") is None


def test_junk_or_a_foreign_shape_is_no_verdict(tmp_path: Path) -> None:
    path = tmp_path / "health.json"
    for junk in ("{not json", "[1, 2]", '{"ready": true}', '{"line": 3}', ""):
        path.write_text(junk)
        assert status.read(path) is None, junk


def test_a_written_verdict_is_read_back(tmp_path: Path) -> None:
    path = tmp_path / "health.json"
    verdict = {"ready": True, "line": "bacedge-appliance: ready node=n-1", "checked": "Z"}
    path.write_text(json.dumps(verdict))
    assert status.read(path) == verdict


def test_the_health_check_asks_the_api_the_device_was_provisioned_with(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[client]\napi = "http://hub.example:1234"\n')
    assert health.configured_api(config) == "http://hub.example:1234"
    config.write_text("[client\n")  # broken: provisioning reports it; the check goes on
    assert health.configured_api(config) == "http://127.0.0.1:1234"
