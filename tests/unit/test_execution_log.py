"""A task's output log (edge/compute/logs.py): lines to disk and followers, within caps."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from edge.compute.logs import (
    FRAME_BYTES,
    FRAME_LINES,
    MAX_LINE,
    ExecutionLog,
    Line,
    read_frame,
    send_lines,
    tail_offset,
)


def read_lines(path: Path) -> list[Line]:
    """Every stored line, read as the node sends them."""
    lines: list[Line] = []
    offset, end = 0, path.stat().st_size
    while offset < end:
        frame, offset = read_frame(path, offset, end)
        lines += frame
    return lines


class Follower:
    """A reader's side: the frames it took."""

    def __init__(self) -> None:
        self.lines: list[Line] = []
        self.ended = False

    async def send(self, lines: list[Line], eof: bool) -> None:
        self.lines.extend(lines)
        self.ended = self.ended or eof


async def test_lines_go_to_disk_and_followers_and_the_last_partial_line_at_close(
    tmp_path: Path,
) -> None:
    seen = Follower()
    log = ExecutionLog(tmp_path / "output.jsonl", max_bytes=1 << 20)
    following = asyncio.create_task(log.follow(0, seen.send))
    await asyncio.sleep(0.01)
    log.write(1, b"hel")
    log.write(1, b"lo\nwor")
    log.write(2, b"oops\n")
    log.close()
    await asyncio.wait_for(following, 10)
    expected = [(1, "hello"), (2, "oops"), (1, "wor")]
    assert read_lines(tmp_path / "output.jsonl") == expected
    assert seen.lines == expected and seen.ended


def test_a_line_without_end_is_kept_in_pieces_and_never_held_whole(tmp_path: Path) -> None:
    """A task printing megabytes without a newline: the node holds at most MAX_LINE of it."""
    log = ExecutionLog(tmp_path / "output.jsonl", max_bytes=1 << 30)
    chunk = b"x" * 4096
    for _ in range(3 * MAX_LINE // len(chunk) + 1):
        log.write(1, chunk)
        assert len(log._partial[1]) <= MAX_LINE
    log.write(1, b"y" * (2 * MAX_LINE) + b"\n")  # one long line in a single write
    log.close()
    pieces = read_lines(tmp_path / "output.jsonl")
    assert all(len(text) <= MAX_LINE for _, text in pieces)
    assert "".join(text for _, text in pieces) == "x" * (3 * MAX_LINE + 4096) + "y" * (2 * MAX_LINE)


async def test_past_max_bytes_one_notice_is_written_and_the_rest_dropped(
    tmp_path: Path,
) -> None:
    seen = Follower()
    log = ExecutionLog(tmp_path / "output.jsonl", max_bytes=1000)
    following = asyncio.create_task(log.follow(0, seen.send))
    await asyncio.sleep(0.01)
    line = b"z" * 99 + b"\n"  # 100 bytes with its newline
    for _ in range(50):  # 5,000 bytes offered
        log.write(1, line)
    log.write(2, b"late\n")
    log.close()
    await asyncio.wait_for(following, 10)
    kept = read_lines(tmp_path / "output.jsonl")
    assert kept[:10] == [(1, "z" * 99)] * 10
    assert len(kept) == 11 and kept[-1][0] == 2
    assert "log cut after 1000 bytes" in kept[-1][1] and "max_log_bytes" in kept[-1][1]
    assert seen.lines == kept and log.truncated
    assert (tmp_path / "output.jsonl").stat().st_size < 2000


def _stored(path: Path, count: int, width: int = 10) -> list[Line]:
    lines = [(1 + i % 2, f"{i:0{width}d}") for i in range(count)]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return lines


def test_tail_finds_where_the_last_lines_begin_reading_backwards(tmp_path: Path) -> None:
    path = tmp_path / "output.jsonl"
    lines = _stored(path, 20_000)  # several of its 64 KiB blocks
    end = path.stat().st_size
    for tail in (1, 2, 499, 5_000, 19_999, 20_000, 50_000):
        offset = tail_offset(path, tail, end)
        frame, _ = read_frame(path, offset, end)
        assert frame[0] == lines[-min(tail, 20_000)], tail
    assert tail_offset(path, 0, end) == 0
    assert tail_offset(tmp_path / "missing.jsonl", 5, 100) == 0


def test_a_frame_is_bounded_in_lines_and_bytes_and_skips_a_damaged_line(tmp_path: Path) -> None:
    path = tmp_path / "output.jsonl"
    _stored(path, 2 * FRAME_LINES)
    frame, offset = read_frame(path, 0, path.stat().st_size)
    assert len(frame) == FRAME_LINES and offset == path.stat().st_size // 2
    wide = _stored(path, 20, width=60_000)  # 60 kB lines: the byte cap comes first
    frame, offset = read_frame(path, 0, path.stat().st_size)
    assert frame == wide[: len(frame)] and FRAME_BYTES <= offset < FRAME_BYTES + 60_100
    with path.open("a") as handle:
        handle.write('{"not": "a line"}\n[1, "after"]\n')
    tail, _ = read_frame(path, tail_offset(path, 2, path.stat().st_size), path.stat().st_size)
    assert tail == [(1, "after")]


async def test_a_stored_log_is_sent_a_frame_at_a_time_then_eof(tmp_path: Path) -> None:
    path = tmp_path / "output.jsonl"
    lines = _stored(path, 3 * FRAME_LINES + 7)
    frames: list[tuple[int, bool]] = []
    seen = Follower()

    async def send(frame: list[Line], eof: bool) -> None:
        frames.append((len(frame), eof))
        await seen.send(frame, eof)

    await send_lines(path, 0, send)
    assert frames == [(FRAME_LINES, False)] * 3 + [(7, False), (0, True)]
    assert seen.lines == lines
    frames.clear()
    await send_lines(path, 3, send)
    await send_lines(tmp_path / "none.jsonl", 3, send)  # nothing printed: only EOF
    assert frames == [(3, False), (0, True), (0, True)]


async def test_a_follower_reads_at_its_own_pace_and_misses_no_line(tmp_path: Path) -> None:
    """The task prints while the reader takes each frame (awaited): every line comes
    once, in order, whether written before it came, while it caught up or once it waited
    for more; then EOF at close."""
    seen = Follower()
    log = ExecutionLog(tmp_path / "output.jsonl", max_bytes=1 << 30)
    for i in range(2 * FRAME_LINES):
        log.write(1, f"before {i}\n".encode())
    printed = iter(range(3))

    async def send(lines: list[Line], eof: bool) -> None:
        await seen.send(lines, eof)
        await asyncio.sleep(0)
        i = next(printed, None)
        if i is not None:
            log.write(2, f"meanwhile {i}\n".encode())

    following = asyncio.create_task(log.follow(0, send))
    for _ in range(200):
        if len(seen.lines) == 2 * FRAME_LINES + 3:
            break
        await asyncio.sleep(0.01)
    assert not following.done()  # caught up: waiting for more
    log.write(1, b"live\n")
    log.close()
    await asyncio.wait_for(following, 10)
    expected = [(1, f"before {i}") for i in range(2 * FRAME_LINES)]
    expected += [(2, f"meanwhile {i}") for i in range(3)] + [(1, "live")]
    assert seen.lines == expected and seen.ended
    assert read_lines(log.path) == expected


async def test_a_follower_of_a_log_that_ends_while_it_catches_up_gets_eof(tmp_path: Path) -> None:
    seen = Follower()
    log = ExecutionLog(tmp_path / "output.jsonl", max_bytes=1 << 30)
    log.write(1, b"one\ntwo\nthree\n")

    async def send(lines: list[Line], eof: bool) -> None:
        await seen.send(lines, eof)
        log.close()

    await asyncio.wait_for(log.follow(2, send), 10)
    assert seen.lines == [(1, "two"), (1, "three")] and seen.ended


async def test_a_follower_from_the_end_gets_only_what_is_printed_after(tmp_path: Path) -> None:
    seen = Follower()
    log = ExecutionLog(tmp_path / "output.jsonl", max_bytes=1 << 30)
    log.write(1, b"old\n")
    following = asyncio.create_task(log.follow(-1, seen.send))
    await asyncio.sleep(0.01)
    log.write(2, b"new\n")
    log.close()
    await asyncio.wait_for(following, 10)
    assert seen.lines == [(2, "new")] and seen.ended


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


async def test_a_node_sends_the_next_frame_only_once_the_reader_took_the_last(
    tmp_path: Path,
) -> None:
    """Over a real nats-server: an orchestrator that asks for acknowledgements gets one
    frame at a time (a slow API client holds the node back, never a queue of the whole
    log), and a reader that leaves ends the node's sending at once."""
    from edge.compute import agent
    from edge.config import load_config
    from edge.transport.client import connect
    from edge.transport.messages import LogFrame, LogRequest, decode
    from edge.transport.server import EmbeddedNats
    from tests.integration.cluster import free_port

    server = EmbeddedNats("127.0.0.1", free_port(), tmp_path / "nats")
    await server.start()
    config = load_config(None, {"node.data_dir": str(tmp_path / "node")}, environ={})
    node = agent.ComputeNode(config, [server.url])
    node.nc = await connect([server.url], "node")
    reader = await connect([server.url], "orchestrator")
    try:
        path = tmp_path / "output.jsonl"
        lines = _stored(path, 3 * FRAME_LINES)
        sub = await reader.subscribe("logs.inbox")
        request = LogRequest(ExecutionID="e-1", Subject="logs.inbox", Acks=True)
        sending = asyncio.create_task(node._send_logs(request, path, None))
        first = await sub.next_msg(timeout=10)
        await asyncio.sleep(0.3)
        assert sub.pending_msgs == 0  # nothing more until this one is taken
        await first.respond(b"")
        second = await sub.next_msg(timeout=10)
        assert (
            decode(LogFrame, first.data).Lines + decode(LogFrame, second.data).Lines
            == (lines[: 2 * FRAME_LINES])
        )
        await sub.unsubscribe()  # the API client went away
        await second.respond(b"")
        await asyncio.wait_for(sending, 10)  # no responders: it stops, quietly
    finally:
        await reader.close()
        await node.nc.close()
        await server.stop()
