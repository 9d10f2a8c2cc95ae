"""`serve` logs: one readable line per record on a terminal; JSON under systemd or a pipe."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from typing import IO

import pytest

from edge.logsetup import JsonFormatter, TextFormatter, use_json


@pytest.fixture
def terminal() -> Iterator[IO[str]]:
    leader, follower = os.openpty()
    with os.fdopen(follower, "w") as stream:
        yield stream
    os.close(leader)


def test_a_terminal_gets_text_and_a_pipe_or_file_gets_json(
    terminal: IO[str], tmp_path: os.PathLike[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    assert not use_json("auto", terminal)
    with open(os.path.join(tmp_path, "log"), "w") as file:
        assert use_json("auto", file)
    read, write = os.pipe()
    with os.fdopen(write, "w") as pipe:
        assert use_json("auto", pipe)
    os.close(read)
    assert use_json("json", terminal) and not use_json("text", terminal)


def test_the_journal_gets_json_even_through_a_terminal(
    terminal: IO[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    info = os.fstat(terminal.fileno())
    monkeypatch.setenv("JOURNAL_STREAM", f"{info.st_dev}:{info.st_ino}")
    assert use_json("auto", terminal)
    monkeypatch.setenv("JOURNAL_STREAM", "1:2")  # inherited from a unit, but not our stderr
    assert not use_json("auto", terminal)


def test_text_is_one_line_with_the_ids_and_json_has_them_as_keys() -> None:
    record = logging.makeLogRecord(
        {"msg": "node lost", "levelname": "WARNING", "node_id": "n-1", "name": "bacedge"}
    )
    line = TextFormatter().format(record)
    assert "\n" not in line and line.endswith("WARN node lost node_id=n-1")
    entry = json.loads(JsonFormatter().format(record))
    assert entry["msg"] == "node lost" and entry["node_id"] == "n-1"
