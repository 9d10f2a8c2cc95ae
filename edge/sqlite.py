"""SQLite owned by one dedicated thread: serialised writes, a free event loop.

Writes are group-committed: whatever is queued while a transaction runs goes into
the next one together, so a burst of small writes costs a few thread hand-offs and
commits instead of one each.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class SqliteThread:
    """A WAL-mode connection that every call reaches through the same thread."""

    def __init__(self, path: Path, schema: str, name: str, synchronous: str = "NORMAL") -> None:
        if synchronous not in ("NORMAL", "FULL"):
            raise ValueError(f"synchronous must be NORMAL or FULL, not {synchronous!r}")
        self.path = path
        self.schema = schema
        self.synchronous = synchronous
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._db: sqlite3.Connection | None = None
        self._queue: list[tuple[Callable[[sqlite3.Connection], Any], asyncio.Future[Any]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        await self.call(self._open)

    def _open(self) -> None:
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        # WAL: a commit is one append to the -wal file, so a killed process (kill -9, OOM)
        # loses no committed transaction and never corrupts the database, whatever the
        # setting below. The setting decides power loss: FULL fsyncs the WAL at every
        # commit (a committed write survives it), NORMAL only at checkpoints (the last
        # commits before a power cut may roll back; still no corruption).
        db.execute(f"PRAGMA synchronous={self.synchronous}")
        db.executescript(self.schema)
        self._db = db

    async def write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run `work` inside a group-committed transaction; returns its result."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.append((work, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while self._queue:
            batch, self._queue = self._queue, []
            try:
                results = await self.call(self._run_batch, [work for work, _ in batch])
            except BaseException as exc:  # the whole transaction rolled back
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                if isinstance(exc, asyncio.CancelledError):
                    raise
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)

    def _run_batch(self, works: list[Callable[[sqlite3.Connection], Any]]) -> list[Any]:
        return self.transaction(lambda db: [work(db) for work in works])

    async def close(self) -> None:
        if self._writer is not None:
            await asyncio.gather(self._writer, return_exceptions=True)
        if self._db is not None:
            await self.call(self._db.close)
            self._db = None
        self._pool.shutdown(wait=True)

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    @property
    def db(self) -> sqlite3.Connection:
        assert self._db is not None, f"{self.path} is not open"
        return self._db

    def transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run `work` in one transaction (call it on the owning thread)."""
        db = self.db
        db.execute("BEGIN")
        try:
            result = work(db)
        except BaseException:
            if db.in_transaction:  # SQLite rolls back by itself on some errors (a full disk)
                db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return result
