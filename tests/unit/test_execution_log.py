"""A task's output log (edge/compute/logs.py): lines to disk and followers, within caps."""

from __future__ import annotations

from pathlib import Path

from edge.compute.logs import MAX_LINE, ExecutionLog, read_lines


class Followers:
    def __init__(self) -> None:
        self.lines: list[tuple[int, str]] = []
        self.ended = False

    def __call__(self, subject: str, lines: list[tuple[int, str]], eof: bool) -> None:
        self.lines.extend(lines)
        self.ended = self.ended or eof


def test_lines_go_to_disk_and_followers_and_the_last_partial_line_at_close(
    tmp_path: Path,
) -> None:
    seen = Followers()
    log = ExecutionLog(tmp_path / "output.jsonl", seen, max_bytes=1 << 20)
    log.follow("inbox", 0)
    log.write(1, b"hel")
    log.write(1, b"lo\nwor")
    log.write(2, b"oops\n")
    log.close()
    expected = [(1, "hello"), (2, "oops"), (1, "wor")]
    assert read_lines(tmp_path / "output.jsonl") == expected
    assert seen.lines == expected and seen.ended


def test_a_line_without_end_is_kept_in_pieces_and_never_held_whole(tmp_path: Path) -> None:
    """A task printing megabytes without a newline: the node holds at most MAX_LINE of it."""
    log = ExecutionLog(tmp_path / "output.jsonl", Followers(), max_bytes=1 << 30)
    chunk = b"x" * 4096
    for _ in range(3 * MAX_LINE // len(chunk) + 1):
        log.write(1, chunk)
        assert len(log._partial[1]) <= MAX_LINE
    log.write(1, b"y" * (2 * MAX_LINE) + b"\n")  # one long line in a single write
    log.close()
    pieces = read_lines(tmp_path / "output.jsonl")
    assert all(len(text) <= MAX_LINE for _, text in pieces)
    assert "".join(text for _, text in pieces) == "x" * (3 * MAX_LINE + 4096) + "y" * (2 * MAX_LINE)


def test_past_max_bytes_one_notice_is_written_and_the_rest_dropped(tmp_path: Path) -> None:
    seen = Followers()
    log = ExecutionLog(tmp_path / "output.jsonl", seen, max_bytes=1000)
    log.follow("inbox", 0)
    line = b"z" * 99 + b"\n"  # 100 bytes with its newline
    for _ in range(50):  # 5,000 bytes offered
        log.write(1, line)
    log.write(2, b"late\n")
    log.close()
    kept = read_lines(tmp_path / "output.jsonl")
    assert kept[:10] == [(1, "z" * 99)] * 10
    assert len(kept) == 11 and kept[-1][0] == 2
    assert "log cut after 1000 bytes" in kept[-1][1] and "max_log_bytes" in kept[-1][1]
    assert seen.lines == kept and log.truncated
    assert (tmp_path / "output.jsonl").stat().st_size < 2000


async def test_a_node_keeps_no_log_of_a_finished_execution_in_memory(tmp_path: Path) -> None:
    """The live log (followers, partial lines) goes when its execution ends; its file stays
    for `job logs`. A node held one per execution it ever ran (a fleet simulator grew by
    tens of MB per 10,000 executions)."""
    import asyncio

    from edge.compute import agent
    from edge.config import load_config
    from edge.executors import build_executors
    from edge.models import Execution, Job

    config = load_config(None, {"node.data_dir": str(tmp_path)}, environ={})
    node = agent.ComputeNode(config, [])
    node.executors = build_executors(["noop"])
    node._slots = asyncio.Semaphore(1)
    job = Job.model_validate(
        {
            "ID": "j-1",
            "Type": "batch",
            "Tasks": [{"Name": "main", "Engine": {"Type": "noop", "Params": {"Stdout": "hi\n"}}}],
        }
    )
    await node.ledger.open()
    try:
        execution = Execution(ID="e-1", JobID="j-1", Job=job)
        await node._execute(execution)
        assert execution.state == agent.ComputeStateType.COMPLETED
        assert node.logs == {}
        assert read_lines(node.root / "executions" / "e-1" / "output.jsonl") == [(1, "hi")]
    finally:
        await node.ledger.close()


async def test_an_execution_waiting_for_a_slot_is_in_the_ledger_meanwhile(tmp_path: Path) -> None:
    """An accepted execution that cannot start yet (every slot taken) is written to the
    ledger as accepted while it waits, so a restart finds it; once a slot frees it runs."""
    import asyncio

    from edge.compute import agent
    from edge.config import load_config
    from edge.executors import build_executors
    from edge.models import ComputeState, Execution, Job

    config = load_config(None, {"node.data_dir": str(tmp_path)}, environ={})
    node = agent.ComputeNode(config, [])
    node.executors = build_executors(["noop"])
    node._slots = asyncio.Semaphore(1)
    job = Job.model_validate(
        {"ID": "j-1", "Type": "batch", "Tasks": [{"Name": "main", "Engine": {"Type": "noop"}}]}
    )
    await node.ledger.open()
    try:
        execution = Execution(ID="e-2", JobID="j-1", Job=job)
        execution.ComputeState = ComputeState(StateType=agent.ComputeStateType.BID_ACCEPTED)
        async with node._slots:  # another execution holds the only slot
            task = asyncio.create_task(node._execute(execution))
            for _ in range(200):
                stored = await node.ledger.get("e-2")
                if stored is not None:
                    break
                await asyncio.sleep(0.01)
            assert stored is not None and stored.state == agent.ComputeStateType.BID_ACCEPTED
            assert stored.Job is not None and stored.Job.ID == "j-1"
            assert not task.done()
        await asyncio.wait_for(task, 10)
        assert execution.state == agent.ComputeStateType.COMPLETED
        stored = await node.ledger.get("e-2")
        assert stored is not None and stored.state == agent.ComputeStateType.COMPLETED
    finally:
        await node.ledger.close()
