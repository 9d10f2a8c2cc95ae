"""Durations as Bacalhau's CLI and config write them (Go's `1h30m`, `90s`, `500ms`)."""

from __future__ import annotations

import re

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")


def parse_duration(text: str | float | int) -> float:
    """Seconds from `90`, `90s`, `10m`, `1h30m` or `1.5h`; ValueError naming the forms."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        seconds = float(text)
    else:
        value = str(text).strip().lower()
        try:
            seconds = float(value)
        except ValueError:
            parts = _PART.findall(value)
            if not value or "".join(n + u for n, u in parts) != value:
                raise ValueError(
                    f"{text!r} is not a duration: write e.g. 90s, 10m or 1h30m"
                ) from None
            seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    if seconds < 0 or seconds != seconds or seconds == float("inf"):
        raise ValueError(f"{text!r} is not a duration: it must be 0 or more")
    return seconds
