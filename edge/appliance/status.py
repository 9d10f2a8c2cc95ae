"""The boot health check's last verdict, as the API's `agent/alive` reports it.

The health unit (root) writes it once per boot; the API (the service user) only reads it,
so this module imports nothing heavy and never fails the caller: a missing or unreadable
file just means "not an appliance, or not checked yet".
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

STATUS = Path("/run/bacedge-appliance/health.json")


def read(path: Path = STATUS) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("line"), str) else None
