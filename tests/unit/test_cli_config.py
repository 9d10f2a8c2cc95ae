from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from edge.cli.main import cli


def test_config_show_masks_secrets_and_reports_precedence(tmp_path: Path) -> None:
    file = tmp_path / "config.toml"
    file.write_text('[nats]\ntoken = "hunter2"\n[api]\nport = 2000\n')
    runner = CliRunner()
    result = runner.invoke(
        cli,
        ["config", "show", "--config", str(file), "--output", "json"],
        env={"BACEDGE_API_PORT": "3000"},
    )
    assert result.exit_code == 0, result.output
    assert "hunter2" not in result.output
    assert '"token": "********"' in result.output
    assert '"port": 3000' in result.output  # env beats file


def test_config_validate(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text("[compute]\nallowed_local_paths = ['/srv']\n")
    assert CliRunner().invoke(cli, ["config", "validate", str(good)]).exit_code == 0
    bad = tmp_path / "bad.toml"
    bad.write_text("[compute]\nallowed_local_path = ['/srv']\n")
    result = CliRunner().invoke(cli, ["config", "validate", str(bad)])
    assert result.exit_code == 1
    assert "compute.allowed_local_path: unknown key" in result.output
