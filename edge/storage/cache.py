"""A node-local cache of downloaded objects, so repeated jobs over the same data do not
fetch it again over a slow or metered link.

Entries are keyed by what identifies an object's content (endpoint, bucket, key and its ETag
or version), so a changed object is a different entry. An entry is complete once renamed
into place; a crash mid-download leaves only a `.part` file, removed on the next start.
Files are handed to executions as hard links (read-only inputs), so a cached object costs
its space once however many executions use it. The oldest entries go when the cache is full.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import threading
from pathlib import Path

log = logging.getLogger("bacedge.storage")


class ObjectCache:
    def __init__(self, root: Path, capacity: int) -> None:
        self.root = root
        self.capacity = capacity
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.bytes_downloaded = 0
        if root.is_dir():
            for stale in root.glob("*.part*"):
                stale.unlink(missing_ok=True)

    @property
    def enabled(self) -> bool:
        return self.capacity > 0

    @staticmethod
    def key(*parts: str) -> str:
        return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:40]

    def path(self, key: str) -> Path:
        return self.root / key

    def lookup(self, key: str) -> Path | None:
        path = self.path(key)
        if not self.enabled or not path.is_file():
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # least recently used goes first
        with self._lock:
            self.hits += 1
        return path

    def partial(self, key: str) -> Path:
        """Where to download before `commit`; unique per caller so concurrent jobs that
        want the same object do not write into one file."""
        self.root.mkdir(parents=True, exist_ok=True)
        return self.root / f"{key}.part{threading.get_ident()}-{os.getpid()}"

    def commit(self, key: str, partial: Path, size: int) -> Path:
        final = self.path(key)
        partial.replace(final)
        with self._lock:
            self.misses += 1
            self.bytes_downloaded += size
        self._evict(keep=final)
        return final

    def _evict(self, keep: Path) -> None:
        with self._lock:
            entries = []
            total = 0
            for entry in self.root.iterdir():
                if ".part" in entry.name or not entry.is_file():
                    continue
                stat = entry.stat()
                entries.append((stat.st_mtime, stat.st_size, entry))
                total += stat.st_size
            for _mtime, size, entry in sorted(entries, key=lambda e: e[0]):
                if total <= self.capacity:
                    break
                if entry == keep:
                    continue
                entry.unlink(missing_ok=True)  # executions keep their own hard links
                total -= size


def link_or_copy(source: Path, target: Path) -> None:
    """Hard link when on one filesystem (no copy), else a copy."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
