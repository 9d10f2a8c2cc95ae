"""S3 bucket names: the rules AWS enforces, checked before any request is sent."""

from __future__ import annotations

import re

_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_IP = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")
_BAD_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_BAD_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")


def bucket_name_problem(name: str) -> str | None:
    """Why `name` is not a valid S3 bucket name, or None when it is."""
    if not 3 <= len(name) <= 63:
        return "must be 3 to 63 characters long"
    if not _NAME.match(name):
        return (
            "may hold only lowercase letters, digits, dots and hyphens, "
            "and must start and end with a letter or digit"
        )
    if ".." in name or ".-" in name or "-." in name:
        return "must not have two dots, or a dot next to a hyphen, in a row"
    if _IP.match(name):
        return "must not look like an IP address"
    if name.startswith(_BAD_PREFIXES) or name.endswith(_BAD_SUFFIXES):
        return "uses a prefix or suffix S3 reserves"
    return None


def check_bucket_name(name: str) -> str:
    """`name`, or ValueError with a one-line reason (S3 naming rules)."""
    problem = bucket_name_problem(name)
    if problem is not None:
        raise ValueError(f"invalid bucket name {name!r}: a bucket name {problem}")
    return name
