"""A node's update batches against the size of a NATS message."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from edge.models import ComputeStateType, RunOutput
from edge.transport.messages import ExecutionUpdate, UpdateBatch, decode, encode, updates_message
from tests.inprocess import single_node

API = "/api/v1/orchestrator"


def _update(sequence: int, stdout: str = "", stderr: str = "") -> ExecutionUpdate:
    return ExecutionUpdate(
        Sequence=sequence,
        ExecutionID=f"e-{sequence}",
        JobID="j-1",
        NodeID="n-1",
        State=ComputeStateType.COMPLETED,
        RunOutput=RunOutput(Stdout=stdout, Stderr=stderr),
    )


def test_a_batch_that_fits_is_sent_as_it_always_was() -> None:
    updates = [_update(i, "hello") for i in range(3)]
    data, count = updates_message("n-1", updates, 1 << 20)
    assert data == encode(UpdateBatch(NodeID="n-1", Updates=updates)) and count == 3


def test_a_batch_too_large_goes_in_parts_and_an_update_too_large_is_cut() -> None:
    updates = [_update(1, "a" * 600_000), _update(2, "b" * 600_000), _update(3, "c")]
    data, count = updates_message("n-1", updates, 1 << 20)
    assert count == 1 and len(data) <= 1 << 20
    assert decode(UpdateBatch, data).Updates == updates[:1]
    data, count = updates_message("n-1", updates[1:], 1 << 20)
    assert count == 2 and decode(UpdateBatch, data).Updates == updates[1:]
    # Escaped control characters: 6 bytes each on the wire, 2 MiB of them on each stream.
    huge = _update(4, "\x01" * (1 << 20), "\x02" * (1 << 20))
    data, count = updates_message("n-1", [huge, _update(5)], 1 << 20)
    assert len(data) <= 1 << 20
    sent, *rest = decode(UpdateBatch, data).Updates
    assert count == 1 + len(rest) and rest in ([], [_update(5)])
    assert sent.RunOutput is not None and huge.RunOutput is not None
    assert sent.RunOutput.StdoutTruncated and sent.RunOutput.StderrTruncated
    assert huge.RunOutput.Stdout.startswith(sent.RunOutput.Stdout) and sent.RunOutput.Stdout
    assert sent.model_copy(update={"RunOutput": None}) == huge.model_copy(
        update={"RunOutput": None}
    )


async def test_tasks_that_print_megabytes_complete_instead_of_wedging_the_node(
    tmp_path: Path,
) -> None:
    """Four tasks printing 1 MiB each of control characters (6 MiB each on the wire):
    their Completed updates outgrew the server's 8 MiB max_payload together; the batch
    was refused at every try and the node reported nothing more, ever."""
    job = {
        "Name": "chatty",
        "Type": "batch",
        "Count": 4,
        "Tasks": [
            {"Name": "main", "Engine": {"Type": "noop", "Params": {"Stdout": "\x01" * (1 << 20)}}}
        ],
    }
    async with (
        single_node(tmp_path) as runtime,
        httpx.AsyncClient(base_url=runtime.api_url, timeout=60) as client,
    ):
        job_id = (await client.put(f"{API}/jobs", json={"Job": job})).json()["JobID"]
        for _ in range(300):
            state = (await client.get(f"{API}/jobs/{job_id}")).json()["Job"]["State"]
            if state["StateType"] in ("Completed", "Failed"):
                break
            await asyncio.sleep(0.1)
        assert state["StateType"] == "Completed", state
