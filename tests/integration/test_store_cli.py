"""`bacedge store ...` against a real `bacedge serve --store` (SeaweedFS), and the store's
health in `bacedge agent alive`."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.store_fixture import BACEDGE, RunningStore, start_store

from .cluster import Cluster, wait_until

pytestmark = pytest.mark.integration


def store_cli(
    store: RunningStore, *args: str, timeout: float = 120.0
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*BACEDGE, "store", *args],
        capture_output=True,
        text=True,
        env=store.env(),
        timeout=timeout,
    )


def ok(store: RunningStore, *args: str) -> str:
    result = store_cli(store, *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def fails(store: RunningStore, *args: str) -> str:
    """The one-line error of a command that must fail."""
    result = store_cli(store, *args)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0]


def test_buckets_objects_and_folders_round_trip(s3_store: RunningStore, tmp_path: Path) -> None:
    assert ok(s3_store, "mb", "cli-round-trip") == "Created bucket s3://cli-round-trip\n"
    assert "s3://cli-round-trip" in ok(s3_store, "ls")
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("alpha\n")
    (src / "sub" / "b.bin").write_bytes(bytes(range(256)) * 40_000)  # 10 MB: multipart

    out = ok(s3_store, "cp", str(src / "a.txt"), "s3://cli-round-trip/one/")
    assert out.startswith(f"upload: {src / 'a.txt'} -> s3://cli-round-trip/one/a.txt")
    ok(s3_store, "cp", "--recursive", str(src), "s3://cli-round-trip/tree")
    listing = json.loads(ok(s3_store, "ls", "-r", "s3://cli-round-trip/tree", "--output", "json"))
    assert {i["key"]: i["size"] for i in listing} == {
        "tree/a.txt": 6,
        "tree/sub/b.bin": 10_240_000,
    }
    table = ok(s3_store, "ls", "s3://cli-round-trip/")
    assert "PRE   one/" in table and "PRE   tree/" in table

    ok(s3_store, "cp", "s3://cli-round-trip/one/a.txt", str(tmp_path))
    assert (tmp_path / "a.txt").read_text() == "alpha\n"
    ok(s3_store, "cp", "-r", "s3://cli-round-trip/tree", str(tmp_path / "back"))
    assert (tmp_path / "back" / "sub" / "b.bin").read_bytes() == (
        src / "sub" / "b.bin"
    ).read_bytes()
    assert not list(tmp_path.rglob("*.bacedge-part"))

    assert ok(s3_store, "rm", "s3://cli-round-trip/one/a.txt") == (
        "Removed s3://cli-round-trip/one/a.txt\n"
    )
    assert "Removed 2 objects" in ok(s3_store, "rm", "-r", "s3://cli-round-trip/tree/")
    assert json.loads(ok(s3_store, "ls", "-r", "s3://cli-round-trip", "--output", "json")) == []

    status = json.loads(ok(s3_store, "status", "--output", "json"))
    assert status["alive"] is True and status["backend"] == "seaweedfs"
    assert status["endpoint"] == s3_store.url
    assert "cli-round-trip" in {b["name"] for b in status["buckets"]}
    table = ok(s3_store, "status")
    assert "Alive    = yes" in table and "Backend  = seaweedfs" in table


def test_bad_input_gets_one_line_errors(s3_store: RunningStore, tmp_path: Path) -> None:
    url = s3_store.url
    assert "invalid bucket name 'Bad_Name'" in fails(s3_store, "mb", "Bad_Name")
    assert "invalid bucket name 'ab'" in fails(s3_store, "ls", "s3://ab/x")
    assert f"s3://data already exists at {url}" in fails(s3_store, "mb", "data")
    assert f"s3://no-such-bucket not found at {url}" in fails(s3_store, "ls", "s3://no-such-bucket")
    assert f"s3://data/no/such/key not found at {url}" in fails(
        s3_store, "cp", "s3://data/no/such/key", str(tmp_path)
    )
    assert f"s3://data/no/such/key not found at {url}" in fails(
        s3_store, "rm", "s3://data/no/such/key"
    )
    (tmp_path / "f.txt").write_text("x")
    assert f"s3://no-such-bucket not found at {url}" in fails(
        s3_store, "cp", str(tmp_path / "f.txt"), "s3://no-such-bucket/f.txt"
    )
    assert "no such file or directory" in fails(
        s3_store, "cp", str(tmp_path / "missing.txt"), "s3://data/x"
    )
    assert "is a directory: pass --recursive" in fails(s3_store, "cp", str(tmp_path), "s3://data/")
    ok(s3_store, "cp", str(tmp_path / "f.txt"), "s3://data/f.txt")
    assert "directory /nonexistent/dir does not exist" in fails(
        s3_store, "cp", "s3://data/f.txt", "/nonexistent/dir/f.txt"
    )
    assert "one of SRC and DST must be an s3:// address" in fails(
        s3_store, "cp", str(tmp_path / "f.txt"), str(tmp_path / "g.txt")
    )
    assert "names a prefix, not an object" in fails(s3_store, "rm", "s3://data/")


def test_credentials_are_masked_unless_asked(s3_store: RunningStore) -> None:
    secret = s3_store.endpoint.secret_key
    table = ok(s3_store, "credentials")
    assert f"Endpoint   = {s3_store.url}" in table
    assert f"Access key = {s3_store.endpoint.access_key}" in table
    assert "Secret key = ********" in table and secret not in table
    shown = json.loads(ok(s3_store, "credentials", "--show-secret", "--output", "json"))
    assert shown["secret_key"] == secret and shown["backend"] == "seaweedfs"


class SlowUplink:
    """A TCP proxy in front of the store that forwards what clients send at `rate` bytes/s,
    like an edge device's uplink: an upload through it is still running when Ctrl-C comes,
    however fast this machine's disk and loopback are (CI once finished a 4 GiB upload
    straight to the store before the test's Ctrl-C)."""

    def __init__(self, port: int, rate: int) -> None:
        self.port, self.rate = port, rate
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}"
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
                upstream = socket.create_connection(("127.0.0.1", self.port))
            except OSError:
                return
            self.sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, slow: bool) -> None:
        try:
            while data := source.recv(64 << 10):
                sink.sendall(data)
                if slow:
                    time.sleep(len(data) / self.rate)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.server.close()
        for end in self.sockets:
            with contextlib.suppress(OSError):
                end.close()


def test_ctrl_c_during_an_upload_leaves_no_object(s3_store: RunningStore, tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    with big.open("wb") as handle:
        handle.truncate(1 << 30)  # sparse: 200 parts, over a minute at the uplink's rate
    client = s3_store.client()
    uplink = SlowUplink(s3_store.port, rate=16 << 20)
    endpoint = s3_store.endpoint
    env = {
        **s3_store.env(),
        "AWS_ACCESS_KEY_ID": endpoint.access_key,
        "AWS_SECRET_ACCESS_KEY": endpoint.secret_key,
        "AWS_REGION": endpoint.region or "us-east-1",
    }
    proc = subprocess.Popen(
        [*BACEDGE, "store", "cp", "--endpoint", uplink.url, str(big), "s3://data/interrupted.bin"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        # As from a terminal: a shell running this suite in the background (`cmd &`)
        # starts it with SIGINT ignored, and the CLI would inherit that.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )

    def uploading() -> bool:
        uploads = client._list_multipart_uploads("data").uploads
        return any(u.object_name == "interrupted.bin" for u in uploads)

    try:
        wait_until(uploading, 60, "the multipart upload to start")
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        uplink.close()
    assert proc.returncode == 130, err
    assert "Cancelled" in err
    names = [o.object_name for o in client.list_objects("data", recursive=True)]
    assert "interrupted.bin" not in names
    assert not uploading()  # the multipart upload was aborted, not left behind


def test_status_says_when_the_store_is_down(tmp_path: Path) -> None:
    store = start_store(tmp_path)
    store.stop()
    result = store_cli(store, "status")
    assert result.returncode == 1
    assert "Alive    = no" in result.stdout
    assert f"the local store at {store.url} is not reachable" in result.stdout
    line = fails(store, "ls")
    assert f"the local store at {store.url} is not reachable (connection refused)" in line


def test_no_local_store_is_a_one_line_error(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACEDGE_")}
    result = subprocess.run(
        [*BACEDGE, "store", "status", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 1
    assert (
        result.stderr.startswith("Error: no local store here") and "serve --store" in result.stderr
    )


def test_serve_store_port_taken_is_one_line(s3_store: RunningStore, tmp_path: Path) -> None:
    port = str(s3_store.port)
    result = subprocess.run(
        [*BACEDGE, "serve", "--store", "--data-dir", str(tmp_path), "--store-port", port],
        capture_output=True,
        text=True,
        env=s3_store.env(),
        timeout=60,
    )
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: the local store cannot listen on 127.0.0.1:")
    assert "the port is in use" in last


def test_agent_alive_shows_the_store(cluster: Cluster) -> None:
    cluster.orchestrator(True, store=True)
    answer = json.loads(cluster.cli("agent", "alive", "--output", "json", check=True).stdout)
    assert answer["Status"] == "OK"
    store = answer["Store"]
    assert store["alive"] is True and store["backend"] == "seaweedfs"
    assert store["endpoint"] == f"http://127.0.0.1:{cluster.store_port}"
    assert store["restarts"] == 0 and store["last_error"] == ""
    table = cluster.cli("agent", "alive", check=True).stdout
    assert table.startswith("Status: OK\nStore:  alive since ")
    assert f"(seaweedfs at http://127.0.0.1:{cluster.store_port}, 0 restarts)" in table
    # A compute node in the same process finds the store's credentials file.
    creds = cluster.root / "orchestrator" / "store" / "credentials.json"
    assert json.loads(creds.read_text())["endpoint"] == store["endpoint"]
    assert oct(creds.stat().st_mode & 0o777) == "0o600"
