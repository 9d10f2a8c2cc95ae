"""The local store's supervisor against a real SeaweedFS: credentials, buckets, restarts."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import socket
from pathlib import Path

import psutil
import pytest
from minio import Minio
from minio.error import S3Error

from edge.config import Config, load_config
from edge.s3 import CREDENTIALS_FILE, SERVER_BUSY_CODES, local_store
from edge.store import LocalStore, StoreError, bucket_name_problem
from edge.store.backends import Backend, choose_backend, find_minio, launch
from edge.store.ports import free_port
from tests.store_fixture import require_weed


def _config(root: Path, port: int, **store: object) -> Config:
    overrides: dict[str, object] = {"node.data_dir": root, "store.port": port}
    overrides.update({f"store.{k}": v for k, v in store.items()})
    return load_config(None, overrides, environ={})


async def _started(root: Path, port: int | None = None, **store: object) -> LocalStore:
    require_weed()
    server = LocalStore(_config(root, port or free_port(), **store), probe_interval=0.5)
    await server.start()
    return server


async def read_back(server: LocalStore, bucket: str, key: str) -> bytes:
    """An object read after a (re)start. SeaweedFS's S3 API answers before its volume server
    has registered, with InternalError for a moment: like any client (bacedge's own S3
    inputs do), this retries while the store says it is busy (5xx), for up to 20 s."""
    for _ in range(100):
        try:
            return await asyncio.to_thread(lambda: server.client().get_object(bucket, key).read())
        except S3Error as exc:
            assert exc.code in SERVER_BUSY_CODES, exc
            await asyncio.sleep(0.2)
    raise AssertionError(f"{bucket}/{key} still unreadable after 20 s")


def _listening(pid: int) -> set[tuple[str, int]]:
    """Every TCP address the process (and its children) listens on."""
    procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    out = set()
    for proc in procs:
        for conn in proc.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN:
                out.add((conn.laddr.ip, conn.laddr.port))
    return out


async def test_first_start_writes_credentials_creates_buckets_and_refuses_bad_signatures(
    tmp_path: Path,
) -> None:
    server = await _started(tmp_path, buckets=["data", "results"])
    try:
        path = tmp_path / "store" / CREDENTIALS_FILE
        assert path.stat().st_mode & 0o777 == 0o600
        creds = json.loads(path.read_text())
        assert set(creds) == {"endpoint", "access_key", "secret_key", "region", "backend"}
        assert creds["endpoint"] == server.endpoint and creds["backend"] == "seaweedfs"
        assert creds["region"] == "us-east-1"
        endpoint = local_store(server.config)
        assert endpoint is not None and endpoint.local
        client = endpoint.client()
        names = await asyncio.to_thread(lambda: sorted(b.name for b in client.list_buckets()))
        assert names == ["data", "results"]
        assert server.health()["alive"] is True and server.health()["restarts"] == 0

        host = endpoint.host
        wrong = Minio(host, access_key=creds["access_key"], secret_key="x" * 40, secure=False)
        with pytest.raises(S3Error) as refused:
            await asyncio.to_thread(wrong.list_buckets)
        assert refused.value.code == "SignatureDoesNotMatch"
        anonymous = Minio(host, secure=False)
        with pytest.raises(S3Error) as anon:
            await asyncio.to_thread(anonymous.list_buckets)
        assert anon.value.code == "AccessDenied"
        # Nothing of SeaweedFS (master, volume, filer, admin) listens beyond localhost.
        assert server.pid is not None
        addresses = _listening(server.pid)
        assert {ip for ip, _ in addresses} == {"127.0.0.1"}, addresses
        assert ("127.0.0.1", int(server.endpoint.rsplit(":", 1)[1])) in addresses
    finally:
        await server.stop()
    assert server.pid is None


async def test_restart_reuses_credentials_and_keeps_data(tmp_path: Path) -> None:
    server = await _started(tmp_path, buckets=["data"])
    first = json.loads((tmp_path / "store" / CREDENTIALS_FILE).read_text())
    client = server.client()
    await asyncio.to_thread(client.put_object, "data", "k/v.txt", io.BytesIO(b"kept"), 4)
    await server.stop()
    server = await _started(tmp_path, buckets=["data"])
    try:
        again = json.loads((tmp_path / "store" / CREDENTIALS_FILE).read_text())
        assert again["access_key"] == first["access_key"]
        assert again["secret_key"] == first["secret_key"]
        assert await read_back(server, "data", "k/v.txt") == b"kept"
    finally:
        await server.stop()


async def test_a_killed_server_is_restarted_with_its_data(tmp_path: Path) -> None:
    server = await _started(tmp_path, buckets=["data"])
    try:
        client = server.client()
        await asyncio.to_thread(client.put_object, "data", "a.txt", io.BytesIO(b"abc"), 3)
        pid = server.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        for _ in range(200):
            await asyncio.sleep(0.1)
            health = server.health()
            if health["restarts"] >= 1 and health["alive"]:
                break
        health = server.health()
        assert health["alive"] and health["restarts"] == 1, health
        assert "SIGKILL" in health["last_error"]
        assert server.pid not in (None, pid)
        assert await read_back(server, "data", "a.txt") == b"abc"
    finally:
        await server.stop()


async def test_two_stores_run_side_by_side(tmp_path: Path) -> None:
    one = await _started(tmp_path / "one", buckets=["first"])
    try:
        two = await _started(tmp_path / "two", buckets=["second"])
        try:
            assert one.endpoint != two.endpoint
            a = await asyncio.to_thread(lambda: [b.name for b in one.client().list_buckets()])
            b = await asyncio.to_thread(lambda: [b.name for b in two.client().list_buckets()])
            assert (a, b) == (["first"], ["second"])
            assert one.pid is not None and two.pid is not None
            assert not _listening(one.pid) & _listening(two.pid)
        finally:
            await two.stop()
    finally:
        await one.stop()


async def test_any_address_exposes_only_s3(tmp_path: Path) -> None:
    """host 0.0.0.0: S3 on every address (through bacedge), SeaweedFS still on 127.0.0.1."""
    port = free_port()
    server = await _started(tmp_path, port, host="0.0.0.0", buckets=["data"])
    try:
        assert server.endpoint == f"http://127.0.0.1:{port}"
        assert server.pid is not None
        assert {ip for ip, _ in _listening(server.pid)} == {"127.0.0.1"}
        outside = {
            (c.laddr.ip, c.laddr.port)
            for c in psutil.Process().net_connections(kind="tcp")
            if c.status == psutil.CONN_LISTEN
        }
        assert ("0.0.0.0", port) in outside
        data = b"x" * (6 << 20)  # multipart, through the forwarder
        client = server.client()
        await asyncio.to_thread(client.put_object, "data", "big", io.BytesIO(data), len(data))
        body = await asyncio.to_thread(lambda: client.get_object("data", "big").read())
        assert body == data
    finally:
        await server.stop()


async def test_a_taken_port_is_a_one_line_error(tmp_path: Path) -> None:
    require_weed()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = LocalStore(_config(tmp_path, port))
        with pytest.raises(StoreError) as error:
            await server.start()
    assert f"127.0.0.1:{port}: the port is in use" in str(error.value)
    assert "--store-port" in str(error.value)


async def test_invalid_bucket_names_in_config_are_refused(tmp_path: Path) -> None:
    server = LocalStore(_config(tmp_path, free_port(), buckets=["ok-bucket", "Bad_Bucket"]))
    with pytest.raises(StoreError, match="'Bad_Bucket' is not a valid bucket name"):
        await server.start()


def test_backend_choice_errors_say_what_to_install() -> None:
    with pytest.raises(StoreError, match="unknown \\[store\\] backend 'ceph'"):
        choose_backend("ceph")
    with pytest.raises(StoreError, match="\\[store\\] binary /nonexistent/minio is not"):
        choose_backend("auto", "/nonexistent/minio")
    if find_minio() is None:
        with pytest.raises(StoreError, match="no minio binary is on PATH"):
            choose_backend("minio")
    require_weed()
    assert choose_backend("auto").name in ("minio", "seaweedfs")
    assert choose_backend("seaweedfs").name == "seaweedfs"


def test_command_lines_keep_secrets_out_of_argv_and_services_local(tmp_path: Path) -> None:
    ports = {name: 20000 + i for i, name in enumerate(Backend("seaweedfs", "weed").internal_ports)}
    weed = launch(
        Backend("seaweedfs", "/bin/weed"),
        tmp_path,
        "127.0.0.1",
        9000,
        ports,
        "AK",
        "SECRET",
        "us-east-1",
        "ADMINPW",
    )
    argv = " ".join(weed.argv)
    for flag in (
        "-master.telemetry=false",
        "-webdav=false",
        "-admin.ui=false",
        "-ip.bind=127.0.0.1",
        "-s3.port=9000",
    ):
        assert flag in argv
    assert "SECRET" not in argv and "ADMINPW" not in argv
    assert weed.env == {"AWS_ACCESS_KEY_ID": "AK", "AWS_SECRET_ACCESS_KEY": "SECRET"}
    assert "admin.password=ADMINPW" in "".join(weed.files.values())
    minio = launch(
        Backend("minio", "/usr/bin/minio"),
        tmp_path,
        "0.0.0.0",
        9000,
        {"console": 9999},
        "AK",
        "SECRET",
        "eu-west-1",
        "unused",
    )
    assert minio.argv[1:5] == ["server", "--quiet", "--address", "0.0.0.0:9000"]
    assert "127.0.0.1:9999" in minio.argv and "SECRET" not in " ".join(minio.argv)
    assert minio.env["MINIO_ROOT_PASSWORD"] == "SECRET" and minio.env["MINIO_BROWSER"] == "off"


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("data", True),
        ("my-results.2024", True),
        ("ab", False),
        ("a" * 64, False),
        ("Upper", False),
        ("under_score", False),
        ("-dash", False),
        ("two..dots", False),
        ("192.168.1.1", False),
        ("xn--bucket", False),
    ],
)
def test_bucket_names_follow_s3_rules(name: str, ok: bool) -> None:
    assert (bucket_name_problem(name) is None) is ok


async def test_the_store_never_picks_a_port_this_nodes_own_servers_listen_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store starts first and picks free ports; the API, NATS and results servers bind
    theirs later. A pick that equals one of them made `serve --store` fail at the API with
    "address already in use" (seen in CI). Here the port picker offers those first."""
    require_weed()
    from edge.store import server as store_server

    api, nats = free_port(), free_port()
    config = load_config(
        None,
        {"node.data_dir": tmp_path, "store.port": 0, "api.port": api, "nats.port": nats},
        environ={},
    )
    offered = [api, nats]
    real = store_server.free_port

    def picker(host: str = "127.0.0.1") -> int:
        return offered.pop(0) if offered else real(host)

    monkeypatch.setattr(store_server, "free_port", picker)
    server = LocalStore(config, probe_interval=0.5)
    await server.start()
    try:
        assert not offered, "the picker was asked and its first answers refused"
        assert server.pid is not None
        ports = {port for _, port in _listening(server.pid)}
        assert api not in ports and nats not in ports
        assert f":{api}" not in server.endpoint and f":{nats}" not in server.endpoint
    finally:
        await server.stop()
