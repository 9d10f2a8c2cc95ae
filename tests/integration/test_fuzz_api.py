"""Every endpoint of the served OpenAPI document, fuzzed with schemathesis against a real
orchestrator + compute node: whatever a client sends, the answer is never a 5xx, and the
server keeps answering afterwards."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from .cluster import Cluster

pytestmark = pytest.mark.integration

EXAMPLES = int(os.environ.get("BACEDGE_FUZZ_API_EXAMPLES", "60"))
CASES: list[int] = []


@pytest.fixture(scope="module")
def fuzz_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cluster = Cluster(Path(tmp_path_factory.mktemp("fuzz")))
    cluster.orchestrator(True, "--engines", "noop")
    cluster.wait_nodes(1)
    yield cluster
    cluster.close()
    print(f"\nAPI fuzz: {len(CASES)} cases, {sum(CASES)} answered 5xx")


@pytest.fixture(scope="module")
def api_schema(fuzz_cluster: Cluster) -> schemathesis.schemas.BaseSchema:
    loaded = schemathesis.openapi.from_url(f"{fuzz_cluster.api}/api/v1/openapi.json")
    # Valid inputs and invalid ones (wrong types, missing fields, junk values) alike.
    loaded.config.generation.update(
        modes=[schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE]
    )
    return loaded


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_no_input_makes_the_api_fail(case: schemathesis.Case, fuzz_cluster: Cluster) -> None:
    if case.path.endswith("/logs"):
        case.query = {**(case.query or {}), "follow": "false"}  # a WebSocket: answer and close
    if case.path.endswith("/events"):
        # An endless event stream: read the status (query checks and auth come first), not
        # the body, which never ends; then hang up. The server frees a subscriber's place
        # within a second of the hang-up, so quick cases may meet the subscriber cap: 503.
        query = {
            k: [str(x) for x in v] if isinstance(v, list) else str(v)
            for k, v in (case.query or {}).items()
        }
        url = fuzz_cluster.api + case.formatted_path
        with httpx.stream("GET", url, params=query, timeout=30) as streamed:
            status = streamed.status_code
        failed = status >= 500 and status != 503
        CASES.append(int(failed))
        assert not failed, f"{case.formatted_path} {query} -> {status}"
        return
    response = case.call(base_url=fuzz_cluster.api, timeout=30)
    CASES.append(int(response.status_code >= 500))
    assert response.status_code < 500, (
        f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:500]}"
    )


def test_the_api_still_answers_after_the_fuzzing(fuzz_cluster: Cluster) -> None:
    assert httpx.get(f"{fuzz_cluster.api}/api/v1/agent/alive", timeout=5).status_code == 200
    hostile = [
        b"{" * 200_000,
        b'{"Job": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
        b'{"Job": {"Count": 1e400, "Tasks": []}}',
        b"\xff\xfe not utf-8",
        b"[]",
    ]
    for body in hostile:
        response = httpx.put(
            f"{fuzz_cluster.api}/api/v1/orchestrator/jobs",
            content=body,
            headers={"Content-Type": "application/json"},
            timeout=30,
        )
        assert response.status_code == 400, (body[:40], response.status_code, response.text)
    too_big = httpx.put(
        f"{fuzz_cluster.api}/api/v1/orchestrator/jobs",
        content=b" " * (65 << 20),
        headers={"Content-Type": "application/json"},
        timeout=60,
    )
    assert too_big.status_code == 413
    assert httpx.get(f"{fuzz_cluster.api}/api/v1/agent/alive", timeout=5).status_code == 200
