"""Large job specs, through the real API and nats-server: too large to offer is refused up
front; a large spec placed many times on one node is offered in as many messages as it
takes; listings of large specs come in pages bounded in bytes."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.inprocess import single_node

API = "/api/v1/orchestrator"


def _job(name: str, label_bytes: int, count: int = 1) -> dict[str, Any]:
    labels = {f"k{i:06d}": "v" * 90 for i in range(label_bytes // 100)}
    return {
        "Name": name,
        "Type": "batch",
        "Count": count,
        "Labels": labels,
        "Tasks": [{"Name": "main", "Engine": {"Type": "noop"}}],
    }


async def test_a_spec_larger_than_an_offer_is_refused_and_a_large_count_is_split(
    tmp_path: Path,
) -> None:
    async with (
        single_node(tmp_path) as runtime,
        httpx.AsyncClient(base_url=runtime.api_url, timeout=60) as client,
    ):
        assert runtime.orch is not None
        limit = runtime.orch.nc.max_payload  # 8 MiB on the embedded server
        # Accepted, it failed at NATS at every offer and was placed again, for ever.
        answer = await client.put(f"{API}/jobs", json={"Job": _job("huge", limit + 1)})
        assert answer.status_code == 400, answer.text
        assert "nodes are sent at most" in answer.json()["Message"]
        # 3 MiB, Count 4 on the only node: 12 MiB of offers, sent as several messages.
        answer = await client.put(f"{API}/jobs", json={"Job": _job("big", 3 << 20, count=4)})
        assert answer.status_code == 200, answer.text
        job_id = answer.json()["JobID"]
        for _ in range(300):
            job = (await client.get(f"{API}/jobs/{job_id}")).json()["Job"]
            if job["State"]["StateType"] in ("Completed", "Failed"):
                break
            await asyncio.sleep(0.1)
        assert job["State"]["StateType"] == "Completed", job["State"]


async def test_an_execution_whose_job_no_longer_fits_fails_instead_of_looping(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A spec accepted under a larger limit (the NATS server's max_payload lowered since):
    its executions fail saying why and the job ends Failed, rather than offers going out
    again and again."""
    async with (
        single_node(tmp_path) as runtime,
        httpx.AsyncClient(base_url=runtime.api_url, timeout=60) as client,
    ):
        orch = runtime.orch
        assert orch is not None
        monkeypatch.setattr(orch, "_check_offerable", lambda job: None)  # accepted before
        monkeypatch.setattr(orch.nc, "_max_payload", 256 * 1024)  # a smaller server now
        answer = await client.put(f"{API}/jobs", json={"Job": _job("grown", 512 * 1024)})
        job_id = answer.json()["JobID"]
        for _ in range(300):
            job = (await client.get(f"{API}/jobs/{job_id}")).json()["Job"]
            if job["State"]["StateType"] in ("Completed", "Failed"):
                break
            await asyncio.sleep(0.1)
        assert job["State"]["StateType"] == "Failed", job["State"]
        executions = (await client.get(f"{API}/jobs/{job_id}/executions")).json()["Items"]
        assert executions and all(
            "more than an offer may carry" in e["ComputeState"]["Message"] for e in executions
        )


async def test_a_listing_of_large_specs_pages_by_bytes_and_its_tokens_miss_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from edge.orchestrator import store

    monkeypatch.setattr(store, "LIST_PAGE_BYTES", 250_000)  # two specs of ~100 kB a page
    async with (
        single_node(tmp_path) as runtime,
        httpx.AsyncClient(base_url=runtime.api_url, timeout=60) as client,
    ):
        for i in range(5):
            answer = await client.put(f"{API}/jobs", json={"Job": _job(f"big-{i}", 100_000)})
            assert answer.status_code == 200, answer.text
        seen: list[str] = []
        pages: list[int] = []
        token = ""
        while True:
            page = (
                await client.get(f"{API}/jobs", params={"limit": 100, "next_token": token})
            ).json()
            seen += [job["Name"] for job in page["Items"]]
            pages.append(len(page["Items"]))
            token = page["NextToken"]
            if not token:
                break
        assert pages == [2, 2, 1]
        assert sorted(seen) == [f"big-{i}" for i in range(5)]
        # A job's versions, the same way.
        for i in range(2):
            spec = _job("big-0", 100_000)
            spec["Meta"] = {"round": str(i)}
            assert (await client.put(f"{API}/jobs", json={"Job": spec})).status_code == 200
        versions: list[int] = []
        pages, token = [], ""
        while True:
            page = (
                await client.get(f"{API}/jobs/big-0/versions", params={"next_token": token})
            ).json()
            versions += [job["Version"] for job in page["Items"]]
            pages.append(len(page["Items"]))
            if not (token := page["NextToken"]):
                break
        assert versions == [1, 2, 3] and pages == [2, 1]
        second = (await client.get(f"{API}/jobs/big-0", params={"job_version": 2})).json()
        assert second["Job"]["Version"] == 2 and second["Job"]["Meta"]["round"] == "0"
