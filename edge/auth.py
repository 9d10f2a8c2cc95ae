"""API users' capabilities and password hashes: what config, orchestrator, CLI and TUI share.

Capabilities are Bacalhau's action names (`read:job`, `write:job`, `read:node`,
`write:node`, `read:agent`); a user's `actions` may also use Bacalhau's wildcards (`*`,
`read:*`, `write:*`, `*:job`, ...). Passwords are stored as scrypt hashes in a
self-describing form, `scrypt$N$r$p$SALT$HASH` (base64 without padding), which
`bacedge auth hash-password` prints; the plain password is never stored.

Standard library only: the config loader and the CLI import it without the server.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from collections.abc import Iterable

__all__ = [
    "ACTIONS",
    "ADMIN",
    "HashError",
    "expand_actions",
    "hash_password",
    "key_fingerprint",
    "parse_hash",
    "verify_password",
]

ACTIONS: tuple[str, ...] = ("read:job", "write:job", "read:node", "write:node", "read:agent")
"""Every capability a route can require, in the order they are listed."""

ADMIN = frozenset(ACTIONS)
"""What the single `[api] auth_token` and an API without users can do: everything."""

_VERBS = ("read", "write")
_NOUNS = ("job", "node", "agent")


def expand_actions(patterns: Iterable[str]) -> frozenset[str]:
    """The actions `patterns` grant (`*`, `read:*`, `*:job` expanded); ValueError names the
    first pattern that grants nothing."""
    out: set[str] = set()
    for pattern in patterns:
        text = pattern.strip().lower()
        verb, sep, noun = text.partition(":")
        if text == "*":
            matched = set(ACTIONS)
        elif sep and verb in (*_VERBS, "*") and noun in (*_NOUNS, "*"):
            matched = {
                a
                for a in ACTIONS
                if verb in ("*", a.split(":")[0]) and noun in ("*", a.split(":")[1])
            }
        else:
            matched = set()
        if not matched:
            raise ValueError(
                f"unknown action {pattern!r}: use {', '.join(ACTIONS)} "
                "(or the wildcards *, read:*, write:*, *:job, *:node)"
            )
        out |= matched
    return frozenset(out)


# --------------------------------------------------------------------------- passwords

SCHEME = "scrypt"
DEFAULT_N, DEFAULT_R, DEFAULT_P = 1 << 15, 8, 1  # 32 MiB, ~0.15 s on a 2-core x86 box
_MAX_N, _MAX_R, _MAX_P = 1 << 20, 32, 16  # a hash from the config cannot ask for more
_SALT_BYTES, _KEY_BYTES = 16, 32


class HashError(ValueError):
    """A stored password that is not a hash this module reads; the message says why."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def _scrypt(password: bytes, salt: bytes, n: int, r: int, p: int, size: int) -> bytes:
    maxmem = 128 * r * (n + p + 2) + (1 << 20)
    return hashlib.scrypt(password, salt=salt, n=n, r=r, p=p, maxmem=maxmem, dklen=size)


def hash_password(password: str, *, n: int = DEFAULT_N, r: int = DEFAULT_R, p: int = 1) -> str:
    """`scrypt$N$r$p$SALT$HASH` for `password`, with a fresh random salt."""
    salt = os.urandom(_SALT_BYTES)
    key = _scrypt(password.encode(), salt, n, r, p, _KEY_BYTES)
    return f"{SCHEME}${n}${r}${p}${_b64(salt)}${_b64(key)}"


def parse_hash(stored: str) -> tuple[int, int, int, bytes, bytes]:
    """(N, r, p, salt, hash) of a stored hash; HashError says what is wrong with it."""
    parts = stored.split("$")
    if stored.startswith(("$2a$", "$2b$", "$2y$")):
        raise HashError(
            "a bcrypt hash (Bacalhau's) that bacedge does not read: "
            "store what `bacedge auth hash-password` prints"
        )
    if len(parts) != 6 or parts[0] != SCHEME:
        raise HashError(
            "not a password hash: store what `bacedge auth hash-password` prints "
            "(scrypt$N$r$p$SALT$HASH), never the password itself"
        )
    try:
        n, r, p = (int(x) for x in parts[1:4])
        salt, key = _unb64(parts[4]), _unb64(parts[5])
    except (ValueError, binascii.Error):
        raise HashError("a damaged scrypt hash: numbers or base64 do not read") from None
    if not (2 <= n <= _MAX_N and n & (n - 1) == 0 and 1 <= r <= _MAX_R and 1 <= p <= _MAX_P):
        raise HashError(
            f"scrypt parameters out of range: N a power of 2 up to {_MAX_N}, "
            f"r up to {_MAX_R}, p up to {_MAX_P}"
        )
    if len(salt) < 8 or len(key) < 16:
        raise HashError("a damaged scrypt hash: salt or hash too short")
    return n, r, p, salt, key


def verify_password(password: bytes | str, stored: str) -> bool:
    """Whether `password` hashes to `stored` (compared in constant time). A stored value
    that is not a hash never matches; config validation refuses such values first."""
    try:
        n, r, p, salt, key = parse_hash(stored)
    except HashError:
        return False
    raw = password.encode("utf-8", "surrogatepass") if isinstance(password, str) else password
    return hmac.compare_digest(_scrypt(raw, salt, n, r, p, len(key)), key)


def key_fingerprint(secret: str) -> str:
    """A short name for a secret that does not give it away (`sha256:1a2b3c4d`), for users
    known only by their API key."""
    digest = hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()
    return f"sha256:{digest[:8]}"
