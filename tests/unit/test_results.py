"""Result archives, published keys, S3 source params, the object cache and -i/-p syntax."""

from __future__ import annotations

import io
import os
import tarfile
import time
from pathlib import Path

import click
import pytest

from edge.archive import ArchiveError, pack, unpack
from edge.cli.wasm import parse_input, parse_publisher
from edge.models import Execution, InputSource, SpecConfig, Task
from edge.publishers import effective_type
from edge.publishers.keys import published_key
from edge.publishers.s3 import encoding_of
from edge.storage.base import InputError
from edge.storage.cache import ObjectCache
from edge.storage.s3 import parse_source, relative_path


def _tar(members: list[tarfile.TarInfo], data: bytes = b"x") -> io.BytesIO:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for member in members:
            if member.isfile():
                member.size = len(data)
                archive.addfile(member, io.BytesIO(data))
            else:
                archive.addfile(member)
    buffer.seek(0)
    return buffer


def test_pack_then_unpack_keeps_the_layout(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "outputs" / "deep").mkdir(parents=True)
    (src / "stdout").write_text("hi\n")
    (src / "outputs" / "deep" / "r.txt").write_text("result")
    size = pack(src, tmp_path / "r.tar.gz")
    assert size == (tmp_path / "r.tar.gz").stat().st_size
    names = unpack(tmp_path / "r.tar.gz", tmp_path / "out")
    assert "outputs/deep/r.txt" in names
    assert (tmp_path / "out" / "outputs" / "deep" / "r.txt").read_text() == "result"
    assert not list(tmp_path.glob("*.part"))


def test_pack_stores_links_without_following_them(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    secret = tmp_path / "host-secret"
    secret.write_text("do not publish")
    os.symlink(secret, src / "link")
    pack(src, tmp_path / "r.tar.gz")
    with tarfile.open(tmp_path / "r.tar.gz") as archive:
        member = archive.getmember("link")
        assert member.issym()
        assert b"do not publish" not in (tmp_path / "r.tar.gz").read_bytes()
    # and unpacking refuses the link outright
    with pytest.raises(ArchiveError, match="not a plain file"):
        unpack(tmp_path / "r.tar.gz", tmp_path / "out")


@pytest.mark.parametrize(
    ("name", "kind", "message"),
    [
        ("../escape.txt", tarfile.REGTYPE, "outside the folder"),
        ("/etc/passwd", tarfile.REGTYPE, "outside the folder"),
        ("a/../../escape", tarfile.REGTYPE, "outside the folder"),
        ("dev", tarfile.CHRTYPE, "not a plain file"),
        ("hard", tarfile.LNKTYPE, "not a plain file"),
        ("fifo", tarfile.FIFOTYPE, "not a plain file"),
    ],
)
def test_unpack_refuses_escapes_links_and_devices(
    tmp_path: Path, name: str, kind: bytes, message: str
) -> None:
    member = tarfile.TarInfo(name)
    member.type = kind
    member.linkname = "/etc/passwd" if kind == tarfile.LNKTYPE else ""
    with pytest.raises(ArchiveError, match=message):
        unpack(_tar([member]), tmp_path / "out")
    assert not (tmp_path / "out").exists()  # nothing written before the check
    assert not (tmp_path / "escape.txt").exists()


def test_unpack_of_junk_is_a_clear_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"not an archive at all")
    with pytest.raises(ArchiveError, match=r"not a valid \.tar\.gz"):
        unpack(junk, tmp_path / "out")


def test_published_key_follows_bacalhau() -> None:
    execution = Execution(ID="e-1", JobID="j-2")
    assert published_key("r/{jobID}/{executionID}", execution, "n-3", True) == "r/j-2/e-1.tar.gz"
    assert published_key("r/{nodeID}", execution, "n-3", False) == "r/n-3/"
    assert published_key("r/{jobID}/", execution, "n-3", True) == "r/j-2/e-1.tar.gz"
    dated = published_key("{date}-{time}", execution, "n", True)
    assert len(dated) == len("20261202-120000.tar.gz") and dated[8] == "-"


def test_encoding_and_legacy_compress() -> None:
    assert encoding_of(SpecConfig(Type="s3")) == "gzip"
    assert encoding_of(SpecConfig(Type="s3", Params={"Encoding": "Plain"})) == "plain"
    assert encoding_of(SpecConfig(Type="s3", Params={"Compress": "false"})) == "plain"
    assert encoding_of(SpecConfig(Type="s3", Params={"compress": True})) == "gzip"


def test_effective_publisher() -> None:
    assert effective_type(Task()) == ""
    assert effective_type(Task(ResultPaths=[{"Name": "o", "Path": "/o"}])) == "local"
    assert effective_type(Task(Publisher=SpecConfig(Type="S3"))) == "s3"


def test_relative_path_is_bacalhaus_rule() -> None:
    assert relative_path("dir/file.txt", "dir/file.txt") == "file.txt"
    assert relative_path("dir/sub/b.csv", "dir/") == "sub/b.csv"
    assert relative_path("dir/file-001.txt", "dir/file-") == "file-001.txt"
    assert relative_path("a/b/c", "") == "a/b/c"


def test_s3_source_params_are_checked() -> None:
    source = parse_source({"bucket": "b", "key": "k", "VersionID": "v1"}, "/in")
    assert (source.bucket, source.key, source.version_id, source.single) == ("b", "k", "v1", True)
    assert parse_source({"Bucket": "b", "Key": "p/*"}, "/in").prefix == "p/"
    with pytest.raises(InputError, match="has no Bucket"):
        parse_source({"Key": "k"}, "/in")
    with pytest.raises(InputError, match="not a valid regex"):
        parse_source({"Bucket": "b", "Filter": "("}, "/in")
    with pytest.raises(InputError, match="could run for ever"):
        parse_source({"Bucket": "b", "Filter": "(a+)+$"}, "/in")
    with pytest.raises(InputError, match="not a SHA-256"):
        parse_source({"Bucket": "b", "Key": "k", "ChecksumSHA256": "nope"}, "/in")


def test_cache_evicts_the_least_recently_used(tmp_path: Path) -> None:
    cache = ObjectCache(tmp_path / "cache", capacity=10)
    paths = []
    for name in ("a", "b", "c"):
        part = cache.partial(name)
        part.write_bytes(b"12345")
        paths.append(cache.commit(name, part, 5))
        time.sleep(0.01)
    assert cache.lookup("a") is None  # evicted: 15 bytes > 10
    assert cache.lookup("c") is not None
    assert (cache.misses, cache.bytes_downloaded) == (3, 15)
    leftover = cache.partial("d")
    leftover.write_bytes(b"half")
    ObjectCache(tmp_path / "cache", capacity=10)  # a restart removes half downloads
    assert not leftover.exists()


def test_cli_input_syntax_matches_bacalhau() -> None:
    s3_input = parse_input("src=s3://data/in/,dst=/inputs,opt=region=eu-1,opt=endpoint=h:9000")
    assert s3_input == {
        "Source": {
            "Type": "s3",
            "Params": {"Bucket": "data", "Key": "in/", "Region": "eu-1", "Endpoint": "h:9000"},
        },
        "Target": "/inputs",
    }
    assert parse_input("s3://b/k")["Target"] == "/inputs"
    url = parse_input("https://example.com/x/data.csv")
    assert url["Source"] == {
        "Type": "urlDownload",
        "Params": {"URL": "https://example.com/x/data.csv"},
    }
    assert url["Target"] == "/inputs/data.csv"
    assert parse_input("file:///srv/data,dst=/d")["Source"]["Params"]["SourcePath"] == "/srv/data"
    with pytest.raises(click.BadParameter, match="unknown s3 option"):
        parse_input("s3://b/k,opt=colour=red")
    with pytest.raises(click.BadParameter, match="must be an absolute path"):
        parse_input("s3://b/k,dst=relative")
    # the spec the CLI builds is a valid source for the node
    InputSource.model_validate(s3_input)


def test_cli_publisher_syntax_matches_bacalhau() -> None:
    assert parse_publisher("s3://results/{jobID}/,opt=encoding=plain") == {
        "Type": "s3",
        "Params": {"Bucket": "results", "Key": "{jobID}/", "Encoding": "plain"},
    }
    assert parse_publisher("s3://results")["Params"]["Key"] == "{jobID}/{executionID}"
    assert parse_publisher("Local") == {"Type": "local"}
    with pytest.raises(click.BadParameter, match="use local, noop"):
        parse_publisher("ipfs")
