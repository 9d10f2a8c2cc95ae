"""The event stream as a hint: where the server offers it, an event brings the next poll
forward (a burst shares one) and the regular poll slows to a safety net; where it answers
404 (Bacalhau), the TUI polls at its interval as before."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

from edge.client import ApiError
from tui import BacedgeApp, ClusterTarget
from tui.app import SAFETY_POLL

from .conftest import until
from .fake_api import NOW, FakeApi


class EventsApi(FakeApi):
    def __init__(self, status: int = 0) -> None:
        super().__init__()
        self.polls = 0
        self.status = status  # answer follow_events with this ApiError
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.followed = 0

    async def list_jobs(self, *args: Any, **kwargs: Any) -> Any:
        self.polls += 1
        return await super().list_jobs(*args, **kwargs)

    async def follow_events(
        self, types: Sequence[str] | None = None, job_id: str | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        self.followed += 1
        if self.status:
            raise ApiError(self.status, "404 page not found")
        while True:
            yield await self.events.get()


def app_for(api: EventsApi, refresh: float) -> BacedgeApp:
    return BacedgeApp(
        ClusterTarget("http://fake:1234", profile="lab"),
        api=api,
        clock=lambda: NOW,
        refresh_interval=refresh,
        start="jobs",
    )


async def test_an_event_brings_the_poll_forward_and_a_burst_shares_one() -> None:
    api = EventsApi()
    app = app_for(api, refresh=2.0)
    async with app.run_test(size=(120, 30)) as pilot:
        await until(pilot, lambda: api.polls >= 1 and api.followed == 1, "the first poll")
        await pilot.pause(0.3)
        before = api.polls
        for seq in range(1, 51):
            api.events.put_nowait({"Type": "job.state", "Seq": seq, "JobID": "j-1"})
        await until(pilot, lambda: api.polls > before, "a poll after the events")
        await pilot.pause(0.8)
        assert api.polls - before <= 3, "fifty events, a few polls at most"
        assert app.live_events and app.poll_interval == SAFETY_POLL
        settled = api.polls
        await pilot.pause(2.5)  # longer than refresh_interval: the safety poll is slower
        assert api.polls == settled


async def test_a_server_without_the_stream_is_polled_as_before() -> None:
    api = EventsApi(status=404)
    app = app_for(api, refresh=0.2)
    async with app.run_test(size=(120, 30)) as pilot:
        await until(pilot, lambda: api.polls >= 5, "polls at the interval")
        assert api.followed == 1 and not app.live_events
        assert app.poll_interval == 0.2
