"""Compute over data with a real S3 store (SeaweedFS under `bacedge serve --store`):
s3 inputs, the s3/s3managed/local publishers, `bacedge job get`, the input cache,
locality, and results surviving a compute node killed mid-upload."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import httpx
import pytest
from minio import Minio

from edge import s3
from edge.config import load_config
from tests.wasm_build import build_wasm, s3_source, wasm_job_spec

from .cluster import Cluster, Proc, free_port, wait_until

pytestmark = pytest.mark.integration


def store_client(data_dir: Path) -> tuple[Minio, str]:
    """A minio client for the store a `serve --store` process runs in `data_dir`."""
    config = load_config(overrides={"node.data_dir": str(data_dir)}, environ={})
    endpoint = wait_until(lambda: s3.local_store(config), 60, "the store's credentials")
    client = endpoint.client()
    wait_until(lambda: client.list_buckets() is not None, 60, "the store to answer")
    return client, endpoint.url


def put(client: Minio, bucket: str, key: str, data: bytes) -> None:
    if not client.bucket_exists(bucket):
        client.make_bucket(bucket)
    client.put_object(bucket, key, io.BytesIO(data), len(data))


def wasm_job(
    inputs: list[dict[str, Any]], publisher: dict[str, Any], args: list[str]
) -> dict[str, Any]:
    return wasm_job_spec(build_wasm("io").read_bytes(), args, inputs, publisher)


def run_to_end(
    cluster: Cluster,
    inputs: list[dict[str, Any]],
    args: list[str],
    publisher: dict[str, Any] | None = None,
) -> str:
    """Submits the io task over these inputs and waits for it to end; the body as JSON."""
    job_id = cluster.submit(wasm_job(inputs, publisher or {"Type": "noop"}, args))
    return json.dumps(cluster.wait_state(job_id, "Failed", "Completed"))


def on_device(cluster: Cluster) -> dict[str, str]:
    """A CLI run on the device itself: it finds the local store's credentials."""
    return {"BACEDGE_NODE_DATA_DIR": str(cluster.root / "orchestrator")}


@pytest.fixture
def single(cluster: Cluster) -> Cluster:
    """Orchestrator + compute node + local store in one process, as the README runs it."""
    cluster.store_port = free_port()  # type: ignore[attr-defined]
    cluster.orchestrator(True, "--store", "--store-port", str(cluster.store_port))  # type: ignore[attr-defined]
    cluster.wait_nodes(1)
    return cluster


def test_s3_input_to_wasm_to_s3_publisher_and_job_get(single: Cluster, tmp_path: Path) -> None:
    client, url = store_client(single.root / "orchestrator")
    put(client, "data", "in/input.txt", b"from the store\n")
    client.make_bucket("results")
    result = single.cli(
        "wasm",
        "run",
        "--id-only",
        "--no-wait",
        "-i",
        "src=s3://data/in/input.txt,dst=/inputs",
        "-o",
        "outputs:/outputs",
        "-p",
        "s3://results/{jobID}/",
        str(build_wasm("io")),
        "--",
        "/inputs/input.txt",
        "/outputs/copy.txt",
    )
    assert result.returncode == 0, result.stderr
    job_id = result.stdout.strip()
    body = single.wait_state(job_id, "Completed", "Failed")
    execution = body["Executions"]["Items"][0]
    assert body["Job"]["State"]["StateType"] == "Completed", execution["ComputeState"]
    published = execution["PublishedResult"]
    key = f"{job_id}/{execution['ID']}.tar.gz"
    assert published["Type"] == "s3"
    assert published["Params"]["Bucket"] == "results" and published["Params"]["Key"] == key
    assert client.stat_object("results", key).size > 0  # really in the store
    listed = httpx.get(f"{single.api}/api/v1/orchestrator/jobs/{job_id}/results").json()
    assert listed["Items"] == [published]
    # the history passed through Publishing (state 7)
    history = httpx.get(f"{single.api}/api/v1/orchestrator/jobs/{job_id}/history").json()
    assert any((h.get("ExecutionState") or {}).get("New") == 7 for h in history["Items"]), history[
        "Items"
    ]
    out = tmp_path / "got"
    got = single.cli("job", "get", job_id, "--output-dir", str(out))
    assert got.returncode == 0, got.stderr
    assert (out / "outputs" / "copy.txt").read_text() == "from the store\n"
    assert (out / "stdout").read_text() == "from the store\n"
    assert (out / "exitCode").read_text().strip() == "0"

    # The same data again: served from the node's cache, not downloaded twice.
    log = single.procs[0].log
    downloads = log.read_text().count("s3 input downloaded")
    again = single.submit(
        wasm_job(
            [s3_source("data", "in/input.txt")],
            {"Type": "noop"},
            ["/inputs/input.txt", "/outputs/copy.txt"],
        )
    )
    done = single.wait_state(again, "Completed", "Failed")
    assert done["Job"]["State"]["StateType"] == "Completed", done["Job"]["State"]
    text = log.read_text()
    assert text.count("s3 input downloaded") == downloads
    assert "s3 input from cache" in text
    # A changed object is a new cache entry: the new content is what the task sees.
    put(client, "data", "in/input.txt", b"changed\n")
    third = single.submit(
        wasm_job(
            [s3_source("data", "in/input.txt")],
            {"Type": "noop"},
            ["/inputs/input.txt", "/outputs/copy.txt"],
        )
    )
    body = single.wait_state(third, "Completed", "Failed")
    assert single.executions(third)[0]["RunOutput"]["Stdout"] == "changed\n", body["Job"]["State"]
    assert url.startswith("http://127.0.0.1:")


def test_prefix_filter_and_plain_publishing(single: Cluster, tmp_path: Path) -> None:
    client, _ = store_client(single.root / "orchestrator")
    for key in ("set/a.csv", "set/b.csv", "set/skip.txt", "set/sub/c.csv"):
        put(client, "lake", key, key.encode() + b"\n")
    client.make_bucket("plain")
    job = wasm_job(
        [s3_source("lake", "set/", Filter=r"\.csv$")],
        {"Type": "s3", "Params": {"Bucket": "plain", "Key": "{jobID}", "Encoding": "plain"}},
        ["/inputs/sub/c.csv", "/outputs/c.csv"],
    )
    job_id = single.submit(job)
    body = single.wait_state(job_id, "Completed", "Failed")
    assert body["Job"]["State"]["StateType"] == "Completed", body["Job"]["State"]
    names = sorted(
        o.object_name for o in client.list_objects("plain", prefix=job_id + "/", recursive=True)
    )
    assert names == [
        f"{job_id}/exitCode",
        f"{job_id}/outputs/c.csv",
        f"{job_id}/stderr",
        f"{job_id}/stdout",
    ]
    # The orchestrator cannot relay a folder of objects: job get fetches them itself.
    out = tmp_path / "plain"
    got = single.cli("job", "get", job_id, "--output-dir", str(out), env=on_device(single))
    assert got.returncode == 0, got.stderr
    assert (out / "outputs" / "c.csv").read_text() == "set/sub/c.csv\n"


def test_bad_s3_inputs_fail_with_the_reason(single: Cluster) -> None:
    client, url = store_client(single.root / "orchestrator")
    put(client, "data", "big.bin", b"x" * 4096)
    body = run_to_end(single, [s3_source("data", "nope.txt")], ["/inputs/nope.txt", "/outputs/x"])
    assert f"s3://data/nope.txt not found at {url}" in body, body
    body = run_to_end(single, [s3_source("absent", "k")], ["/inputs/k", "/outputs/x"])
    assert "s3://absent/k not found" in body


def test_input_over_the_cap_is_refused_before_download(cluster: Cluster) -> None:
    port = free_port()
    cluster.orchestrator(
        True, "--store", "--store-port", str(port), BACEDGE_COMPUTE_MAX_INPUT_BYTES="1000"
    )
    cluster.wait_nodes(1)
    client, _ = store_client(cluster.root / "orchestrator")
    put(client, "data", "big.bin", b"x" * 4096)
    body = run_to_end(cluster, [s3_source("data", "big.bin")], ["/inputs/big.bin", "/outputs/x"])
    assert "over this node's input limit of 1000" in body
    assert "s3 input downloaded" not in cluster.procs[0].log.read_text()


def test_s3managed_with_a_node_that_has_no_credentials(cluster: Cluster, tmp_path: Path) -> None:
    port = free_port()
    cluster.orchestrator(False, "--store", "--store-port", str(port))
    client, _ = store_client(cluster.root / "orchestrator")
    # The compute node runs elsewhere: no store, no [storage.s3] keys, no AWS env.
    node = cluster.compute("bare")
    cluster.wait_nodes(1)
    assert not (cluster.root / "bare" / "store").exists()
    job_id = cluster.submit(
        wasm_job(
            [
                {
                    "Source": {"Type": "inline", "Params": {"URL": "data:,managed%0A"}},
                    "Target": "/inputs/in.txt",
                }
            ],
            {"Type": "s3managed"},
            ["/inputs/in.txt", "/outputs/copy.txt"],
        )
    )
    body = cluster.wait_state(job_id, "Completed", "Failed")
    execution = body["Executions"]["Items"][0]
    assert body["Job"]["State"]["StateType"] == "Completed", execution["ComputeState"]
    key = execution["PublishedResult"]["Params"]["Key"]
    assert key == f"{job_id}/{execution['ID']}.tar.gz"
    assert client.stat_object("bacedge-results", key).size > 0
    out = tmp_path / "managed"
    got = cluster.cli("job", "get", job_id, "--output-dir", str(out))
    assert got.returncode == 0, got.stderr
    assert (out / "outputs" / "copy.txt").read_text() == "managed\n"
    assert node.alive()


def test_s3managed_is_refused_where_nothing_can_sign(cluster: Cluster) -> None:
    cluster.orchestrator(True)
    cluster.wait_nodes(1)
    response = httpx.put(
        f"{cluster.api}/api/v1/orchestrator/jobs",
        json={"Job": wasm_job([], {"Type": "s3managed"}, [])},
        timeout=10,
    )
    assert response.status_code == 400
    assert "[publishers.s3managed]" in response.json()["Message"]


def test_scheduler_sends_the_job_to_the_node_that_holds_the_bucket(cluster: Cluster) -> None:
    cluster.orchestrator(False)
    for name in ("north", "south"):
        cluster.compute(name, "--store", "--store-port", str(free_port()))
    cluster.wait_nodes(2)
    south, _ = store_client(cluster.root / "south")
    store_client(cluster.root / "north")
    put(south, "sensors", "today.csv", b"42\n")

    def advertised() -> bool:
        return any(
            "sensors" in s["Buckets"]
            for n in cluster.nodes()
            for s in n["Info"]["ComputeNodeInfo"].get("Stores", [])
        )

    wait_until(advertised, 30, "the south node to advertise its bucket")
    for _ in range(3):
        job_id = cluster.submit(
            wasm_job(
                [s3_source("sensors", "today.csv")],
                {"Type": "noop"},
                ["/inputs/today.csv", "/outputs/x"],
            )
        )
        body = cluster.wait_state(job_id, "Completed", "Failed")
        execution = body["Executions"]["Items"][0]
        assert body["Job"]["State"]["StateType"] == "Completed", execution["ComputeState"]
        nodes = {n["Info"]["NodeID"]: n["Info"]["Labels"].get("name") for n in cluster.nodes()}
        assert nodes[execution["NodeID"]] == "south"


def test_results_survive_a_compute_node_killed_mid_upload(cluster: Cluster, tmp_path: Path) -> None:
    cluster.heartbeat = 3.0  # the restarted node is back well within the lost-node timeout
    port = free_port()
    cluster.orchestrator(False, "--store", "--store-port", str(port))
    client, _ = store_client(cluster.root / "orchestrator")
    client.make_bucket("results")
    keys = json.loads((cluster.root / "orchestrator" / "store" / s3.CREDENTIALS_FILE).read_text())
    # Another device: it reaches the hub's store with keys from its own config.
    cluster.compute(
        "worker",
        BACEDGE_STORAGE_S3_ACCESS_KEY=keys["access_key"],
        BACEDGE_STORAGE_S3_SECRET_KEY=keys["secret_key"],
    )
    cluster.wait_nodes(1)
    big = os.urandom(48 << 20)  # incompressible: packing and uploading take a while
    put(client, "data", "big.bin", big)
    job_id = cluster.submit(
        wasm_job(
            [s3_source("data", "big.bin", Endpoint=f"http://127.0.0.1:{port}")],
            {
                "Type": "s3",
                "Params": {
                    "Bucket": "results",
                    "Key": "{jobID}",
                    "Endpoint": f"http://127.0.0.1:{port}",
                },
            },
            ["/inputs/big.bin", "/outputs/big.bin"],
        )
    )

    def publishing() -> bool:
        executions = cluster.executions(job_id)
        return bool(executions) and executions[0]["ComputeState"]["StateType"] == 7

    wait_until(publishing, 120, "the execution to start publishing")
    worker = next(p for p in cluster.procs if p.name == "worker")
    worker.kill()
    restarted = Proc(worker.name, worker.args, worker.log, worker.env).start()
    cluster.procs.append(restarted)
    body = cluster.wait_state(job_id, "Completed", "Failed", timeout=180)
    assert body["Job"]["State"]["StateType"] == "Completed", body["Job"]["State"]
    out = tmp_path / "big"
    got = cluster.cli("job", "get", job_id, "--output-dir", str(out), timeout=180)
    assert got.returncode == 0, got.stderr
    assert (out / "outputs" / "big.bin").read_bytes() == big
    assert "Publishing results" in json.dumps(
        httpx.get(f"{cluster.api}/api/v1/orchestrator/jobs/{job_id}/history").json()
    )


def test_jobs_ride_out_a_store_restart(single: Cluster, tmp_path: Path) -> None:
    """The store dies; its supervisor restarts it; a job submitted meanwhile waits for it
    (inputs and publishing retry while the store cannot be reached) and completes."""
    import psutil

    client, _ = store_client(single.root / "orchestrator")
    put(client, "data", "in.txt", b"survives\n")
    client.make_bucket("results")
    serve = psutil.Process(single.procs[0].popen.pid)  # type: ignore[union-attr]
    weed = next(p for p in serve.children(recursive=True) if "weed" in p.name())
    weed.kill()
    job_id = single.submit(
        wasm_job(
            [s3_source("data", "in.txt")],
            {"Type": "s3", "Params": {"Bucket": "results", "Key": "{jobID}"}},
            ["/inputs/in.txt", "/outputs/copy.txt"],
        )
    )
    body = single.wait_state(job_id, "Completed", "Failed", timeout=120)
    assert body["Job"]["State"]["StateType"] == "Completed", body["Job"]["State"]
    restarted = next(p for p in serve.children(recursive=True) if "weed" in p.name())
    assert restarted.pid != weed.pid
    alive = httpx.get(f"{single.api}/api/v1/agent/alive", timeout=5).json()
    assert alive["Store"]["alive"] is True and alive["Store"]["restarts"] >= 1, alive
    out = tmp_path / "after-restart"
    assert single.cli("job", "get", job_id, "--output-dir", str(out)).returncode == 0
    assert (out / "outputs" / "copy.txt").read_text() == "survives\n"


def test_presigned_input_needs_no_credentials_on_the_node(cluster: Cluster) -> None:
    """Bacalhau's s3PreSigned: the node downloads a signed URL with no keys of its own."""
    from datetime import timedelta

    cluster.orchestrator(False, "--store", "--store-port", str(free_port()))
    client, _ = store_client(cluster.root / "orchestrator")
    put(client, "data", "signed/in.txt", b"signed data\n")
    url = client.presigned_get_object("data", "signed/in.txt", expires=timedelta(minutes=10))
    cluster.compute("bare")
    cluster.wait_nodes(1)
    source = {
        "Type": "s3PreSigned",
        "Params": {
            "PreSignedURL": url,
            "SourceSpec": {"Bucket": "data", "Key": "signed/in.txt"},
        },
    }
    job_id = cluster.submit(
        wasm_job(
            [{"Source": source, "Target": "/inputs"}],
            {"Type": "noop"},
            ["/inputs/in.txt", "/outputs/x"],
        )
    )
    body = cluster.wait_state(job_id, "Completed", "Failed")
    assert body["Job"]["State"]["StateType"] == "Completed", body["Job"]["State"]
    assert cluster.executions(job_id)[0]["RunOutput"]["Stdout"] == "signed data\n"
    # The signature never reaches the node's log.
    signature = url.split("X-Amz-Signature=")[1][:16]
    assert signature not in (cluster.root / "logs" / "bare.log").read_text()
    # An expired or tampered URL fails with a clear reason.
    bad = {
        **source,
        "Params": {**source["Params"], "PreSignedURL": url.replace(signature, "0" * 16)},
    }
    failed = cluster.submit(
        wasm_job(
            [{"Source": bad, "Target": "/inputs"}],
            {"Type": "noop"},
            ["/inputs/in.txt", "/outputs/x"],
        )
    )
    body = cluster.wait_state(failed, "Failed", "Completed")
    assert "HTTP 403" in json.dumps(body) and signature not in json.dumps(body)


def test_wrong_credentials_and_local_only_nodes_say_what_to_fix(cluster: Cluster) -> None:
    port = free_port()
    cluster.orchestrator(False, "--store", "--store-port", str(port))
    client, url = store_client(cluster.root / "orchestrator")
    put(client, "data", "in.txt", b"x\n")
    # A node with the wrong secret for this endpoint: the failure names the keys to fix.
    cluster.compute(
        "wrong",
        BACEDGE_STORAGE_S3_ACCESS_KEY="not-a-key",
        BACEDGE_STORAGE_S3_SECRET_KEY="not-a-secret",
    )
    cluster.wait_nodes(1)
    job_id = cluster.submit(
        wasm_job(
            [s3_source("data", "in.txt", Endpoint=url)], {"Type": "noop"}, ["/inputs/in.txt", "/o"]
        )
    )
    body = json.dumps(cluster.wait_state(job_id, "Failed", "Completed"))
    assert "was refused" in body and "[storage.s3] access_key and secret_key" in body, body
    assert "not-a-secret" not in body
    # A node that takes only local data refuses a download, saying why.
    cluster.compute("local-only", BACEDGE_COMPUTE_LOCALITY="local")
    for proc in cluster.procs:
        if proc.name == "wrong":
            proc.stop()
    wait_until(
        lambda: (
            [n for n in cluster.nodes() if n["ConnectionState"]["Status"] == "CONNECTED"]
            and all(
                n["Info"]["Labels"].get("name") != "wrong"
                for n in cluster.nodes()
                if n["ConnectionState"]["Status"] == "CONNECTED"
            )
        ),
        30,
        "only the local-only node",
    )
    refused = cluster.submit(
        wasm_job(
            [{"Source": {"Type": "urlDownload", "Params": {"URL": f"{url}/x"}}, "Target": "/in"}],
            {"Type": "noop"},
            ["/in", "/o"],
        )
    )
    body = json.dumps(cluster.wait_state(refused, "Failed", "Completed"))
    assert "does not download inputs" in body, body


def test_checksums_are_checked(single: Cluster) -> None:
    import base64
    import hashlib

    client, _ = store_client(single.root / "orchestrator")
    data = b"pinned content\n"
    put(client, "data", "pinned.txt", data)
    good = base64.b64encode(hashlib.sha256(data).digest()).decode()
    bad = base64.b64encode(hashlib.sha256(b"other").digest()).decode()
    ok = single.submit(
        wasm_job(
            [s3_source("data", "pinned.txt", ChecksumSHA256=good)],
            {"Type": "noop"},
            ["/inputs/pinned.txt", "/outputs/x"],
        )
    )
    assert single.wait_state(ok, "Completed", "Failed")["Job"]["State"]["StateType"] == "Completed"
    wrong = single.submit(
        wasm_job(
            [s3_source("data", "pinned.txt", ChecksumSHA256=bad)],
            {"Type": "noop"},
            ["/inputs/pinned.txt", "/outputs/x"],
        )
    )
    body = json.dumps(single.wait_state(wrong, "Failed", "Completed"))
    assert "checksum mismatch for s3://data/pinned.txt" in body, body
