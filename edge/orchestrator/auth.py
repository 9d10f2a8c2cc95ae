"""Who is calling the API, from its `Authorization` header, and what it may do.

Credentials are `Authorization: Bearer <API key>` or HTTP Basic (`username:password`), for
the `[[api.auth.users]]` of the config; `[api] auth_token` is one more admin key (Bearer,
or Basic with any username and the token as password), as before users existed. API keys
are compared in constant time against every key. A password is checked with scrypt in a
worker thread (at most two at once); a verified username and password is then remembered
for `CACHE_SECONDS` under a keyed hash of both, never in plain text, so that a client
sending Basic credentials with each request pays for scrypt about once a minute. An
unknown username costs the same scrypt as a wrong password.

`Authenticator.identify` answers a `Caller` or the reason it refused, a line for the log
that never holds a secret.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from edge.auth import ADMIN, parse_hash, verify_password
from edge.config import ApiSection
from edge.lru import LRU

__all__ = ["ANONYMOUS", "Authenticator", "Caller", "Refusal"]

CACHE_SECONDS = 60.0
CACHE_ENTRIES = 1024
MAX_HEADER = 4096  # longer Authorization values are refused unread
MAX_SCRYPT = 2  # password checks running at once


@dataclass(frozen=True)
class Caller:
    name: str  # alias, username, or an API key's fingerprint; "" when auth is off
    actions: frozenset[str]


ANONYMOUS = Caller("", ADMIN)
"""Everyone, when the API has no users and no token."""


@dataclass(frozen=True)
class Refusal:
    """Why credentials were refused: `message` for the caller, `reason` for the log."""

    message: str
    reason: str


NO_CREDENTIALS = Refusal(
    "authentication required: send Authorization: Bearer <API key>, or Basic credentials",
    "no credentials",
)
BAD_KEY = Refusal("invalid API key", "an API key that matches no user")
BAD_PASSWORD = Refusal("invalid username or password", "")


def _digest(secret: str | bytes) -> bytes:
    raw = secret.encode("utf-8", "surrogatepass") if isinstance(secret, str) else secret
    return hashlib.sha256(raw).digest()


def _dummy_hash(stored: Iterable[str]) -> str:
    """A hash no password matches, as costly as the first user's: an unknown username
    takes as long to refuse as a wrong password."""
    for text in stored:
        n, r, p, salt, key = parse_hash(text)
        fake = base64.b64encode(os.urandom(len(salt))), base64.b64encode(os.urandom(len(key)))
        return f"scrypt${n}${r}${p}${fake[0].decode()}${fake[1].decode()}"
    return ""


def _shown(name: str) -> str:
    """A name the client sent, safe for one log line."""
    return repr(name[:64] + ("..." if len(name) > 64 else ""))


class Authenticator:
    def __init__(self, api: ApiSection, clock: Callable[[], float] = time.monotonic) -> None:
        self.enabled = api.auth_enabled
        self._clock = clock
        token = api.auth_token.get_secret_value() if api.auth_token is not None else None
        self._token = _digest(token) if token else None
        self._keys: list[tuple[bytes, Caller]] = []
        self._passwords: dict[str, tuple[str, Caller]] = {}
        for user in api.auth.users:
            caller = Caller(user.name, user.actions)
            if user.api_key is not None:
                self._keys.append((_digest(user.api_key.get_secret_value().strip()), caller))
            if user.password is not None:
                self._passwords[user.username] = (user.password.get_secret_value(), caller)
        self._dummy = _dummy_hash(stored for stored, _ in self._passwords.values())
        self._cache_key = os.urandom(32)
        self._cache: LRU[bytes, tuple[float, Caller]] = LRU(CACHE_ENTRIES)
        self._pending: dict[bytes, asyncio.Future[Caller | None]] = {}
        self._gate: asyncio.Semaphore | None = None

    async def identify(self, header: str | None) -> Caller | Refusal:
        """The caller an `Authorization` header names, or why it names none."""
        if not self.enabled:
            return ANONYMOUS
        if not header or not header.strip():
            return NO_CREDENTIALS
        if len(header) > MAX_HEADER:
            return Refusal("invalid credentials", f"an Authorization header of {len(header)} bytes")
        scheme, _, value = header.strip().partition(" ")
        value = value.strip()
        if scheme.lower() == "bearer":
            if not value:
                return NO_CREDENTIALS
            return self._by_key(value) or BAD_KEY
        if scheme.lower() == "basic":
            return await self._basic(value)
        return Refusal(
            "unsupported authorization scheme: use Bearer or Basic",
            f"an Authorization scheme {_shown(scheme)}",
        )

    def _by_key(self, key: str) -> Caller | None:
        """The user with this API key (or the admin token); every key is compared."""
        supplied = _digest(key)
        found: Caller | None = None
        if self._token is not None and hmac.compare_digest(supplied, self._token):
            found = Caller("auth_token", ADMIN)
        for digest, caller in self._keys:
            if hmac.compare_digest(supplied, digest) and found is None:
                found = caller
        return found

    async def _basic(self, value: str) -> Caller | Refusal:
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (ValueError, binascii.Error, UnicodeDecodeError):
            return Refusal("invalid Basic credentials", "Basic credentials that do not decode")
        username, sep, password = decoded.partition(":")
        if not sep or not password:
            return Refusal("invalid Basic credentials", "Basic credentials without a password")
        if self._token is not None and hmac.compare_digest(_digest(password), self._token):
            return Caller("auth_token", ADMIN)  # as before users: the token as password
        caller = await self._verified(username, password)
        if caller is not None:
            return caller
        known = username in self._passwords
        why = "wrong password for user" if known else "unknown user"
        return Refusal(BAD_PASSWORD.message, f"{why} {_shown(username)}")

    async def _verified(self, username: str, password: str) -> Caller | None:
        key = hmac.new(
            self._cache_key,
            username.encode("utf-8", "surrogatepass")
            + b"\0"
            + password.encode("utf-8", "surrogatepass"),
            hashlib.sha256,
        ).digest()
        now = self._clock()
        hit = self._cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        pending = self._pending.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._check(username, password))
            self._pending[key] = pending
            pending.add_done_callback(lambda _: self._pending.pop(key, None))
        caller = await asyncio.shield(pending)
        if caller is not None:
            self._cache.put(key, (self._clock() + CACHE_SECONDS, caller))
        return caller

    async def _check(self, username: str, password: str) -> Caller | None:
        stored, caller = self._passwords.get(username, (self._dummy, None))
        if self._gate is None:
            self._gate = asyncio.Semaphore(MAX_SCRYPT)
        async with self._gate:
            ok = await asyncio.to_thread(verify_password, password, stored)
        return caller if ok and caller is not None else None
