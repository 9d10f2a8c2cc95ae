"""One Config: defaults < TOML file < BACEDGE_* environment < command-line flags.

Keys are `section.key` (`[compute] allowed_local_paths = [...]`), their env names
`BACEDGE_SECTION_KEY`; flags pass overrides as {"section.key": value}.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 edge boards
    import tomli as tomllib


class ConfigError(Exception):
    """A config file, variable or flag that cannot be used; the message names it."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class NodeSection(_Section):
    name: str = ""
    data_dir: Path | None = None
    labels: dict[str, str] = Field(default_factory=dict)


class ApiSection(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=1234, ge=0, le=65535)
    auth_token: SecretStr | None = None


class NatsSection(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=4222, ge=0, le=65535)
    token: SecretStr | None = None
    servers: list[str] = Field(default_factory=list)  # external NATS: no embedded server
    store_dir: Path | None = None


class OrchestratorSection(_Section):
    node_heartbeat_timeout: float = Field(default=45.0, gt=0)
    auto_approve_nodes: bool = True
    max_attempts: int = Field(default=3, ge=1)
    eval_batch: int = Field(default=256, ge=1)


class ComputeSection(_Section):
    orchestrators: list[str] = Field(default_factory=list)
    heartbeat_interval: float = Field(default=15.0, gt=0)
    engines: list[str] = Field(default_factory=lambda: ["wasm", "noop"])
    allowed_local_paths: list[Path] = Field(default_factory=list)
    allow_networking: bool = False
    max_output_bytes: int = Field(default=1 << 20, ge=0)
    default_execution_timeout: float = Field(default=1800.0, gt=0)
    max_concurrent: int = Field(default=0, ge=0)  # 0: one slot per CPU core (at least 4)
    cpu: str = ""  # capacity override ("2", "1500m"); empty: the machine's
    memory: str = ""
    disk: str = ""
    reserve_cpu: str = "0"
    reserve_memory: str = "0"
    podman_socket: str = ""  # empty: /run/user/$UID/podman/podman.sock
    allowed_registries: list[str] = Field(default_factory=list)  # empty: never pull
    pids_limit: int = Field(default=1024, ge=0)  # per task container; 0: no limit
    stop_grace: int = Field(default=10, ge=0, le=300)  # SIGTERM -> SIGKILL, seconds


class ClientSection(_Section):
    api: str = "http://127.0.0.1:1234"
    api_key: SecretStr | None = None
    profile: str = ""  # a [profiles.NAME] to use when --api/--profile are not given


class ProfileSection(_Section):
    """One cluster the CLI and TUI can attach to (`--profile NAME`)."""

    api: str = "http://127.0.0.1:1234"
    api_key: SecretStr | None = None
    username: str = ""
    password: SecretStr | None = None
    cacert: str = ""
    insecure: bool = False


class TuiSection(_Section):
    refresh_interval: float = Field(default=2.0, gt=0)
    log_lines: int = Field(default=100_000, ge=1000)


class LogSection(_Section):
    level: str = "info"
    format: str = "auto"  # auto: JSON when stderr is not a TTY


class Config(_Section):
    node: NodeSection = Field(default_factory=NodeSection)
    api: ApiSection = Field(default_factory=ApiSection)
    nats: NatsSection = Field(default_factory=NatsSection)
    orchestrator: OrchestratorSection = Field(default_factory=OrchestratorSection)
    compute: ComputeSection = Field(default_factory=ComputeSection)
    client: ClientSection = Field(default_factory=ClientSection)
    tui: TuiSection = Field(default_factory=TuiSection)
    log: LogSection = Field(default_factory=LogSection)
    profiles: dict[str, ProfileSection] = Field(default_factory=dict)

    @property
    def data_dir(self) -> Path:
        return self.node.data_dir or default_data_dir()

    def masked(self) -> dict[str, Any]:
        """The effective config for printing: secrets shown as '********'."""
        data = self.model_dump(mode="json")
        sections = [(data[name], getattr(self, name)) for name in data if name != "profiles"]
        sections += [(data["profiles"][name], p) for name, p in self.profiles.items()]
        for fields, model in sections:
            for key in fields:
                if isinstance(getattr(model, key), SecretStr):
                    fields[key] = "********"
        return data

    def profile(self, name: str) -> ProfileSection:
        """A named cluster profile, with an error that lists the known ones."""
        try:
            return self.profiles[name]
        except KeyError:
            known = ", ".join(sorted(self.profiles)) or "none are configured"
            raise ConfigError(f"unknown profile {name!r}: known profiles: {known}") from None


def is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def default_config_path() -> Path:
    if is_root():
        return Path("/etc/bacedge/config.toml")
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "bacedge" / "config.toml"


def default_data_dir() -> Path:
    if is_root():
        return Path("/var/lib/bacedge")
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "bacedge"


# Environment names that predate the section scheme and that scripts rely on.
_ENV_ALIASES = {"BACEDGE_API": "client.api", "BACEDGE_API_KEY": "client.api_key"}


def _env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    """BACEDGE_SECTION_KEY variables as dotted overrides; lists are comma-separated."""
    known = {
        f"BACEDGE_{section}_{key}".upper(): f"{section}.{key}"
        for section, model in Config.model_fields.items()
        if section != "profiles"
        for key in model.annotation.model_fields  # type: ignore[union-attr]
    }
    known.update(_ENV_ALIASES)
    out: dict[str, Any] = {}
    for name, value in environ.items():
        dotted = known.get(name)
        if dotted is not None:
            out[dotted] = _coerce_env(dotted, value)
    return out


def _coerce_env(dotted: str, text: str) -> Any:
    section, key = dotted.split(".", 1)
    section_model = Config.model_fields[section].annotation
    annotation = str(section_model.model_fields[key].annotation)  # type: ignore[union-attr]
    if annotation.startswith("list"):
        return [part.strip() for part in text.split(",") if part.strip()]
    if annotation.startswith("dict"):
        return parse_key_values(text.split(","), what=f"BACEDGE_{section}_{key}".upper())
    return text


def parse_key_values(items: list[str] | tuple[str, ...], what: str = "labels") -> dict[str, str]:
    """`k=v` pairs (labels, env) to a dict, with an error naming the bad pair."""
    out: dict[str, str] = {}
    for item in items:
        item = item.strip()
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"invalid {what} entry {item!r}: expected key=value")
        out[key.strip()] = value.strip()
    return out


# systemd credentials (LoadCredential=NAME:PATH) that fill secret keys.
CREDENTIALS = {
    "nats-token": "nats.token",
    "api-token": "api.auth_token",
    "api-key": "client.api_key",
}


def _credentials(environ: Mapping[str, str]) -> dict[str, Any]:
    """Secrets from $CREDENTIALS_DIRECTORY: files, not environment variables."""
    directory = environ.get("CREDENTIALS_DIRECTORY", "")
    out: dict[str, Any] = {}
    if not directory:
        return out
    for name, dotted in CREDENTIALS.items():
        path = Path(directory) / name
        if path.is_file():
            value = path.read_text().strip()
            if value:
                out[dotted] = value
    return out


def _merge(target: dict[str, Any], dotted: Mapping[str, Any]) -> None:
    for name, value in dotted.items():
        if value is None:
            continue
        section, _, key = name.partition(".")
        if not key:
            raise ConfigError(f"invalid config key {name!r}: expected section.key")
        target.setdefault(section, {})[key] = value


def load_config(
    path: Path | str | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Read the file (an explicit path must exist), then env, then flag overrides."""
    explicit = path is not None
    file = Path(path) if path is not None else default_config_path()
    data: dict[str, Any] = {}
    if file.exists():
        try:
            data = tomllib.loads(file.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{file}: invalid TOML: {exc}") from None
        except OSError as exc:
            raise ConfigError(f"{file}: cannot read: {exc.strerror}") from None
    elif explicit:
        raise ConfigError(f"config file {file} does not exist: create it or drop --config")
    env = os.environ if environ is None else environ
    _merge(data, _env_overrides(env))
    _merge(data, _credentials(env))
    _merge(data, overrides or {})
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        where = str(file) if file.exists() else "config"
        raise ConfigError(f"{where}: {describe_validation_error(exc)}") from None


def describe_validation_error(exc: ValidationError) -> str:
    """Pydantic errors as `section.key: message` lines joined by '; '."""
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"])
        message = "unknown key" if error["type"] == "extra_forbidden" else error["msg"]
        parts.append(f"{where}: {message}")
    return "; ".join(parts)
