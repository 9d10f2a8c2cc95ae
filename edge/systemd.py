"""systemd integration without libsystemd: readiness, watchdog and credentials.

sd_notify is one datagram to $NOTIFY_SOCKET; the watchdog is fed from the event
loop itself, so a hung loop stops the pings and systemd restarts the service.
Credentials (LoadCredential=) are read by edge.config from $CREDENTIALS_DIRECTORY.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket

log = logging.getLogger("bacedge.systemd")


def notify(*states: str) -> bool:
    """Send `READY=1`, `WATCHDOG=1`, `STATUS=...`; False when not under systemd."""
    address = os.environ.get("NOTIFY_SOCKET", "")
    if not address:
        return False
    if address.startswith("@"):  # abstract namespace
        address = "\0" + address[1:]
    elif not address.startswith("/"):
        return False
    message = "\n".join(states).encode()
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        try:
            sock.connect(address)
            sock.sendall(message)
        except OSError as exc:
            log.warning("sd_notify failed", extra={"error": str(exc)})
            return False
    return True


def watchdog_interval() -> float | None:
    """Seconds between pings (half of WatchdogSec), or None when no watchdog is asked for."""
    usec = os.environ.get("WATCHDOG_USEC", "")
    pid = os.environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and pid != str(os.getpid()):
        return None  # meant for another process (e.g. a wrapper)
    return int(usec) / 1e6 / 2


async def feed_watchdog(interval: float) -> None:
    """Ping for as long as the event loop keeps running this task."""
    while True:
        notify("WATCHDOG=1")
        await asyncio.sleep(interval)
