from __future__ import annotations

from pathlib import Path

import pytest

from edge.config import ConfigError, load_config


def test_precedence_file_then_env_then_flags(tmp_path: Path) -> None:
    file = tmp_path / "config.toml"
    file.write_text(
        '[api]\nport = 2000\nhost = "0.0.0.0"\n[compute]\nengines = ["wasm"]\n'
        '[nats]\ntoken = "s3cret"\n'
    )
    env = {"BACEDGE_API_PORT": "3000", "BACEDGE_COMPUTE_ALLOWED_LOCAL_PATHS": "/srv,/data"}
    config = load_config(file, {"api.port": 4000}, env)
    assert config.api.port == 4000  # flag beats env beats file
    assert config.api.host == "0.0.0.0"  # file beats default
    assert config.compute.engines == ["wasm"]
    assert [str(p) for p in config.compute.allowed_local_paths] == ["/srv", "/data"]
    assert load_config(file, {}, env).api.port == 3000


def test_secrets_are_masked(tmp_path: Path) -> None:
    file = tmp_path / "config.toml"
    file.write_text('[nats]\ntoken = "s3cret"\n[api]\nauth_token = "k"\n')
    masked = load_config(file, {}, {}).masked()
    assert masked["nats"]["token"] == "********"
    assert masked["api"]["auth_token"] == "********"
    assert "s3cret" not in repr(load_config(file, {}, {}))


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("[compute]\nbogus = 1\n", "compute.bogus: unknown key"),
        ("[api]\nport = 70000\n", "api.port"),
        ("[api\nport = 1\n", "invalid TOML"),
        ("[publishers.local]\nretention = 60\n", "publishers.local.retention"),
        ("[orchestrator]\njob_retention = -1\n", "orchestrator.job_retention"),
    ],
)
def test_bad_files_name_the_key(tmp_path: Path, text: str, fragment: str) -> None:
    file = tmp_path / "config.toml"
    file.write_text(text)
    with pytest.raises(ConfigError, match=fragment.replace("[", r"\[")):
        load_config(file, {}, {})


def test_explicit_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml", {}, {})


def test_bad_env_label(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="expected key=value"):
        load_config(None, {}, {"BACEDGE_NODE_LABELS": "novalue", "HOME": str(tmp_path)})


def test_systemd_credentials_fill_secrets(tmp_path: Path) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "nats-token").write_text("from-credential\n")
    config = load_config(None, {}, {"CREDENTIALS_DIRECTORY": str(creds), "HOME": str(tmp_path)})
    assert config.nats.token is not None
    assert config.nats.token.get_secret_value() == "from-credential"
