"""`bacedge setup ...`: one-time host preparation a root operator runs on a node.

`setup podman` makes the rootless Podman service the docker engine talks to: a service user
with subordinate IDs, its runtime dir (or lingering, under systemd), a containers.conf that
suits the host's cgroups, and a running API socket. The agent itself then never needs root.
Every step checks before it changes anything, so running it again changes nothing.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import click

from edge.cli.common import BacedgeGroup

SUBID_START = 100_000
SUBID_COUNT = 65_536
SERVICE_WAIT = 30.0  # seconds for a fresh Podman service to answer
SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CONF_MARK = "# Written by `bacedge setup podman`"


@click.group(cls=BacedgeGroup)
def setup() -> None:
    """Prepare this host (run once, as root)."""


def _say(message: str, quiet: bool) -> None:
    if not quiet:
        click.echo(message, err=True)


def _run(args: list[str], what: str, env: dict[str, str] | None = None) -> str:
    """Runs a setup tool; its failure is a one-line error naming the step."""
    try:
        done = subprocess.run(args, capture_output=True, text=True, env=env, check=False)
    except FileNotFoundError:
        raise click.ClickException(f"{what}: {args[0]} is not installed") from None
    if done.returncode != 0:
        detail = " ".join((done.stderr or done.stdout).split()) or f"exit code {done.returncode}"
        raise click.ClickException(f"{what} failed: {detail}")
    return done.stdout


# --------------------------------------------------------------------------- host facts


def cgroup_mode(root: Path = Path("/sys/fs/cgroup")) -> str:
    """ "v2" (unified), "hybrid" (v1 controllers plus a v2 mount) or "v1"."""
    if (root / "cgroup.controllers").exists():
        return "v2"
    if (root / "unified").is_dir():
        return "hybrid"
    return "v1"


def systemd_running() -> bool:
    """Whether systemd is the init system (sd_booted's test)."""
    return Path("/run/systemd/system").is_dir()


@dataclass(frozen=True)
class EngineChoice:
    runtime: str
    cgroup_manager: str
    why: str


def engine_choice(mode: str, systemd: bool, have: set[str]) -> EngineChoice:
    """The OCI runtime and cgroup manager rootless Podman can use on this host.

    crun cannot run rootless containers on hybrid cgroups ("cgroups in hybrid mode not
    supported"), runc can; on cgroups v2 crun is Podman's default and what applies limits
    best. The systemd cgroup manager needs a user session (lingering), so it is used only
    where systemd runs.
    """
    manager = "systemd" if systemd and mode == "v2" else "cgroupfs"
    if mode == "v2" and "crun" in have:
        return EngineChoice("crun", manager, "cgroups v2")
    if "runc" in have:
        why = "cgroups v2 without crun" if mode == "v2" else f"{mode} cgroups: crun fails there"
        return EngineChoice("runc", manager, why)
    if mode == "v2" and "crun" not in have:
        raise click.ClickException(
            "no OCI runtime found: install one (apt-get install crun, or runc)"
        )
    raise click.ClickException(
        f"rootless Podman on {mode} cgroups needs runc (crun fails there): apt-get install runc"
    )


def containers_conf(choice: EngineChoice) -> str:
    return (
        f"{CONF_MARK} for this host ({choice.why}).\n"
        "[engine]\n"
        f'runtime = "{choice.runtime}"\n'
        f'cgroup_manager = "{choice.cgroup_manager}"\n'
        'events_logger = "file"\n'
    )


def _ranges(path: Path) -> list[tuple[str, int, int]]:
    out = []
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return []
    for line in lines:
        parts = line.strip().split(":")
        if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
            out.append((parts[0], int(parts[1]), int(parts[2])))
    return out


def free_subid_start(ranges: list[tuple[str, int, int]]) -> int:
    """The first ID after every range in use (never below 100000)."""
    return max([SUBID_START, *(start + count for _, start, count in ranges)])


def socket_answers(path: str, timeout: float = 2.0) -> bool:
    """Whether a Podman API service answers on `path` (GET /_ping)."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(path)
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: d\r\n\r\n")
            reply = sock.recv(64)
    except OSError:
        return False
    return reply.startswith(b"HTTP/1.") and b" 200 " in reply[:16]


# --------------------------------------------------------------------------- steps


def _ensure_user(name: str, quiet: bool) -> pwd.struct_passwd:
    try:
        user = pwd.getpwnam(name)
        _say(f"user {name}: exists (UID {user.pw_uid})", quiet)
        return user
    except KeyError:
        pass
    _run(
        [
            "useradd",
            "--create-home",
            "--shell",
            "/usr/sbin/nologin",
            "--comment",
            "bacedge rootless Podman",
            name,
        ],
        f"creating user {name}",
    )
    user = pwd.getpwnam(name)
    _say(f"user {name}: created (UID {user.pw_uid})", quiet)
    return user


def _ensure_subids(user: pwd.struct_passwd, quiet: bool) -> bool:
    """Subordinate UIDs and GIDs for the user namespace; True when some were added."""
    added = False
    for kind, path in (("uid", Path("/etc/subuid")), ("gid", Path("/etc/subgid"))):
        ranges = _ranges(path)
        mine = [r for r in ranges if r[0] in (user.pw_name, str(user.pw_uid))]
        if mine:
            _, start, count = mine[0]
            _say(f"sub{kind}s: {start}-{start + count - 1}", quiet)
            continue
        start = free_subid_start(ranges)
        span = f"{start}-{start + SUBID_COUNT - 1}"
        _run(["usermod", f"--add-sub{kind}s", span, user.pw_name], f"adding sub{kind}s {span}")
        _say(f"sub{kind}s: {span} (added)", quiet)
        added = True
    return added


def _make_dir(path: Path, user: pwd.struct_passwd, mode: int = 0o755) -> None:
    """A directory owned by the user, its missing parents under the home too."""
    missing = []
    current = path
    while not current.exists():
        missing.append(current)
        current = current.parent
    for directory in reversed(missing):
        directory.mkdir(mode=mode)
        os.chown(directory, user.pw_uid, user.pw_gid)
        directory.chmod(mode)


def _ensure_conf(user: pwd.struct_passwd, content: str, quiet: bool) -> bool:
    """containers.conf of the user; True when it was written."""
    path = Path(user.pw_dir) / ".config" / "containers" / "containers.conf"
    try:
        if path.read_text() == content:
            _say(f"{path}: unchanged", quiet)
            return False
    except FileNotFoundError:
        pass
    _make_dir(path.parent, user)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(content)
    os.chown(tmp, user.pw_uid, user.pw_gid)
    tmp.replace(path)
    _say(f"{path}: written", quiet)
    return True


def _user_env(user: pwd.struct_passwd, runtime_dir: Path) -> dict[str, str]:
    return {
        "PATH": SAFE_PATH,
        "HOME": user.pw_dir,
        "USER": user.pw_name,
        "LOGNAME": user.pw_name,
        "XDG_RUNTIME_DIR": str(runtime_dir),
        "LANG": "C.UTF-8",
    }


def _wait_socket(path: str, what: str) -> None:
    deadline = time.monotonic() + SERVICE_WAIT
    while time.monotonic() < deadline:
        if socket_answers(path):
            return
        time.sleep(0.1)
    raise click.ClickException(f"{what}: {path} did not answer within {SERVICE_WAIT:.0f}s")


def _start_with_systemd(user: pwd.struct_passwd, sock: str, restart: bool, quiet: bool) -> None:
    """Lingering keeps the user's manager (and its /run/user/UID) up without a login; the
    manager's podman.socket starts the service on demand."""
    _run(["loginctl", "enable-linger", user.pw_name], f"enabling lingering for {user.pw_name}")
    runtime_dir = Path(f"/run/user/{user.pw_uid}")
    deadline = time.monotonic() + SERVICE_WAIT
    while not runtime_dir.is_dir() and time.monotonic() < deadline:
        time.sleep(0.1)
    manager = ["systemctl", "--user", f"--machine={user.pw_name}@"]
    _run([*manager, "enable", "--now", "podman.socket"], "enabling podman.socket")
    if restart:
        _run([*manager, "try-restart", "podman.service"], "restarting podman.service")
    _wait_socket(sock, "podman.socket")
    _say(f"Podman socket: podman.socket of {user.pw_name}'s systemd user manager", quiet)


def _enable_for_boot(user: pwd.struct_passwd, quiet: bool) -> None:
    """What `loginctl enable-linger` and `systemctl --user enable podman.socket` leave on
    disk, written directly: there is no running systemd to ask in a chroot."""
    linger = Path("/var/lib/systemd/linger")
    linger.mkdir(parents=True, exist_ok=True)
    (linger / user.pw_name).touch()
    wants = Path(user.pw_dir) / ".config" / "systemd" / "user" / "sockets.target.wants"
    for part in (wants.parent.parent.parent, wants.parent.parent, wants.parent, wants):
        _make_dir(part, user)
    link = wants / "podman.socket"
    if not link.is_symlink():
        link.symlink_to("/usr/lib/systemd/user/podman.socket")
    _say(f"lingering and podman.socket of {user.pw_name} enabled for the next boot", quiet)


def _start_detached(user: pwd.struct_passwd, sock: str, quiet: bool) -> None:
    """Without systemd: the runtime dir by hand and the service as a detached process."""
    runtime_dir = Path(f"/run/user/{user.pw_uid}")
    _make_dir(runtime_dir, user, 0o700)
    _make_dir(runtime_dir / "podman", user, 0o700)
    if socket_answers(sock):
        _say("Podman service: already running", quiet)
        return
    log_dir = Path(user.pw_dir) / ".local" / "state" / "bacedge"
    _make_dir(log_dir, user)
    log_path = log_dir / "podman-service.log"
    with log_path.open("ab") as log_file:
        os.chown(log_path, user.pw_uid, user.pw_gid)
        subprocess.Popen(
            [
                "runuser",
                "-u",
                user.pw_name,
                "--",
                "podman",
                "system",
                "service",
                "--time=0",
                f"unix://{sock}",
            ],
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=_user_env(user, runtime_dir),
            cwd=user.pw_dir,
            start_new_session=True,  # outlives this command and its terminal
        )
    _wait_socket(sock, f"starting the Podman service (log: {log_path})")
    _say(f"Podman service: started (log {log_path})", quiet)


@setup.command("podman")
@click.option(
    "--user",
    "user_name",
    default="bacedge",
    show_default=True,
    help="Service user that owns the rootless Podman (created if missing).",
)
@click.option("--quiet", "-q", is_flag=True, help="Print only the socket path.")
@click.option(
    "--offline",
    is_flag=True,
    help="Configure for the next boot and start nothing (installs into a chroot or image).",
)
def setup_podman(user_name: str, quiet: bool, offline: bool) -> None:
    """Create the rootless Podman service for docker tasks; print its socket path.

    Creates the user with subordinate UIDs/GIDs, its runtime dir (lingering under systemd),
    a containers.conf suited to the host's cgroups (runc on hybrid cgroups, crun on v2), and
    starts its Podman API socket. Run again, it changes nothing. Put the printed path in
    [compute] podman_socket (or --podman-socket): that enables docker tasks on the node.
    """
    if os.geteuid() != 0:
        raise click.ClickException(
            "bacedge setup podman creates a user and its runtime dir: run it as root "
            f"(sudo bacedge setup podman --user {user_name})"
        )
    missing = [t for t in ("podman", "newuidmap", "newgidmap") if shutil.which(t) is None]
    if missing:
        raise click.ClickException(
            f"{', '.join(missing)} not found: apt-get install podman runc uidmap "
            "slirp4netns fuse-overlayfs"
        )
    mode = cgroup_mode()
    systemd = systemd_running() or offline
    choice = engine_choice(mode, systemd, {r for r in ("crun", "runc") if shutil.which(r)})
    _say(f"host: cgroups {mode}, systemd {'running' if systemd else 'not running'}", quiet)
    user = _ensure_user(user_name, quiet)
    subids_added = _ensure_subids(user, quiet)
    conf_changed = _ensure_conf(user, containers_conf(choice), quiet)
    sock = f"/run/user/{user.pw_uid}/podman/podman.sock"
    if subids_added and socket_answers(sock):
        _say(f"new subordinate IDs: restart {user_name}'s Podman service to use them", quiet)
    if offline:
        _enable_for_boot(user, quiet)
    elif systemd:
        _start_with_systemd(user, sock, conf_changed or subids_added, quiet)
    else:
        if conf_changed and socket_answers(sock):
            _say(
                f"containers.conf changed: restart {user_name}'s running Podman service "
                "for it to take effect",
                quiet,
            )
        _start_detached(user, sock, quiet)
    click.echo(sock)


@setup.command("tls")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where to write them [default: <data dir>/tls].",
)
@click.option(
    "--name",
    "names",
    multiple=True,
    metavar="HOST_OR_IP",
    help="A name clients use to reach this host (repeat); [default: localhost, 127.0.0.1, "
    "::1 and the host name].",
)
@click.option("--force", is_flag=True, help="Replace certificates that already exist.")
@click.pass_context
def setup_tls(
    ctx: click.Context, directory: Path | None, names: tuple[str, ...], force: bool
) -> None:
    """Write a private CA and a server certificate for the API and NATS.

    ca.pem (give it to clients and compute nodes), server.pem and server-key.pem (0600):
    ECDSA P-256, the CA valid 10 years, the server certificate 825 days for every --name.
    The CA's key is not kept: run again with --force (and hand out the new ca.pem) to add
    names or renew. Prints the config lines that turn TLS on.
    """
    from edge.config import ConfigError, load_config
    from edge.tls import TlsError, default_names, generate

    if directory is None:
        try:
            directory = load_config().data_dir / "tls"
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from None
    chosen = list(names) or default_names()
    try:
        written = generate(directory, chosen, force=force)
    except TlsError as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        raise click.ClickException(f"cannot write to {directory}: {exc.strerror}") from None
    ca, cert, key = (str(p.resolve()) for p in written.paths())
    click.echo(f"wrote {ca} (the CA: give it to clients and compute nodes)")
    click.echo(f"wrote {cert} (for {', '.join(chosen)})")
    click.echo(f"wrote {key} (0600: readable by the orchestrator's user only)")
    click.echo(
        "\nOn the orchestrator (config.toml):\n"
        f'[api]\ntls_cert = "{cert}"\ntls_key = "{key}"\n'
        f'[nats]\ntls_cert = "{cert}"\ntls_key = "{key}"\n'
        '\nOn compute nodes (orchestrators = ["tls://HOST:4222"]):\n'
        f'[nats]\ncacert = "{ca}"\n'
        "\nClients use https://: bacedge --api https://HOST:1234 --cacert "
        f"{ca} (or [client] cacert, BACEDGE_CACERT, or a profile's cacert)."
    )
