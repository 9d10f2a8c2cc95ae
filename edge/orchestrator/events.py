"""Lifecycle events for `GET /api/v1/orchestrator/events` (bacedge): job, execution and node
state changes as they happen, to subscribers that follow them as Server-Sent Events.

Bounded by design: at most `max_subscribers` at once (the API answers 503 beyond), each with a
queue of at most `queue_size` events. A subscriber that falls that far behind is dropped at
once (its queue freed) and told `overflow`; it re-syncs by reading the API as usual. Nothing
is kept for replay: an event nobody follows costs one counter increment.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from .history import rfc3339

__all__ = ["CLOSED", "OVERFLOW", "TYPES", "EventBus", "Subscription", "TooManySubscribers"]

TYPES = (
    "job.state",
    "execution.state",
    "node.connection",
    "node.membership",
    "node.scheduling",
)
OVERFLOW: dict[str, Any] = {"Type": "overflow"}  # the marker a dropped subscriber gets
CLOSED: dict[str, Any] = {"Type": "closed"}  # the server is shutting down


class TooManySubscribers(Exception):
    pass


class Subscription:
    def __init__(
        self,
        bus: EventBus,
        match: Callable[[dict[str, Any]], bool],
        queue_size: int,
    ) -> None:
        self.bus = bus
        self.match = match
        self.queue_size = queue_size
        self.queue: deque[dict[str, Any]] = deque()
        self.overflowed = False
        self.closed = False
        self._ready = asyncio.Event()
        self.on_overflow: Callable[[], None] | None = None  # e.g. end a stalled write

    def offer(self, event: dict[str, Any]) -> None:
        if self.overflowed or not self.match(event):
            return
        if len(self.queue) >= self.queue_size:
            self.overflowed = True
            self.bus.overflows += 1
            self.queue.clear()
            self.bus.unsubscribe(self)
            if self.on_overflow is not None:
                self.on_overflow()
        else:
            self.queue.append(event)
        self._ready.set()

    async def next(self, timeout: float) -> dict[str, Any] | None:
        """The next event, OVERFLOW once dropped, or None after `timeout` s without one."""
        if not self.queue and not self.overflowed and not self.closed:
            self._ready.clear()
            try:
                await asyncio.wait_for(self._ready.wait(), timeout)
            except asyncio.TimeoutError:
                return None
        if self.overflowed:
            return OVERFLOW
        if self.closed:
            return CLOSED
        return self.queue.popleft() if self.queue else None

    def close(self) -> None:
        """Unsubscribed; a `next()` waiting returns CLOSED."""
        self.closed = True
        self.bus.unsubscribe(self)
        self.queue.clear()
        self._ready.set()


class EventBus:
    def __init__(self, max_subscribers: int = 64, queue_size: int = 1000) -> None:
        self.max_subscribers = max_subscribers
        self.queue_size = queue_size
        self.seq = 0
        self.overflows = 0  # subscribers dropped for falling behind
        self.started = time.time()
        self._subs: set[Subscription] = set()

    @property
    def subscribers(self) -> int:
        return len(self._subs)

    def subscribe(self, match: Callable[[dict[str, Any]], bool]) -> Subscription:
        if len(self._subs) >= self.max_subscribers:
            raise TooManySubscribers(
                f"{self.max_subscribers} event subscribers already: poll the API instead"
            )
        sub = Subscription(self, match, self.queue_size)
        self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subs.discard(sub)

    def close_all(self) -> None:
        """Every subscriber's stream ends (server shutdown)."""
        for sub in list(self._subs):
            sub.close()

    def publish(self, type_: str, **fields: Any) -> None:
        self.seq += 1
        if not self._subs:
            return
        event = {"Type": type_, "Time": rfc3339(), "Seq": self.seq, **fields}
        for sub in list(self._subs):
            sub.offer(event)


def matcher(types: list[str], job_id: str) -> Callable[[dict[str, Any]], bool]:
    """`types`: full names (`job.state`) or their first word (`job`, `node`); empty: all.
    `job_id`: only that job's events (node events have none)."""
    wanted = set(types)

    def match(event: dict[str, Any]) -> bool:
        kind = event["Type"]
        if wanted and kind not in wanted and kind.split(".")[0] not in wanted:
            return False
        return not job_id or event.get("JobID") == job_id

    return match


def parse_types(text: str) -> list[str]:
    """`?types=job,node.connection` -> the names; ValueError names an unknown one."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    known = set(TYPES) | {t.split(".")[0] for t in TYPES}
    for name in names:
        if name not in known:
            raise ValueError(f"unknown event type {name!r}: use {', '.join(sorted(known))}")
    return names
