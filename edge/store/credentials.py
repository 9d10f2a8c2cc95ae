"""The local store's access key and secret: generated once, kept 0600 in its data dir.

The file is the contract with everything that reaches the store (`edge.s3.local_store`):
`endpoint`, `access_key`, `secret_key`, `region`, `backend`.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import string
from dataclasses import dataclass, field
from pathlib import Path

from edge.s3 import CREDENTIALS_FILE, write_credentials

_KEY_ALPHABET = string.ascii_uppercase + string.digits


@dataclass(frozen=True)
class StoreCredentials:
    endpoint: str
    access_key: str
    secret_key: str = field(repr=False)
    region: str
    backend: str

    def as_file(self) -> dict[str, str]:
        return {
            "endpoint": self.endpoint,
            "access_key": self.access_key,
            "secret_key": self.secret_key,
            "region": self.region,
            "backend": self.backend,
        }


def credentials_path(store_dir: Path) -> Path:
    return store_dir / CREDENTIALS_FILE


def previous_backend(store_dir: Path) -> str:
    """The backend a store here was last run with ('' for a new store)."""
    return str(_read(credentials_path(store_dir)).get("backend", ""))


def _read(path: Path) -> dict[str, object]:
    with contextlib.suppress(OSError, ValueError):
        data = json.loads(path.read_text())
        if isinstance(data, dict):
            return data
    return {}


def generate_access_key() -> str:
    return "BE" + "".join(secrets.choice(_KEY_ALPHABET) for _ in range(18))


def generate_secret() -> str:
    return secrets.token_urlsafe(30)  # 40 characters, letters, digits, - and _


def ensure_credentials(
    store_dir: Path, endpoint: str, region: str, backend: str
) -> StoreCredentials:
    """The store's credentials: the kept keys when there are any, new random ones otherwise.
    The file is rewritten (atomically, 0600) when the endpoint, region or backend changed."""
    path = credentials_path(store_dir)
    data = _read(path)
    access = data.get("access_key")
    secret = data.get("secret_key")
    if not (isinstance(access, str) and len(access) >= 3):
        access = generate_access_key()
    if not (isinstance(secret, str) and len(secret) >= 8):
        secret = generate_secret()
    creds = StoreCredentials(endpoint, access, secret, region, backend)
    if data != creds.as_file() or (path.stat().st_mode & 0o077):
        write_credentials(path, creds.as_file())
    return creds
