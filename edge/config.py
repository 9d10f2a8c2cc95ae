"""One Config: defaults < TOML file < BACEDGE_* environment < command-line flags.

Keys are `section.key` (`[compute] allowed_local_paths = [...]`), their env names
`BACEDGE_SECTION_KEY`; flags pass overrides as {"section.key": value}.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from edge.auth import HashError, expand_actions, key_fingerprint, parse_hash

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 edge boards
    import tomli as tomllib


class ConfigError(Exception):
    """A config file, variable or flag that cannot be used; the message names it."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, defer_build=True)


class NodeSection(_Section):
    name: str = ""
    data_dir: Path | None = None
    labels: dict[str, str] = Field(default_factory=dict)


def _invalid(message: str) -> PydanticCustomError:
    """A validation error whose message is printed as written (after its key)."""
    return PydanticCustomError("bacedge", "{message}", {"message": message})


def _tls_pair(section: str, cert: str, key: str) -> None:
    """`tls_cert` and `tls_key` turn TLS on together; one alone is an error naming both."""
    if bool(cert) != bool(key):
        raise _invalid(
            f"{section}.tls_cert and {section}.tls_key go together: set both "
            "(`bacedge setup tls` writes server.pem and server-key.pem) or neither"
        )


class CapabilitySection(_Section):
    """Bacalhau's `Capabilities` entry: actions a user may take (wildcards allowed)."""

    actions: list[str] = Field(default_factory=list)

    @field_validator("actions")
    @classmethod
    def _known_actions(cls, value: list[str]) -> list[str]:
        try:
            expand_actions(value)
        except ValueError as exc:
            raise _invalid(str(exc)) from None
        return value


MIN_API_KEY = 16


class UserSection(_Section):
    """One `[[api.auth.users]]`: Bacalhau's `API.Auth.Users` entry in bacedge's spelling."""

    alias: str = ""
    username: str = ""
    password: SecretStr | None = None  # a hash from `bacedge auth hash-password`
    api_key: SecretStr | None = None
    capabilities: list[CapabilitySection] = Field(default_factory=list)

    @field_validator("password")
    @classmethod
    def _hashed(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            try:
                parse_hash(value.get_secret_value())
            except HashError as exc:
                raise _invalid(str(exc)) from None
        return value

    @field_validator("api_key")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().strip()) < MIN_API_KEY:
            raise _invalid(
                f"an API key needs at least {MIN_API_KEY} characters "
                "(for one: openssl rand -hex 24)"
            )
        return value

    @model_validator(mode="after")
    def _can_sign_in(self) -> UserSection:
        who = f" ({self.alias!r})" if self.alias else ""
        if self.password is None and self.api_key is None:
            raise _invalid(f"a user{who} needs a password (with a username) or an api_key")
        if bool(self.username) != (self.password is not None):
            raise _invalid(f"username and password{who} go together: set both or neither")
        return self

    @property
    def name(self) -> str:
        """What logs and refusals call this user: alias, username, or its key's fingerprint."""
        if self.alias or self.username:
            return self.alias or self.username
        key = self.api_key.get_secret_value() if self.api_key else ""
        return f"API key {key_fingerprint(key)}"

    @property
    def actions(self) -> frozenset[str]:
        out: frozenset[str] = frozenset()
        for capability in self.capabilities:
            out |= expand_actions(capability.actions)
        return out


class AuthSection(_Section):
    """`[api.auth]`: API users; with none (and no `auth_token`) the API is open."""

    users: list[UserSection] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> AuthSection:
        for key in ("alias", "username", "api_key"):
            seen: dict[str, int] = {}
            for index, user in enumerate(self.users):
                value = getattr(user, key)
                text = value.get_secret_value() if isinstance(value, SecretStr) else value
                if not text:
                    continue
                if text in seen:
                    shown = "the same key" if key == "api_key" else repr(text)
                    raise _invalid(
                        f"users.{index}.{key}: {shown} is also users.{seen[text]}'s {key}; "
                        f"each user needs its own"
                    )
                seen[text] = index
        return self


class ApiSection(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=1234, ge=0, le=65535)
    auth_token: SecretStr | None = None  # one admin key: every capability
    auth: AuthSection = Field(default_factory=AuthSection)
    tls_cert: str = ""  # with tls_key: the API is served over HTTPS
    tls_key: str = ""

    @model_validator(mode="after")
    def _tls(self) -> ApiSection:
        _tls_pair("api", self.tls_cert, self.tls_key)
        return self

    @model_validator(mode="after")
    def _token_is_not_a_user_key(self) -> ApiSection:
        token = self.auth_token.get_secret_value() if self.auth_token else None
        for index, user in enumerate(self.auth.users):
            if token and user.api_key is not None and user.api_key.get_secret_value() == token:
                raise _invalid(
                    f"auth.users.{index}.api_key is the same as auth_token; "
                    "the token is an admin key, give the user its own"
                )
        return self

    @property
    def auth_enabled(self) -> bool:
        return self.auth_token is not None or bool(self.auth.users)


class NatsSection(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=4222, ge=0, le=65535)
    token: SecretStr | None = None
    servers: list[str] = Field(default_factory=list)  # external NATS: no embedded server
    store_dir: Path | None = None
    tls_cert: str = ""  # with tls_key: the embedded nats-server requires TLS
    tls_key: str = ""
    cacert: str = ""  # CA this process's NATS clients verify the server with (TLS on)

    @model_validator(mode="after")
    def _tls(self) -> NatsSection:
        _tls_pair("nats", self.tls_cert, self.tls_key)
        return self


class OrchestratorSection(_Section):
    node_heartbeat_timeout: float = Field(default=45.0, gt=0)
    # A silent node keeps its executions this long after its heartbeat timeout: no batch
    # partition is started twice over a link that flaps. 0: fail over at once.
    disconnect_grace: float = Field(default=600.0, ge=0, le=7 * 86400)
    auto_approve_nodes: bool = True
    max_attempts: int = Field(default=3, ge=1)
    eval_batch: int = Field(default=256, ge=1)
    max_count: int = Field(default=1000, ge=1, le=2**31 - 1)  # a job's Count, at most
    max_timeout: int = Field(default=365 * 86400, ge=1, le=2**31 - 1)  # seconds, each timeout
    plan_batch: int = Field(default=100, ge=1)  # partitions placed per job per scheduling step
    restart_delay: float = Field(default=1.0, gt=0)  # a service or daemon execution that exited
    restart_delay_max: float = Field(default=60.0, gt=0)  # doubles per quick exit, up to this
    # A node that connects more than flap_limit times in flap_window seconds gets no new
    # work for flap_backoff seconds, doubled per further connection up to flap_backoff_max.
    flap_limit: int = Field(default=5, ge=0, le=10_000)  # 0: never back off
    flap_window: float = Field(default=60.0, gt=0, le=86400)
    flap_backoff: float = Field(default=30.0, gt=0, le=86400)
    flap_backoff_max: float = Field(default=600.0, gt=0, le=7 * 86400)
    # Seconds a finished job stays in the store (then it, its versions, executions, history
    # and evaluations go, checked hourly): the store does not grow with every job ever run.
    job_retention: float = Field(default=30 * 86400.0, ge=3600.0, le=3650 * 86400.0)


class ComputeSection(_Section):
    orchestrators: list[str] = Field(default_factory=list)
    heartbeat_interval: float = Field(default=15.0, gt=0)
    engines: list[str] = Field(default_factory=list)  # empty: every engine that works here
    allowed_local_paths: list[Path] = Field(default_factory=list)
    allow_networking: bool = False
    max_output_bytes: int = Field(default=1 << 20, ge=0)
    max_log_bytes: int = Field(default=64 << 20, ge=0)  # per execution's `job logs` lines
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
    max_input_bytes: int = Field(default=10 << 30, ge=0)  # per execution, all inputs together
    input_cache_bytes: int = Field(default=2 << 30, ge=0)  # S3 download cache; 0: no cache
    # Finished executions are kept in the node's ledger this long (seconds), then forgotten.
    ledger_retention: float = Field(default=7 * 86400.0, ge=3600.0, le=3650 * 86400.0)
    locality: str = "anywhere"  # Bacalhau's JobAdmissionControl.Locality: local | anywhere
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(default=0, ge=0, le=65535)  # Prometheus /metrics; 0: off
    # A one-time token (`bacedge node token create`): at its first start the node exchanges
    # it for a NATS identity of its own, kept in its data dir; later starts ignore it.
    join_token: SecretStr | None = None


class S3Section(_Section):
    """Credentials for S3 endpoints that jobs name (inputs, `s3` publishing): never in specs."""

    endpoint: str = ""  # default endpoint for specs that name none (empty: the local store)
    region: str = ""
    access_key: str = ""
    secret_key: SecretStr | None = None


class StorageSection(_Section):
    s3: S3Section = Field(default_factory=S3Section)


class StoreSection(_Section):
    """The device's own S3 server (`bacedge serve --store`)."""

    enabled: bool = False
    backend: str = "auto"  # auto: a minio binary when found, else SeaweedFS
    binary: str = ""  # path to a minio (or weed) binary; implies its backend
    host: str = "127.0.0.1"
    port: int = Field(default=9000, ge=0, le=65535)
    buckets: list[str] = Field(default_factory=list)
    data_dir: Path | None = None  # default: <data dir>/store
    region: str = "us-east-1"


class LocalPublisherSection(_Section):
    """Serves `local` results as <execution>.tar.gz over HTTP, as Bacalhau does."""

    host: str = "127.0.0.1"
    port: int = Field(default=6001, ge=0, le=65535)  # 0: any free port
    address: str = ""  # advertised in result URLs; empty: host
    retention: float = Field(default=30 * 86400.0, ge=3600.0, le=3650 * 86400.0)


class S3ManagedSection(_Section):
    """Where the orchestrator puts `s3managed` results (it signs uploads for the nodes)."""

    bucket: str = "bacedge-results"
    key: str = "{jobID}/{executionID}"
    endpoint: str = ""  # empty: [storage.s3] endpoint, else the local store
    region: str = ""
    access_key: str = ""
    secret_key: SecretStr | None = None
    url_expiry: int = Field(default=3600, ge=60, le=7 * 86400)  # seconds


class PublishersSection(_Section):
    local: LocalPublisherSection = Field(default_factory=LocalPublisherSection)
    s3managed: S3ManagedSection = Field(default_factory=S3ManagedSection)


class ClientSection(_Section):
    api: str = "http://127.0.0.1:1234"
    api_key: SecretStr | None = None
    profile: str = ""  # a [profiles.NAME] to use when --api/--profile are not given
    cacert: str = ""  # CA bundle to verify an https:// orchestrator


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
    storage: StorageSection = Field(default_factory=StorageSection)
    store: StoreSection = Field(default_factory=StoreSection)
    publishers: PublishersSection = Field(default_factory=PublishersSection)
    profiles: dict[str, ProfileSection] = Field(default_factory=dict)

    @property
    def data_dir(self) -> Path:
        return self.node.data_dir or default_data_dir()

    def masked(self) -> dict[str, Any]:
        """The effective config for printing: secrets shown as '********'."""
        return _masked(self)

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
_ENV_ALIASES = {
    "BACEDGE_API": "client.api",
    "BACEDGE_API_KEY": "client.api_key",
    "BACEDGE_JOIN_TOKEN": "compute.join_token",
}


def _leaf_fields(model: type[BaseModel], prefix: str = "") -> dict[str, Any]:
    """Dotted key -> annotation for every settable key, nested sections included."""
    out: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            out.update(_leaf_fields(annotation, f"{prefix}{name}."))
        else:
            out[f"{prefix}{name}"] = annotation
    return out


def _masked(model: BaseModel) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, SecretStr):
            out[name] = "********"
        elif isinstance(value, BaseModel):
            out[name] = _masked(value)
        elif isinstance(value, dict) and any(isinstance(v, BaseModel) for v in value.values()):
            out[name] = {k: _masked(v) for k, v in value.items()}
        elif isinstance(value, list) and any(isinstance(v, BaseModel) for v in value):
            out[name] = [_masked(v) for v in value]
        else:
            out[name] = model.model_dump(mode="json", include={name})[name]
    return out


def _settable_by_env(annotation: Any) -> bool:
    """Lists of tables (`[[api.auth.users]]`) live in the file only."""
    return not any(
        isinstance(arg, type) and issubclass(arg, BaseModel) for arg in get_args(annotation)
    )


_FIELDS = {
    k: v
    for k, v in _leaf_fields(Config).items()
    if not k.startswith("profiles") and _settable_by_env(v)
}


def _env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    """BACEDGE_SECTION_KEY variables as dotted overrides; lists are comma-separated."""
    known = {"BACEDGE_" + dotted.replace(".", "_").upper(): dotted for dotted in _FIELDS}
    known.update(_ENV_ALIASES)
    out: dict[str, Any] = {}
    for name, value in environ.items():
        dotted = known.get(name)
        if dotted is not None:
            out[dotted] = _coerce_env(dotted, value)
    return out


def _coerce_env(dotted: str, text: str) -> Any:
    annotation = str(_FIELDS[dotted])
    if annotation.startswith("list"):
        return [part.strip() for part in text.split(",") if part.strip()]
    if annotation.startswith("dict"):
        what = "BACEDGE_" + dotted.replace(".", "_").upper()
        return parse_key_values(text.split(","), what=what)
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
    "join-token": "compute.join_token",
    "s3-secret-key": "storage.s3.secret_key",
    "s3managed-secret-key": "publishers.s3managed.secret_key",
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
        *sections, key = name.split(".")
        if not sections or not key:
            raise ConfigError(f"invalid config key {name!r}: expected section.key")
        node = target
        for section in sections:
            child = node.setdefault(section, {})
            if not isinstance(child, dict):
                raise ConfigError(f"invalid config key {name!r}: {section} is not a section")
            node = child
        node[key] = value


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
