"""Input sources against real files and a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import base64
import io
import socket
import tarfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from edge.models import InputSource
from edge.storage import build_input_providers, prepare_inputs
from edge.storage.base import InputError, StoragePolicy
from edge.storage.inline import SMALL, InlineProvider, decode_data_uri
from edge.storage.local import LocalProvider
from edge.storage.url import UrlProvider


def source(kind: str, target: str = "/inputs/data", alias: str = "", **params: Any) -> InputSource:
    return InputSource.model_validate(
        {"Source": {"Type": kind, "Params": params}, "Target": target, "Alias": alias}
    )


# -- data: URIs and inline --------------------------------------------------------------


@pytest.mark.parametrize(
    "uri, media, data",
    [
        ("data:;base64,aGVsbG8=", "text/plain", b"hello"),
        ("data:text/csv;base64,aGVsbG8", "text/csv", b"hello"),  # padding left off
        ("data:application/octet-stream;base64,-_8=", "application/octet-stream", b"\xfb\xff"),
        ("data:,a%20b%2Cc", "text/plain", b"a b,c"),
        ("DATA:text/plain;charset=utf-8,caf%C3%A9", "text/plain", "café".encode()),
        ("data:;base64,aGVs%0AbG8=", "text/plain", b"hello"),
    ],
)
def test_decode_data_uri(uri: str, media: str, data: bytes) -> None:
    assert decode_data_uri(uri) == (media, data)


@pytest.mark.parametrize(
    "uri, reason",
    [
        ("http://x/y", "does not start with 'data:'"),
        ("data:abc", "no ','"),
        ("data:;base64,@@", "malformed"),
    ],
)
def test_decode_data_uri_errors(uri: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        decode_data_uri(uri)


async def test_inline_writes_a_file_named_after_the_target(tmp_path: Path) -> None:
    src = source("inline", "/inputs/greeting.txt", URL="data:;base64,aGVsbG8=")
    mounted = await InlineProvider().prepare(src, tmp_path, StoragePolicy())
    assert mounted.target == "/inputs/greeting.txt"
    assert mounted.host_path.name == "greeting.txt"
    assert mounted.host_path.read_bytes() == b"hello"
    assert mounted.host_path.is_relative_to(tmp_path)


async def test_inline_file_named_after_the_alias_when_target_is_a_directory(
    tmp_path: Path,
) -> None:
    src = source("inline", "/", alias="notes", URL="data:,x")
    mounted = await InlineProvider().prepare(src, tmp_path, StoragePolicy())
    assert mounted.host_path.name == "notes"


async def test_inline_inputs_with_the_same_name_do_not_collide(tmp_path: Path) -> None:
    first = await InlineProvider().prepare(
        source("inline", "/a/x", URL="data:,1"), tmp_path, StoragePolicy()
    )
    second = await InlineProvider().prepare(
        source("inline", "/b/x", URL="data:,2"), tmp_path, StoragePolicy()
    )
    assert first.host_path != second.host_path
    assert (first.host_path.read_text(), second.host_path.read_text()) == ("1", "2")


@pytest.mark.parametrize("size", [5, 200_000])  # written on the loop, and on a thread
async def test_staged_inline_files_are_readable_by_a_containers_user(
    tmp_path: Path, size: int
) -> None:
    """0644 whatever the node's umask (a hardened unit runs with 0077): a rootless
    container's user is not the node's."""
    import os
    import stat

    data = base64.b64encode(b"x" * size).decode()
    sources = [source("inline", "/inputs/blob", URL=f"data:;base64,{data}")]
    old = os.umask(0o077)
    try:
        mounted = await prepare_inputs(
            sources, tmp_path / "staging", StoragePolicy(), build_input_providers()
        )
    finally:
        os.umask(old)
    assert mounted[0].host_path.read_bytes() == b"x" * size
    assert stat.S_IMODE(mounted[0].host_path.stat().st_mode) == 0o644


async def test_small_inline_files_can_be_held_in_memory_and_written_later(
    tmp_path: Path,
) -> None:
    """For an executor that reads inputs itself: a small inline file stays in memory (no
    staging folder at all); a tarball or a large file is prepared on disk as ever; written
    later, a held file lands at its planned path, readable (0644) under umask 0077."""
    import os
    import stat

    from edge.workspace import write_held

    big = base64.b64encode(b"y" * (SMALL + 1)).decode()
    sources = [
        source("inline", "/inputs/small.txt", URL="data:;base64,aGVsbG8="),
        source("inline", "/inputs/big", URL=f"data:;base64,{big}"),
        source("inline", "/inputs/tree", URL=_tarball({"a.txt": b"A"})),
    ]
    staging = tmp_path / "staging"
    mounted = await prepare_inputs(
        sources, staging, StoragePolicy(), build_input_providers(), hold_inline=True
    )
    small, large, tree = mounted
    assert small.content == b"hello" and not small.host_path.exists()
    assert small.host_path.is_relative_to(staging) and small.host_path.name == "small.txt"
    assert large.content is None and large.host_path.read_bytes() == b"y" * (SMALL + 1)
    assert tree.content is None and (tree.host_path / "a.txt").read_bytes() == b"A"
    old = os.umask(0o077)
    try:
        written = write_held(mounted)
    finally:
        os.umask(old)
    assert written[0].content is None and written[0].host_path == small.host_path
    assert small.host_path.read_bytes() == b"hello"
    assert stat.S_IMODE(small.host_path.stat().st_mode) == 0o644
    assert written[1:] == [large, tree]
    # Bad data is refused the same way whether held or written.
    bad = [source("inline", "/x", URL="data:;base64,@@")]
    with pytest.raises(InputError, match="malformed"):
        await prepare_inputs(bad, staging, StoragePolicy(), build_input_providers(), True)


def _tarball(members: dict[str, bytes]) -> str:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return "data:application/gzip;base64," + base64.b64encode(buffer.getvalue()).decode()


async def test_inline_gzip_tarball_becomes_a_directory(tmp_path: Path) -> None:
    uri = _tarball({"dir/a.txt": b"A", "b.txt": b"B"})
    mounted = await InlineProvider().prepare(
        source("inline", "/src", URL=uri), tmp_path, StoragePolicy()
    )
    assert mounted.target == "/src"
    assert (mounted.host_path / "dir" / "a.txt").read_bytes() == b"A"
    assert (mounted.host_path / "b.txt").read_bytes() == b"B"


async def test_inline_tarball_cannot_escape(tmp_path: Path) -> None:
    uri = _tarball({"../evil.txt": b"x"})
    with pytest.raises(InputError, match="would land outside the folder"):
        await InlineProvider().prepare(source("inline", "/src", URL=uri), tmp_path, StoragePolicy())
    assert not (tmp_path.parent / "evil.txt").exists()


async def test_inline_bad_uri_is_reported(tmp_path: Path) -> None:
    src = source("inline", "/inputs/x", URL="https://example.invalid/x")
    expected = "inline input for /inputs/x has an invalid URL (it does not start with 'data:')"
    assert InlineProvider().problems(src, StoragePolicy()) == [
        expected + ": set Source.Params.URL to a data: URI such as data:;base64,aGVsbG8="
    ]
    with pytest.raises(InputError, match=r"has an invalid URL"):
        await InlineProvider().prepare(src, tmp_path, StoragePolicy())


async def test_inline_over_the_size_cap(tmp_path: Path) -> None:
    src = source("inline", "/x", URL="data:,0123456789")
    policy = StoragePolicy(max_download_bytes=4)
    assert "over this node's limit of 4" in InlineProvider().problems(src, policy)[0]
    with pytest.raises(InputError, match="over this node's limit"):
        await InlineProvider().prepare(src, tmp_path, policy)


# -- local ------------------------------------------------------------------------------


@pytest.fixture
def allowed(tmp_path: Path) -> Path:
    folder = tmp_path / "allowed"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "file.txt").write_text("data")
    return folder


async def test_local_allowed_path_is_used_in_place(tmp_path: Path, allowed: Path) -> None:
    policy = StoragePolicy(allowed_local_paths=[allowed])
    src = source("localDirectory", "/data", SourcePath=str(allowed / "sub"))
    assert LocalProvider().problems(src, policy) == []
    mounted = await LocalProvider().prepare(src, tmp_path / "staging", policy)
    assert mounted.host_path == (allowed / "sub").resolve()
    assert (mounted.target, mounted.read_write) == ("/data", False)
    assert not (tmp_path / "staging").exists()  # nothing copied


async def test_local_read_write_flag(tmp_path: Path, allowed: Path) -> None:
    policy = StoragePolicy(allowed_local_paths=[allowed])
    for value in (True, "true", "yes"):
        src = source("local", "/data", SourcePath=str(allowed), readwrite=value)
        assert (await LocalProvider().prepare(src, tmp_path, policy)).read_write is True


async def test_local_path_outside_the_allow_list(tmp_path: Path, allowed: Path) -> None:
    policy = StoragePolicy(allowed_local_paths=[allowed])
    outside = tmp_path / "secret"
    outside.mkdir()
    src = source("local", "/data", SourcePath=str(outside))
    message = (
        f"local path {outside} is not allowed on this node: add it to [compute] allowed_local_paths"
    )
    assert LocalProvider().problems(src, policy) == [message]
    with pytest.raises(InputError) as caught:
        await LocalProvider().prepare(src, tmp_path, policy)
    assert str(caught.value) == message


async def test_local_symlink_out_of_the_allow_list_is_refused(
    tmp_path: Path, allowed: Path
) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_text("no")
    (allowed / "link").symlink_to(outside)
    (allowed / "sibling").mkdir()
    policy = StoragePolicy(allowed_local_paths=[allowed / "sibling"])
    lookalike = source("local", "/d", SourcePath=str(allowed / "sibling-not"))
    assert "is not allowed" in LocalProvider().problems(lookalike, policy)[0]
    policy = StoragePolicy(allowed_local_paths=[allowed])
    with pytest.raises(InputError, match="is not allowed on this node"):
        await LocalProvider().prepare(
            source("local", "/d", SourcePath=str(allowed / "link")), tmp_path, policy
        )


async def test_local_missing_and_relative_paths(tmp_path: Path, allowed: Path) -> None:
    policy = StoragePolicy(allowed_local_paths=[allowed])
    missing = source("local", "/d", SourcePath=str(allowed / "nope"))
    assert "does not exist on this node" in LocalProvider().problems(missing, policy)[0]
    relative = source("local", "/d", SourcePath="allowed/sub")
    assert "is relative" in LocalProvider().problems(relative, policy)[0]
    assert "has no SourcePath" in LocalProvider().problems(source("local", "/d"), policy)[0]


# -- URL downloads against a real server ------------------------------------------------


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/data.csv":
            self._send(200, b"a,b\n1,2\n")
        elif self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/files/final%20name.txt")
            self.end_headers()
        elif self.path == "/files/final%20name.txt":
            self._send(200, b"moved")
        elif self.path == "/big-unsized":  # no Content-Length: the body ends at close
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"z" * 8192)
        else:
            self._send(404, b"not here")

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


async def test_url_download_lands_under_the_target(tmp_path: Path, server: str) -> None:
    src = source("urlDownload", "/inputs", URL=f"{server}/data.csv")
    assert UrlProvider().problems(src, StoragePolicy()) == []
    mounted = await UrlProvider().prepare(src, tmp_path, StoragePolicy())
    assert mounted.target == "/inputs"
    assert (mounted.host_path / "data.csv").read_bytes() == b"a,b\n1,2\n"
    assert mounted.host_path.is_relative_to(tmp_path)


async def test_url_download_follows_redirects(tmp_path: Path, server: str) -> None:
    src = source("url", "/inputs", URL=f"{server}/redirect")
    mounted = await UrlProvider().prepare(src, tmp_path, StoragePolicy())
    assert (mounted.host_path / "final name.txt").read_text() == "moved"


async def test_url_http_error(tmp_path: Path, server: str) -> None:
    src = source("urlDownload", "/inputs", URL=f"{server}/missing.csv")
    with pytest.raises(InputError) as caught:
        await UrlProvider().prepare(src, tmp_path, StoragePolicy())
    assert str(caught.value) == (
        f"download of {server}/missing.csv failed: HTTP 404 Not Found: check the URL"
    )
    assert list(tmp_path.iterdir()) == []  # nothing half-made left behind


async def test_url_connection_refused(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    src = source("urlDownload", "/inputs", URL=f"http://127.0.0.1:{port}/x.bin")
    with pytest.raises(InputError, match=rf"cannot connect to 127.0.0.1:{port} .*can reach it"):
        await UrlProvider().prepare(src, tmp_path, StoragePolicy())


@pytest.mark.parametrize("path", ["/data.csv", "/big-unsized"])
async def test_url_size_cap(tmp_path: Path, server: str, path: str) -> None:
    src = source("urlDownload", "/inputs", URL=f"{server}{path}")
    with pytest.raises(InputError, match="larger than this node's limit"):
        await UrlProvider().prepare(src, tmp_path, StoragePolicy(max_download_bytes=5))
    assert list(tmp_path.iterdir()) == []


def test_url_problems() -> None:
    provider = UrlProvider()
    assert (
        "not an http(s) address"
        in provider.problems(source("url", URL="ftp://h/x"), StoragePolicy())[0]
    )
    assert "has no URL" in provider.problems(source("url"), StoragePolicy())[0]
    offline = StoragePolicy(allow_network=False)
    assert (
        "does not download inputs" in provider.problems(source("url", URL="http://h/x"), offline)[0]
    )


# -- the registry and prepare_inputs ----------------------------------------------------


def test_providers_by_lowercase_type() -> None:
    providers = build_input_providers()
    assert {"inline", "local", "localdirectory", "urldownload", "url"} <= set(providers)
    assert providers["local"] is providers["localdirectory"]


async def test_prepare_inputs_in_order(tmp_path: Path, allowed: Path, server: str) -> None:
    sources = [
        source("inline", "/a.txt", URL="data:,A"),
        source("LOCAL", "/b", SourcePath=str(allowed)),
        source("urlDownload", "/c", URL=f"{server}/data.csv"),
    ]
    policy = StoragePolicy(allowed_local_paths=[allowed])
    mounted = await prepare_inputs(sources, tmp_path / "staging", policy, build_input_providers())
    assert [m.target for m in mounted] == ["/a.txt", "/b", "/c"]
    assert mounted[0].host_path.read_text() == "A"


async def test_prepare_inputs_unknown_type(tmp_path: Path) -> None:
    sources = [source("inline", "/a", URL="data:,A"), source("ipfs", "/b", CID="Qm")]
    with pytest.raises(InputError) as caught:
        await prepare_inputs(sources, tmp_path, StoragePolicy(), build_input_providers())
    assert str(caught.value) == (
        "unknown input source type 'ipfs': supported are inline, local, urlDownload"
        # (the S3 types join the list on nodes built with a config)
    )
    assert list(tmp_path.iterdir()) == []  # checked before anything was prepared


async def test_prepare_inputs_needs_a_target(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="has no Target"):
        await prepare_inputs(
            [source("inline", "", URL="data:,A")],
            tmp_path,
            StoragePolicy(),
            build_input_providers(),
        )


# -- S3 against a store that is still starting ------------------------------------------


class StartingStore(BaseHTTPRequestHandler):
    """Answers like a store that just restarted (seaweedfs does this for a moment): 500
    InternalError first, then the object. `busy` is how many requests fail."""

    busy = 0
    body = b"survives\n"

    def do_GET(self) -> None:
        if self.path.split("?")[0] != "/data/in.txt":
            return self._send(404, _s3_error("NoSuchKey"), "application/xml")
        if StartingStore.busy > 0:
            StartingStore.busy -= 1
            return self._send(500, _s3_error("InternalError"), "application/xml")
        self._send(200, self.body, "text/plain", ETag='"e1"')

    def _send(self, status: int, body: bytes, kind: str, **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def _s3_error(code: str) -> bytes:
    return (
        f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code>"
        "<Message>We encountered an internal error, please try again.</Message>"
        "<Resource>/data/in.txt</Resource><RequestId>1</RequestId></Error>"
    ).encode()


@pytest.fixture
def starting_store() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), StartingStore)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


async def test_s3_input_waits_out_a_store_answering_internal_error(
    tmp_path: Path, starting_store: str
) -> None:
    """CI found this: a job submitted while the local store restarted failed on the
    store's first answer, 500 InternalError, as though the object were broken."""
    from edge.config import Config
    from edge.storage.cache import ObjectCache
    from edge.storage.s3 import S3Provider

    StartingStore.busy = 2
    config = Config.model_validate({"node": {"data_dir": str(tmp_path)}})
    provider = S3Provider(config, ObjectCache(tmp_path / "cache", 0))
    src = source(
        "s3",
        "/inputs/in.txt",
        Bucket="data",
        Key="in.txt",
        Endpoint=starting_store,
        Region="us-east-1",
    )
    mounted = await provider.prepare(src, tmp_path / "staging", StoragePolicy(allow_network=True))
    assert (mounted.host_path / "in.txt").read_bytes() == b"survives\n"
    assert StartingStore.busy == 0
    missing = source(
        "s3", "/x", Bucket="data", Key="gone.txt", Endpoint=starting_store, Region="us-east-1"
    )
    with pytest.raises(InputError, match="not found"):  # a real answer is not retried
        await provider.prepare(missing, tmp_path / "staging", StoragePolicy(allow_network=True))
