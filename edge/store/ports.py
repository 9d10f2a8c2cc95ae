"""The ports the store's server uses inside the device, all on 127.0.0.1.

They are picked free on the first start and kept in `ports.json` next to the data, so a
restart finds the same ports (SeaweedFS keys some state by its master's port) and two
stores on one machine never collide. A kept port that something else took meanwhile is
replaced by a free one.
"""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Mapping, Sequence
from pathlib import Path

LOOPBACK = "127.0.0.1"


def port_free(host: str, port: int) -> bool:
    """Whether a server could listen on host:port now (SO_REUSEADDR, as servers bind)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = LOOPBACK) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _usable(port: object, offsets: Sequence[int], used: set[int]) -> bool:
    if not isinstance(port, int) or isinstance(port, bool):
        return False
    wanted = [port + offset for offset in offsets]
    return all(0 < p <= 65535 and p not in used and port_free(LOOPBACK, p) for p in wanted)


def internal_ports(
    path: Path,
    names: Sequence[str],
    offsets: Mapping[str, int] | None = None,
    avoid: Sequence[int] = (),
) -> dict[str, int]:
    """A port per name (kept from `path` when still free); `offsets[name]` is a second port
    at name's port + offset that must be free too (SeaweedFS's admin gRPC)."""
    saved: dict[str, object] = {}
    with contextlib.suppress(OSError, ValueError):
        loaded = json.loads(path.read_text())
        if isinstance(loaded, dict):
            saved = loaded
    used = set(avoid)
    out: dict[str, int] = {}
    for name in names:
        extra = (offsets or {}).get(name)
        wanted = (0, extra) if extra else (0,)
        port = saved.get(name)
        while not _usable(port, wanted, used):
            port = free_port()
        assert isinstance(port, int)
        out[name] = port
        used.update(port + offset for offset in wanted)
    if out != saved:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(out, indent=1) + "\n")
    return out
