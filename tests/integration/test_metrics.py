"""Prometheus metrics from real processes: the orchestrator's /metrics on its API port
(behind the API token when one is set) and a compute node's on `[compute] metrics_port`."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.wasm_build import build_wasm, s3_source, wasm_job_spec

from .cluster import Cluster, free_port, wait_until
from .test_s3_data import put, store_client

pytestmark = pytest.mark.integration


def scrape(url: str, **headers: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = httpx.get(url, headers=headers, timeout=5)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def test_orchestrator_and_node_metrics(cluster: Cluster) -> None:
    metrics_port = free_port()
    cluster.orchestrator(
        True,
        "--store",
        "--store-port",
        str(free_port()),
        BACEDGE_COMPUTE_METRICS_PORT=str(metrics_port),
        BACEDGE_API_AUTH_TOKEN="metrics-secret",
    )
    auth = {"Authorization": "Bearer metrics-secret"}
    wait_until(
        lambda: httpx.get(f"{cluster.api}/api/v1/orchestrator/nodes", headers=auth).json()["Nodes"],
        30,
        "the node",
    )
    assert httpx.get(f"{cluster.api}/metrics", timeout=5).status_code == 401
    client, _ = store_client(cluster.root / "orchestrator")
    put(client, "data", "in.txt", b"counted\n")
    spec = wasm_job_spec(
        build_wasm("io").read_bytes(),
        ["/inputs/in.txt", "/outputs/copy.txt"],
        [s3_source("data", "in.txt")],
        {"Type": "noop"},
    )
    for _ in range(2):  # the second run is served from the node's cache
        response = httpx.put(
            f"{cluster.api}/api/v1/orchestrator/jobs", json={"Job": spec}, headers=auth, timeout=10
        )
        job_id = response.json()["JobID"]

        def done(job_id: str = job_id) -> bool:
            body = httpx.get(
                f"{cluster.api}/api/v1/orchestrator/jobs/{job_id}", headers=auth, timeout=5
            ).json()
            return body["Job"]["State"]["StateType"] == "Completed"

        wait_until(done, 60, "the job")

    def heartbeats_counted() -> dict[tuple[str, tuple[tuple[str, str], ...]], float] | None:
        figures = scrape(f"{cluster.api}/metrics", **auth)
        return figures if figures.get(("bacedge_heartbeats_total", ())) else None

    orchestrator = wait_until(heartbeats_counted, 30, "a heartbeat to be counted")
    assert orchestrator[("bacedge_jobs_finished_total", (("state", "Completed"),))] == 2
    assert (
        orchestrator[("bacedge_nodes", (("connection", "CONNECTED"), ("membership", "APPROVED")))]
        == 1
    )
    assert orchestrator[("bacedge_placement_seconds_count", ())] >= 2
    assert orchestrator[("bacedge_queue_depth", ())] == 0

    node = scrape(f"http://127.0.0.1:{metrics_port}/metrics")
    assert node[("bacedge_node_connected", ())] == 1
    assert node[("bacedge_storage_downloaded_bytes_total", ())] == len(b"counted\n")
    assert node[("bacedge_storage_cache_total", (("result", "hit"),))] == 1
    assert node[("bacedge_node_outbox", ())] >= 0
