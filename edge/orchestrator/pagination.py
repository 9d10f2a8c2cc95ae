"""Opaque NextToken values: base64 of an offset, so clients cannot build their own."""

from __future__ import annotations

import base64
import binascii

from .errors import BadRequest


def encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode().rstrip("=")


def decode_token(token: str | None) -> int:
    if not token:
        return 0
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        kind, _, value = text.partition(":")
        if kind != "o":
            raise ValueError(kind)
        offset = int(value)
        if offset < 0:
            raise ValueError(value)
        return offset
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise BadRequest(
            f"invalid next_token {token[:64]!r}{'...' if len(token) > 64 else ''}: pass the "
            "NextToken of a previous page"
        ) from None


def parse_limit(text: str | None, default: int = 100, maximum: int = 10_000) -> int:
    if text in (None, ""):
        return default
    try:
        limit = int(text)
    except ValueError:
        raise BadRequest(f"invalid limit {text!r}: use a whole number") from None
    if limit < 1:
        raise BadRequest(f"invalid limit {limit}: must be at least 1")
    return min(limit, maximum)
