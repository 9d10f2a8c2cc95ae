"""First-boot (and every-boot) provisioning of an appliance image from bacedge/provision.toml.

The image holds no per-device state. At each boot this reads `bacedge/provision.toml` from
the ESP, checks it, and writes `/etc/bacedge/config.toml`, the credentials (NATS and API
tokens generated here, once per device, unless the file gives them), the role's units, the
host name, time zone and SSH keys. A file with errors changes nothing: the device keeps its
previous config (or the profile's defaults on a first boot) and the problem, with its file
and line, goes to /run/bacedge-appliance/provision.json for the health line.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge.tls import ensure as ensure_tls

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ETC = Path("/etc/bacedge")
RUN = Path("/run/bacedge-appliance")
SEARCH = (
    Path("/boot/efi/bacedge/provision.toml"),
    Path("/efi/bacedge/provision.toml"),
    Path("/boot/bacedge/provision.toml"),
)
ROLES = {
    "standalone": ("bacedge-store", "bacedge-orchestrator", "bacedge-compute"),
    "compute": ("bacedge-store", "bacedge-compute"),
    "orchestrator": ("bacedge-store", "bacedge-orchestrator"),
}
ALL_UNITS = ("bacedge-store", "bacedge-orchestrator", "bacedge-compute")

# section -> key -> (type, what a user must write)
SCHEMA: dict[str, dict[str, tuple[type, str]]] = {
    "node": {
        "name": (str, "a string"),
        "labels": (dict, 'a table of strings, e.g. { site = "plant-a" }'),
        "role": (str, "standalone, compute or orchestrator"),
        "timezone": (str, 'a time zone such as "Europe/Lisbon"'),
    },
    "orchestrator": {
        "url": (str, 'a NATS URL such as "nats://hub:4222"'),
        "api": (str, 'an API URL such as "http://hub:1234"'),
    },
    "tokens": {"nats": (str, "a string"), "api": (str, "a string")},
    "store": {"buckets": (list, "a list of bucket names")},
    "ssh": {"authorized_keys": (list, "a list of public keys")},
}
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


class ProvisionError(Exception):
    """A problem in the provisioning file, with its line when known."""

    def __init__(self, path: Path, line: int | None, problem: str) -> None:
        where = f"{path} line {line}" if line else str(path)
        super().__init__(f"{where}: {problem}")
        self.path, self.line, self.problem = path, line, problem


@dataclass
class Provision:
    name: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    role: str = ""
    timezone: str = ""
    orchestrator_url: str = ""
    api_url: str = ""
    nats_token: str = ""
    api_token: str = ""
    buckets: list[str] = field(default_factory=list)
    ssh_keys: list[str] = field(default_factory=list)


def _line_of(text: str, section: str, key: str | None = None) -> int | None:
    """The line of `[section]` (or of `key` inside it, or of a `section.key =` dotted key)."""
    current = ""
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        header = re.match(r"^\[\s*([^\]]+?)\s*\]", line)
        if header:
            current = header.group(1)
            if key is None and current == section:
                return number
            continue
        assign = re.match(r"^([A-Za-z0-9_.\"-]+)\s*=", line)
        if not assign:
            continue
        name = assign.group(1).replace('"', "")
        full = f"{current}.{name}" if current else name
        if full == (f"{section}.{key}" if key else section) or (
            key is None and full.startswith(section + ".")
        ):
            return number
    return None


def parse(path: Path, zoneinfo: Path = Path("/usr/share/zoneinfo")) -> Provision:
    """The checked provisioning file, or ProvisionError naming the first problem."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ProvisionError(path, None, f"cannot read it ({exc})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"line (\d+)", str(exc))
        problem = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        raise ProvisionError(path, int(match.group(1)) if match else None, problem) from None
    out = Provision()
    for section, values in data.items():
        if section not in SCHEMA:
            known = ", ".join(f"[{s}]" for s in SCHEMA)
            raise ProvisionError(
                path, _line_of(text, section), f"unknown section [{section}] (use {known})"
            )
        if not isinstance(values, dict):
            raise ProvisionError(path, _line_of(text, section), f"{section} must be a table")
        for key, value in values.items():
            line = _line_of(text, section, key)
            if key not in SCHEMA[section]:
                known = ", ".join(SCHEMA[section])
                raise ProvisionError(path, line, f"unknown key {section}.{key} (known: {known})")
            kind, want = SCHEMA[section][key]
            items: list[Any] = (
                list(value.values())
                if isinstance(value, dict)
                else list(value)
                if isinstance(value, list)
                else []
            )
            if not isinstance(value, kind) or not all(isinstance(v, str) for v in items):
                raise ProvisionError(path, line, f"{section}.{key} must be {want}")
            _check(path, line, section, key, value, zoneinfo)
            _assign(out, section, key, value)
    return out


def _check(path: Path, line: int | None, section: str, key: str, value: Any, zi: Path) -> None:
    dotted = f"{section}.{key}"
    if dotted == "node.role" and value not in ROLES:
        raise ProvisionError(path, line, f"node.role {value!r} is not one of {', '.join(ROLES)}")
    if dotted == "node.name" and not _NAME.match(value):
        raise ProvisionError(path, line, "node.name must be 1-63 letters, digits, '.', '_' or '-'")
    if dotted == "node.timezone" and (".." in value or not (zi / value).is_file()):
        raise ProvisionError(path, line, f"unknown time zone {value!r}")
    if dotted == "orchestrator.url" and not re.match(r"^(nats|tls)://[^\s/]+$", value):
        raise ProvisionError(path, line, f"orchestrator.url {value!r} is not nats://HOST:PORT")
    if dotted == "orchestrator.api" and not re.match(r"^https?://[^\s]+$", value):
        raise ProvisionError(path, line, f"orchestrator.api {value!r} is not http(s)://HOST:PORT")
    if dotted == "store.buckets":
        for name in value:
            if not _BUCKET.match(name) or ".." in name:
                raise ProvisionError(path, line, f"bucket name {name!r} breaks S3's naming rules")
    if dotted == "ssh.authorized_keys":
        for pub in value:
            if not re.match(r"^(ssh-|ecdsa-|sk-)\S+ [A-Za-z0-9+/=]+( .*)?$", pub.strip()):
                raise ProvisionError(path, line, f"not an SSH public key: {pub[:40]!r}")
    if dotted in ("tokens.nats", "tokens.api") and (
        len(value) < 16 or any(c.isspace() for c in value)
    ):
        raise ProvisionError(path, line, f"{dotted} must be at least 16 characters, no spaces")


def _assign(out: Provision, section: str, key: str, value: Any) -> None:
    name = {
        "node.name": "name",
        "node.labels": "labels",
        "node.role": "role",
        "node.timezone": "timezone",
        "orchestrator.url": "orchestrator_url",
        "orchestrator.api": "api_url",
        "tokens.nats": "nats_token",
        "tokens.api": "api_token",
        "store.buckets": "buckets",
        "ssh.authorized_keys": "ssh_keys",
    }[f"{section}.{key}"]
    setattr(out, name, value)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return (
            "{ " + ", ".join(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"
        )
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def render_config(config: dict[str, dict[str, Any]]) -> str:
    lines = [
        "# Written at boot by the appliance's provisioning (python -m edge.appliance",
        "# provision) from the image profile and bacedge/provision.toml on the ESP:",
        "# edit provision.toml, not this file.",
    ]
    for section, values in config.items():
        lines.append(f"\n[{section}]")
        lines += [f"{key} = {_toml_value(value)}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


def compose(defaults: dict[str, Any], role: str, prov: Provision) -> dict[str, dict[str, Any]]:
    """/etc/bacedge/config.toml's content: the profile's defaults with the file's values."""
    config: dict[str, dict[str, Any]] = {k: dict(v) for k, v in defaults.items()}
    node = config.setdefault("node", {})
    if prov.name:
        node["name"] = prov.name
    if prov.labels:
        node["labels"] = {**node.get("labels", {}), **prov.labels}
    if prov.buckets:
        config.setdefault("store", {})["buckets"] = prov.buckets
    compute = config.setdefault("compute", {})
    if role == "compute" and prov.orchestrator_url:
        compute["orchestrators"] = [prov.orchestrator_url]
    elif role == "standalone":
        compute.setdefault("orchestrators", ["nats://127.0.0.1:4222"])
    if prov.api_url:
        config.setdefault("client", {})["api"] = prov.api_url
    return {k: v for k, v in config.items() if v}


def _write(path: Path, content: str, mode: int = 0o644) -> bool:
    """Atomic write; False when the file already had this content."""
    if path.exists() and path.read_text() == content:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as fh:
        fh.write(content)
    os.chmod(tmp, mode)
    tmp.replace(path)
    return True


def _credential(name: str, given: str, etc: Path) -> None:
    """A provided token, else one generated once per device (0600, root)."""
    path = etc / "credentials" / name
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if given:
        _write(path, given + "\n", 0o600)
    elif not path.exists() or not path.read_text().strip():
        _write(path, secrets.token_hex(32) + "\n", 0o600)


def _systemctl(*args: str) -> None:
    if shutil.which("systemctl"):
        subprocess.run(["systemctl", *args], check=False, capture_output=True)


def enable_role(role: str, now: bool = False) -> None:
    """Enable the role's units and disable the others (also used by images/build.sh)."""
    wanted = ROLES[role]
    off = [f"{u}.service" for u in ALL_UNITS if u not in wanted]
    on = [f"{u}.service" for u in wanted]
    extra = ["--now", "--no-block"] if now else []
    if off:
        _systemctl("disable", *extra, *off)
    _systemctl("enable", *extra, *on)


def find_file() -> Path | None:
    override = os.environ.get("BACEDGE_PROVISION_FILE")
    if override:
        return Path(override)
    return next((p for p in SEARCH if p.exists()), None)


def run(etc: Path = ETC, run_dir: Path = RUN, host: bool = True) -> dict[str, Any]:
    """Provision this device; returns (and writes) the status the health check reports.

    `host=False` (tests) writes only under `etc` and `run_dir`: no host name, time zone,
    SSH, Podman or units.
    """
    appliance = tomllib.loads((etc / "appliance.toml").read_text())
    defaults_path = etc / "appliance-config.toml"
    defaults = tomllib.loads(defaults_path.read_text()) if defaults_path.exists() else {}
    image_role = str(appliance.get("role", "standalone"))
    source = find_file()
    status: dict[str, Any] = {"ok": True, "source": str(source) if source else "defaults"}
    prov = Provision()
    good = True
    if source is not None:
        try:
            prov = parse(source)
        except ProvisionError as exc:
            status.update(ok=False, problem=str(exc))
            good = False
    role = prov.role or image_role
    config_path = etc / "config.toml"
    first = not (etc / "credentials" / "api-token").exists()
    if good or first:
        # A bad file on a later boot leaves everything as the last good one made it.
        _credential("nats-token", prov.nats_token, etc)
        _credential("api-token", prov.api_token, etc)
        # once per device, for its names; TLS is on when the config names the files
        ensure_tls(etc / "tls", [prov.name] if prov.name else [])
        _write(config_path, render_config(compose(defaults, role, prov)))
        _write(etc / "appliance-role", role + "\n")
        if host:
            _apply_host(prov)
            if role != image_role or not first:
                enable_role(role, now=True)
    status["role"] = (
        (etc / "appliance-role").read_text().strip() if (etc / "appliance-role").exists() else role
    )
    _write(run_dir / "provision.json", json.dumps(status) + "\n")
    return status


def _apply_host(prov: Provision) -> None:
    """Host name, time zone, SSH (off unless keys are given), Podman for this host's cgroups."""
    if prov.name:
        _write(Path("/etc/hostname"), prov.name + "\n")
        subprocess.run(["hostname", prov.name], check=False, capture_output=True)
    if prov.timezone:
        localtime = Path("/etc/localtime")
        localtime.unlink(missing_ok=True)
        localtime.symlink_to(f"/usr/share/zoneinfo/{prov.timezone}")
        _write(Path("/etc/timezone"), prov.timezone + "\n")
    keys = Path("/root/.ssh/authorized_keys")
    if prov.ssh_keys:
        keys.parent.mkdir(mode=0o700, exist_ok=True)
        _write(keys, "\n".join(k.strip() for k in prov.ssh_keys) + "\n", 0o600)
        subprocess.run(["ssh-keygen", "-A"], check=False, capture_output=True)
        _systemctl("enable", "--now", "--no-block", "ssh.service")
    else:
        keys.unlink(missing_ok=True)
        _systemctl("disable", "--now", "--no-block", "ssh.service", "ssh.socket")
    # containers.conf for the cgroups this device really has (crun on v2, runc on hybrid).
    bacedge = Path("/opt/bacedge/bin/bacedge")
    if bacedge.exists():
        subprocess.run(
            [str(bacedge), "setup", "podman", "--user", "bacedge", "--offline", "--quiet"],
            check=False,
            capture_output=True,
        )
