"""API users and capabilities over real HTTP against a real orchestrator and compute node:
Bearer API keys and Basic passwords, 401 without or with wrong credentials, 403 without the
capability, and nothing changed either way; the old single token still works as admin; the
CLI with --api-key, BACEDGE_API_KEY and a profile; hostile Authorization headers."""

from __future__ import annotations

import base64
import json
import re
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from edge.auth import hash_password
from edge.cli.main import cli
from edge.orchestrator.routes import PUBLIC, ROUTES, SIGNED_IN

from .cluster import Cluster, wait_until

pytestmark = pytest.mark.integration

API = "/api/v1/orchestrator"
TOKEN = "legacy-admin-token"
KEYS = {  # alias: (API key, actions)
    "job-writer": ("jw-0123456789abcdef", ["read:job", "write:job"]),
    "job-reader": ("jr-0123456789abcdef", ["read:job"]),
    "node-reader": ("nr-0123456789abcdef", ["read:node"]),
    "node-writer": ("nw-0123456789abcdef", ["read:node", "write:node"]),
    "agent-reader": ("ar-0123456789abcdef", ["read:agent"]),
    "nobody": ("no-0123456789abcdef", []),
}
READER_PASSWORD = "reader-pass-☃"  # not ASCII on purpose
ADMIN_PASSWORD = "admin-pass-0987"
SECRETS = [TOKEN, READER_PASSWORD, ADMIN_PASSWORD, *(key for key, _ in KEYS.values())]


def _config(path: Path) -> Path:
    """Users as an operator writes them; hashes made cheaper than the default for speed."""
    lines = []
    for alias, (key, actions) in KEYS.items():
        lines += [
            "[[api.auth.users]]",
            f'alias = "{alias}"',
            f'api_key = "{key}"',
            f"capabilities = [{{ actions = {json.dumps(actions)} }}]",
            "",
        ]
    for username, password, actions in (
        ("reader", READER_PASSWORD, ["read:*"]),
        ("admin", ADMIN_PASSWORD, ["*"]),
    ):
        lines += [
            "[[api.auth.users]]",
            f'username = "{username}"',
            f'password = "{hash_password(password, n=1 << 14)}"',
            f"capabilities = [{{ actions = {json.dumps(actions)} }}]",
            "",
        ]
    path.write_text("\n".join(lines))
    return path


@pytest.fixture(scope="module")
def authed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = Path(tmp_path_factory.mktemp("auth"))
    cluster = Cluster(root)
    config = _config(root / "config.toml")
    cluster.orchestrator(
        True, "--engines", "noop", "--config", str(config), BACEDGE_API_AUTH_TOKEN=TOKEN
    )
    wait_until(lambda: nodes(cluster), 30, "the compute node")
    yield cluster
    cluster.close()


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def basic(username: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def key(alias: str) -> dict[str, str]:
    return bearer(KEYS[alias][0])


ADMIN = bearer(TOKEN)


def call(cluster: Cluster, method: str, path: str, headers: dict[str, str], **kw: Any) -> Any:
    return httpx.request(method, f"{cluster.api}{path}", headers=headers, timeout=10, **kw)


def nodes(cluster: Cluster) -> list[dict[str, Any]]:
    return list(call(cluster, "GET", f"{API}/nodes", ADMIN).json()["Nodes"])


def job_ids(cluster: Cluster) -> set[str]:
    items = call(cluster, "GET", f"{API}/jobs", ADMIN, params={"limit": 1000}).json()["Items"]
    return {j["ID"] for j in items}


def noop(name: str) -> dict[str, Any]:
    return {"Job": {"Name": name, "Type": "batch", "Tasks": [{"Engine": {"Type": "noop"}}]}}


def state(cluster: Cluster) -> Any:
    """What a refused request must leave as it was: jobs with their versions and states,
    nodes with their membership and scheduling."""
    jobs = call(cluster, "GET", f"{API}/jobs", ADMIN, params={"limit": 1000}).json()["Items"]
    return (
        sorted((j["ID"], j["Version"], j["State"]["StateType"]) for j in jobs),
        sorted(
            (n["Info"]["NodeID"], n["Membership"], json.dumps(n.get("Scheduling")))
            for n in nodes(cluster)
        ),
    )


def _sample_path(path: str, job_id: str, node_id: str) -> str:
    if "/nodes/" in path:
        return path.replace("{id}", node_id)
    return path.replace("{id}", job_id).replace("{execution}", "e-none")


def test_every_route_refuses_without_credentials_or_capability(authed: Cluster) -> None:
    """Walks the route table itself: 401 with no or wrong credentials, 403 for a user with
    no capability, on every route that is not public; and nothing changed."""
    job_id = call(authed, "PUT", f"{API}/jobs", ADMIN, json=noop("walk")).json()["JobID"]
    node_id = nodes(authed)[0]["Info"]["NodeID"]
    before = state(authed)
    body = {"NodeID": node_id, "Action": "reject", **noop("walk-refused")}
    for route in ROUTES:
        path = _sample_path(route.path, job_id, node_id)
        for headers in ({}, bearer("no-such-key-0123456789"), basic("reader", "wrong")):
            response = call(authed, route.method, path, headers, json=body)
            expected = 200 if route.capability == PUBLIC else 401
            assert response.status_code == expected, (route, headers, response.text)
        if route.capability not in (PUBLIC, SIGNED_IN):
            response = call(authed, route.method, path, key("nobody"), json=body)
            assert response.status_code == 403, (route, response.text)
            answer = response.json()
            assert answer["Code"] == "Forbidden" and answer["Status"] == 403
            assert (
                f"'nobody' does not have the required capability '{route.capability}'"
                in (answer["Message"])
            )
    assert state(authed) == before, "a refused request changed nothing"


@pytest.mark.parametrize(
    "allowed, refused, method, path",
    [
        ("job-reader", "node-reader", "GET", f"{API}/jobs"),
        ("node-reader", "job-reader", "GET", f"{API}/nodes"),
        ("agent-reader", "job-reader", "GET", "/api/v1/agent/config"),
        ("agent-reader", "node-reader", "GET", "/api/v1/agent/node"),
        ("agent-reader", "job-writer", "GET", "/metrics"),
    ],
)
def test_read_capabilities(
    authed: Cluster, allowed: str, refused: str, method: str, path: str
) -> None:
    assert call(authed, method, path, key(allowed)).status_code == 200
    assert call(authed, method, path, key(refused)).status_code == 403


def test_write_job_submits_stops_and_reruns_only_with_the_capability(authed: Cluster) -> None:
    before = job_ids(authed)
    refused = call(authed, "PUT", f"{API}/jobs", key("job-reader"), json=noop("no-write"))
    assert refused.status_code == 403
    assert job_ids(authed) == before, "no job was stored"

    answer = call(authed, "PUT", f"{API}/jobs", key("job-writer"), json=noop("may-write"))
    assert answer.status_code == 200, answer.text
    job_id = answer.json()["JobID"]
    wait_until(
        lambda: (
            call(authed, "GET", f"{API}/jobs/{job_id}", ADMIN).json()["Job"]["State"]["StateType"]
            == "Completed"
        ),
        30,
        "the job to complete",
    )
    snapshot = state(authed)
    for method, path in (("PUT", f"{API}/jobs/{job_id}/rerun"), ("DELETE", f"{API}/jobs/{job_id}")):
        assert call(authed, method, path, key("job-reader")).status_code == 403
    assert state(authed) == snapshot, "no rerun, no stop"
    rerun = call(authed, "PUT", f"{API}/jobs/{job_id}/rerun", key("job-writer"))
    assert rerun.status_code == 200 and rerun.json()["JobVersion"] == 2, rerun.text


def test_write_node_changes_a_node_only_with_the_capability(authed: Cluster) -> None:
    node_id = nodes(authed)[0]["Info"]["NodeID"]
    before = state(authed)
    for alias in ("node-reader", "job-writer", "agent-reader"):
        refused = call(
            authed, "PUT", f"{API}/nodes/{node_id}", key(alias), json={"Action": "cordon"}
        )
        assert refused.status_code == 403, (alias, refused.text)
    assert state(authed) == before, "the node was not cordoned"
    for action, status in (("cordon", "CORDONED"), ("uncordon", None)):
        answer = call(
            authed, "PUT", f"{API}/nodes/{node_id}", key("node-writer"), json={"Action": action}
        )
        assert answer.status_code == 200 and answer.json()["Success"] is True, answer.text
        scheduling = nodes(authed)[0].get("Scheduling") or {}
        assert scheduling.get("Status") == status


def test_basic_and_bearer_and_the_old_token(authed: Cluster) -> None:
    jobs = f"{API}/jobs"
    assert call(authed, "GET", jobs, basic("reader", READER_PASSWORD)).status_code == 200
    assert call(authed, "GET", f"{API}/nodes", basic("reader", READER_PASSWORD)).status_code == 200
    refused = call(authed, "PUT", jobs, basic("reader", READER_PASSWORD), json=noop("basic-no"))
    assert refused.status_code == 403
    assert "'reader' does not have the required capability 'write:job'" in refused.text
    admin = call(authed, "PUT", jobs, basic("admin", ADMIN_PASSWORD), json=noop("basic-admin"))
    assert admin.status_code == 200, admin.text
    # The single token of old: an admin key, as Bearer or as a Basic password.
    assert call(authed, "PUT", jobs, ADMIN, json=noop("token-admin")).status_code == 200
    assert call(authed, "GET", "/metrics", basic("anyone", TOKEN)).status_code == 200


def test_wrong_credentials_get_401_with_a_reason_in_the_log(authed: Cluster) -> None:
    cases = {
        "no credentials": {},
        "an API key that matches no user": bearer("not-a-key-at-all-000"),
        "wrong password for user 'reader'": basic("reader", "not-the-password"),
        "unknown user 'mallory'": basic("mallory", READER_PASSWORD),
        "Basic credentials that do not decode": {"Authorization": "Basic %%%not-base64"},
        "Basic credentials without a password": basic("reader", ""),
        "an Authorization scheme 'Digest'": {"Authorization": "Digest username=x"},
    }
    for reason, headers in cases.items():
        response = call(authed, "GET", f"{API}/jobs", headers)
        assert response.status_code == 401, (reason, response.text)
        body = response.json()
        assert body["Code"] == "Unauthorized" and body["Component"] == "orchestrator"
        assert "Bearer" in response.headers["WWW-Authenticate"]
    log = authed.procs[0].output()
    for reason in cases:
        assert re.search(rf"refused GET {API}/jobs: {re.escape(reason)}", log), reason
    assert "refused GET /api/v1/orchestrator/nodes: user 'job-reader' lacks read:node" in log


def test_hostile_authorization_headers_get_401_never_a_crash(authed: Cluster) -> None:
    hostile = [
        "Bearer " + "A" * 8000,  # long, under aiohttp's header limit: refused unread
        "Basic " + "A" * 7000,  # long base64 of nothing useful
        "Basic " + base64.b64encode(b"\xff\xfe:\xc3\x28").decode(),  # not UTF-8 inside
        "Basic " + base64.b64encode(b"reader").decode(),  # no colon
        "Basic",
        "Bearer",
        "Bearer \t x",  # a key with a tab in it
    ]
    for value in hostile:
        response = call(authed, "GET", f"{API}/jobs", {"Authorization": value})
        assert response.status_code == 401, (value[:30], response.status_code, response.text)
    raw = httpx.get(
        f"{authed.api}{API}/jobs",
        headers=[(b"Authorization", b"Bearer \xff\xfe\x80 not utf-8")],
        timeout=10,
    )
    assert raw.status_code == 401, raw.text
    raw = httpx.get(
        f"{authed.api}{API}/jobs",
        headers=[(b"Authorization", b"Basic \xff\xfe\x80")],
        timeout=10,
    )
    assert raw.status_code == 401, raw.text
    # Over aiohttp's header limit: its parser answers 400 before any handler runs.
    huge = call(authed, "GET", f"{API}/jobs", {"Authorization": "Bearer " + "A" * 100_000})
    assert huge.status_code == 400
    assert call(authed, "GET", "/api/v1/agent/alive", {}).status_code == 200
    log = authed.procs[0].output()
    assert "Traceback" not in log and "AAAAAAAA" not in log, "no header bytes in the log"
    assert "refused a malformed HTTP request from 127.0.0.1: LineTooLong (HTTP 400)" in log


def test_secrets_stay_out_of_logs_config_and_answers(authed: Cluster) -> None:
    answer = call(authed, "GET", "/api/v1/agent/config", key("agent-reader")).json()
    users = answer["bacedge"]["api"]["auth"]["users"]
    assert {u["alias"] for u in users} >= set(KEYS)
    for user in users:
        assert user["password"] in (None, "********") and user["api_key"] in (None, "********")
    bacalhau = answer["config"]["API"]["Auth"]["Users"]
    assert {"Alias", "Username", "Capabilities"} <= set(bacalhau[0])
    assert all(u.get("APIKey", "<redacted>") == "<redacted>" for u in bacalhau)
    text = json.dumps(answer) + authed.procs[0].output()
    for secret in SECRETS:
        assert secret not in text
    assert "scrypt$" not in text, "not even the password hashes"


def test_who_am_i_and_the_documented_security(authed: Cluster) -> None:
    me = call(authed, "GET", "/api/v1/agent/capabilities", key("job-reader")).json()
    assert me == {"Alias": "job-reader", "Actions": ["read:job"], "AuthRequired": True}
    me = call(authed, "GET", "/api/v1/agent/capabilities", basic("admin", ADMIN_PASSWORD)).json()
    assert me["Alias"] == "admin" and len(me["Actions"]) == 5
    assert call(authed, "GET", "/api/v1/agent/capabilities", key("nobody")).json()["Actions"] == []
    document = call(authed, "GET", "/api/v1/openapi.json", {}).json()
    assert set(document["components"]["securitySchemes"]) == {"bearer", "basic"}
    for route in ROUTES:
        operation = document["paths"][route.path][route.method.lower()]
        assert operation["x-bacedge-capability"] == route.capability
        assert (operation["security"] == []) is (route.capability == PUBLIC), route


def test_the_cli_with_api_key_env_and_profile(
    authed: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    listed = authed.cli("job", "list", "--api-key", KEYS["job-reader"][0], "--output", "json")
    assert listed.returncode == 0, listed.stderr
    refused = authed.cli("job", "list", env={"BACEDGE_API_KEY": KEYS["node-reader"][0]})
    assert refused.returncode == 1
    assert "'node-reader' does not have the required capability 'read:job'" in refused.stderr
    missing = authed.cli("job", "list")
    assert missing.returncode == 1 and "--api-key" in missing.stderr
    user = authed.cli("node", "list", "--api-user", f"reader:{READER_PASSWORD}")
    assert user.returncode == 0, user.stderr

    config = tmp_path / "client.toml"
    config.write_text(
        f'[profiles.ops]\napi = "{authed.api}"\napi_key = "{KEYS["job-writer"][0]}"\n\n'
        f'[profiles.looker]\napi = "{authed.api}"\nusername = "reader"\n'
        f'password = "{READER_PASSWORD}"\n'
    )
    monkeypatch.setattr("edge.config.default_config_path", lambda: config)
    for name in ("BACEDGE_API", "BACEDGE_API_KEY", "BACEDGE_API_USER", "BACEDGE_CLIENT_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    runner = CliRunner()
    result = runner.invoke(cli, ["auth", "whoami", "--profile", "ops"], catch_exceptions=False)
    assert result.exit_code == 0 and "User:    job-writer" in result.output, result.output
    result = runner.invoke(cli, ["node", "list", "--profile", "looker"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["node", "list", "--profile", "ops"], catch_exceptions=False)
    assert result.exit_code == 1 and "lack the capability" in result.output


def test_hash_password_reads_one_line_and_prints_only_the_hash(authed: Cluster) -> None:
    from edge.auth import verify_password

    result = authed.cli("auth", "hash-password", input="s3cret pass\nignored\n")
    assert result.returncode == 0, result.stderr
    printed = result.stdout.strip()
    assert printed.startswith("scrypt$") and "\n" not in printed and "s3cret" not in printed
    assert verify_password("s3cret pass", printed)
    assert authed.cli("auth", "hash-password", input="").returncode == 1


def test_auth_cost_per_request(authed: Cluster, tmp_path: Path) -> None:
    """p50 of a small authenticated call next to the same call unauthenticated on an
    orchestrator without users (this run, this machine); printed, bounded loosely."""
    open_cluster = Cluster(tmp_path)
    open_cluster.orchestrator(False)
    try:

        def p50(base: str, headers: dict[str, str], n: int = 200) -> float:
            with httpx.Client(base_url=base, headers=headers, timeout=10) as client:
                for _ in range(20):
                    client.get("/api/v1/agent/capabilities")
                times = []
                for _ in range(n):
                    started = time.perf_counter()
                    assert client.get("/api/v1/agent/capabilities").status_code == 200
                    times.append(time.perf_counter() - started)
            return statistics.median(times) * 1000

        figures = {
            "no auth": p50(open_cluster.api, {}),
            "bearer": p50(authed.api, key("job-reader")),
            "basic (cached)": p50(authed.api, basic("reader", READER_PASSWORD)),
        }
    finally:
        open_cluster.close()
    print("\nauth p50 ms: " + ", ".join(f"{k} {v:.2f}" for k, v in figures.items()))
    assert figures["basic (cached)"] < figures["no auth"] + 20, figures
