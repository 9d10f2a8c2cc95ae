"""The Bacalhau API contract, checked over real HTTP against a real single-node cluster."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from .cluster import Cluster

API = "/api/v1/orchestrator"


@pytest.fixture
def single(cluster: Cluster) -> Iterator[Cluster]:
    cluster.orchestrator(True, "--engines", "noop,wasm", "--labels", "site=lab")
    cluster.wait_nodes(1)
    yield cluster


def noop(name: str, **extra: object) -> dict[str, object]:
    return {
        "Name": name,
        "Type": "batch",
        "Tasks": [{"Name": "main", "Engine": {"Type": "noop"}}],
        **extra,
    }


def test_bad_specs_get_400_with_field_paths_and_nothing_is_stored(single: Cluster) -> None:
    before = httpx.get(f"{single.api}{API}/jobs").json()["Items"]
    response = httpx.put(
        f"{single.api}{API}/jobs",
        json={
            "Job": {
                "Name": "bad",
                "Tasks": [
                    {
                        "Engine": {"Type": "docker", "Params": {}},
                        "InputSources": [{"Source": {"Type": "gopher"}}],
                    }
                ],
            }
        },
    )
    assert response.status_code == 400
    body = response.json()
    assert body["Status"] == 400 and body["Code"] == "InvalidJobSpec"
    assert "Tasks[0].Engine.Params.Image: required" in body["Message"]
    assert any(
        d.startswith("Tasks[0].InputSources[0].Source.Type: unknown input source type")
        for d in body["Details"]
    )
    assert httpx.get(f"{single.api}{API}/jobs").json()["Items"] == before


def test_malformed_body_and_unknown_ids(single: Cluster) -> None:
    response = httpx.put(
        f"{single.api}{API}/jobs",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400 and "not valid JSON" in response.json()["Message"]
    response = httpx.get(f"{single.api}{API}/jobs/j-does-not-exist")
    assert response.status_code == 404
    assert response.json()["Message"].startswith("job 'j-does-not-exist' not found")
    assert httpx.get(f"{single.api}{API}/nodes/n-nope").status_code == 404
    assert httpx.delete(f"{single.api}{API}/jobs/nope").status_code == 404


def test_jobs_list_pagination_order_and_labels(single: Cluster) -> None:
    ids = [
        single.submit(noop(f"page-{i}", Labels={"batch": "a" if i < 3 else "b"})) for i in range(5)
    ]
    for job_id in ids:
        single.wait_state(job_id, "Completed")
    first = httpx.get(f"{single.api}{API}/jobs", params={"limit": 2}).json()
    assert [j["ID"] for j in first["Items"]] == ids[::-1][:2]  # newest first
    assert first["NextToken"]
    seen = [j["ID"] for j in first["Items"]]
    token = first["NextToken"]
    while token:
        page = httpx.get(f"{single.api}{API}/jobs", params={"limit": 2, "next_token": token})
        seen += [j["ID"] for j in page.json()["Items"]]
        token = page.json()["NextToken"]
    assert seen == ids[::-1]
    oldest = httpx.get(f"{single.api}{API}/jobs", params={"reverse": "true", "limit": 1}).json()
    assert oldest["Items"][0]["ID"] == ids[0]
    labelled = httpx.get(f"{single.api}{API}/jobs", params={"labels": "batch=b"}).json()
    assert {j["ID"] for j in labelled["Items"]} == set(ids[3:])
    bad = httpx.get(f"{single.api}{API}/jobs", params={"next_token": "garbage!"})
    assert bad.status_code == 400
    huge = httpx.get(f"{single.api}{API}/jobs", params={"next_token": "A" * 5000})
    assert huge.status_code == 400 and len(huge.text) < 400  # the token is not echoed whole
    unknown = {"NodeID": "n" * 100_000, "Action": "approve"}  # nor a node ID
    sent = httpx.post(f"{single.api}{API}/nodes", json=unknown)
    assert sent.status_code == 404 and len(sent.text) < 400
    maybe = httpx.get(f"{single.api}{API}/jobs", params={"reverse": "maybe"})
    assert maybe.status_code == 400 and "invalid reverse 'maybe'" in maybe.json()["Message"]
    for spelling in ("True", "t", "1", "FALSE", "0"):  # Go's ParseBool, as Bacalhau reads it
        assert httpx.get(f"{single.api}{API}/jobs", params={"reverse": spelling}).is_success


def test_jobs_and_nodes_are_filtered_by_kubernetes_label_selectors(single: Cluster) -> None:
    """`labels` is a label selector, as Bacalhau reads it: its CLI lists jobs with
    `bacalhau_canary!=true` by default (that listed nothing here before), and several
    `labels` parameters are joined, every requirement holding."""
    labels = {
        "prod-1": {"sel-env": "prod", "sel-tier": "1"},
        "dev-5": {"sel-env": "dev", "sel-tier": "5"},
        "bare-9": {"sel-tier": "9"},
    }
    ids = {name: single.submit(noop(f"sel-{name}", Labels=value)) for name, value in labels.items()}

    def listed(*selectors: str) -> set[str]:
        response = httpx.get(
            f"{single.api}{API}/jobs", params=[("labels", s) for s in selectors] + [("limit", 100)]
        )
        assert response.status_code == 200, response.text
        names = {job_id: name for name, job_id in ids.items()}
        return {names[j["ID"]] for j in response.json()["Items"] if j["ID"] in names}

    assert listed("bacalhau_canary!=true") == set(labels)
    assert listed("sel-env in (prod, dev)") == {"prod-1", "dev-5"}
    assert listed("sel-env notin (prod)") == {"dev-5", "bare-9"}
    assert listed("sel-tier>4") == {"dev-5", "bare-9"}
    assert listed("sel-tier,!sel-env") == {"bare-9"}
    assert listed("sel-tier", "sel-env!=prod") == {"dev-5", "bare-9"}
    assert listed("sel-env==prod") == {"prod-1"}
    bad = httpx.get(f"{single.api}{API}/jobs", params={"labels": "sel-env in (prod"})
    assert bad.status_code == 400 and "unbalanced" in bad.json()["Message"]
    bad = httpx.get(f"{single.api}{API}/jobs", params={"labels": "sel-tier>high"})
    assert bad.status_code == 400 and "whole number" in bad.json()["Message"]

    def nodes(selector: str) -> int:
        response = httpx.get(f"{single.api}{API}/nodes", params={"labels": selector})
        assert response.status_code == 200, response.text
        return len(response.json()["Nodes"])

    assert nodes("site in (lab)") == nodes("site=lab") == nodes("site") >= 1
    assert nodes("site notin (lab)") == nodes("!site") == 0


def test_escape_sequences_in_job_names_never_reach_the_operators_terminal(
    single: Cluster,
) -> None:
    """Anyone who may submit a job names it: a name that retitles the terminal (OSC 0),
    writes the clipboard (OSC 52) or clears the screen is shown escaped by job list and
    describe, and the job keeps its name as given (JSON output and the API are exact)."""
    evil = "evil\x1b]52;c;cGF5bG9hZA==\x07\x1b[2J\u202eRTL"
    job_id = single.submit(noop(evil))
    single.wait_state(job_id, "Completed")
    listed = single.cli("job", "list", "--limit", "50", check=True).stdout
    described = single.cli("job", "describe", job_id, check=True).stdout
    for shown in (listed, described):
        assert "\x1b" not in shown and "\x07" not in shown and "\u202e" not in shown
        assert "evil\\x1b]52;c;cGF5bG9hZA==\\x07\\x1b[2J\\u202eRTL" in shown
    as_json = json.loads(single.cli("job", "describe", job_id, "--output", "json").stdout)
    assert as_json["Job"]["Name"] == evil
    assert single.job(job_id)["Job"]["Name"] == evil


def test_job_by_name_prefix_versions_rerun_and_results(single: Cluster) -> None:
    job_id = single.submit(noop("named"))
    single.wait_state(job_id, "Completed")
    assert single.job("named")["Job"]["ID"] == job_id
    assert single.job(job_id[:12])["Job"]["ID"] == job_id
    again = httpx.put(f"{single.api}{API}/jobs", json={"Job": noop("named")})
    assert again.json()["JobID"] == job_id  # a finished job runs again as version 2
    single.wait_state(job_id, "Completed")
    rerun = httpx.put(f"{single.api}{API}/jobs/{job_id}/rerun").json()
    assert rerun["JobVersion"] == 3
    single.wait_state(job_id, "Completed")
    versions = httpx.get(f"{single.api}{API}/jobs/{job_id}/versions").json()["Items"]
    assert [v["Version"] for v in versions] == [1, 2, 3]
    sleeper = {
        "Name": "sleeper",
        "Tasks": [{"Engine": {"Type": "noop", "Params": {"SleepSeconds": 600}}}],
    }
    sleeper_id = single.submit(sleeper)
    same = httpx.put(f"{single.api}{API}/jobs", json={"Job": sleeper})
    assert same.status_code == 400 and "pass --force" in same.json()["Message"]
    forced = httpx.put(f"{single.api}{API}/jobs", json={"Job": sleeper, "Force": True})
    assert forced.json()["JobID"] == sleeper_id
    executions = httpx.get(f"{single.api}{API}/jobs/{job_id}/executions").json()["Items"]
    assert len(executions) == 3
    # job_version, as Bacalhau reads it: that version's spec and executions; 0 the latest.
    url = f"{single.api}{API}/jobs/{job_id}"
    second = httpx.get(url, params={"job_version": 2, "include": "executions,history"}).json()
    assert second["Job"]["Version"] == 2
    assert [e["JobVersion"] for e in second["Executions"]["Items"]] == [2]
    assert {h["JobVersion"] for h in second["History"]["Items"]} == {2}
    assert httpx.get(url, params={"job_version": 0}).json()["Job"]["Version"] == 3
    missing = httpx.get(url, params={"job_version": 9})
    assert missing.status_code == 404 and "no version 9" in missing.json()["Message"]
    assert httpx.get(url, params={"job_version": "-1"}).status_code == 400
    of_two = httpx.get(f"{url}/executions", params={"job_version": 2}).json()["Items"]
    assert [e["JobVersion"] for e in of_two] == [2]
    events = httpx.get(f"{url}/history", params={"job_version": 3}).json()["Items"]
    assert events and {h["JobVersion"] for h in events} == {3}
    results = httpx.get(f"{single.api}{API}/jobs/{job_id}/results").json()
    assert results == {"Items": [], "NextToken": ""}  # noop publishes nothing
    history = httpx.get(
        f"{single.api}{API}/jobs/{job_id}/history", params={"event_type": "job"}
    ).json()["Items"]
    assert all(h["Type"] == "JobLevel" for h in history)
    assert any("version 2" in h["Event"]["Message"] for h in history)


def test_nodes_agent_and_openapi(single: Cluster) -> None:
    body = httpx.get(f"{single.api}{API}/nodes").json()
    node = body["Nodes"][0]
    info = node["Info"]
    assert info["NodeID"].startswith("n-") and info["Labels"]["site"] == "lab"
    compute = info["ComputeNodeInfo"]
    assert set(compute["ExecutionEngines"]) == {"noop", "wasm"}
    assert compute["MaxCapacity"]["CPU"] > 0 and compute["MaxCapacity"]["Memory"] > 0
    assert compute["Inventory"]["CPUCount"] >= 1 and compute["Inventory"]["MemoryTotal"] > 0
    assert compute["MaxCapacity"]["GPUs"] == [] and compute["MaxCapacity"]["GPU"] == 0
    assert node["Membership"] == "APPROVED" and node["ConnectionState"]["Status"] == "CONNECTED"
    one = httpx.get(f"{single.api}{API}/nodes/{info['NodeID'][:8]}").json()
    assert one["Node"]["Info"]["NodeID"] == info["NodeID"]
    filtered = httpx.get(f"{single.api}{API}/nodes", params={"filter-approval": "PENDING"})
    assert filtered.json()["Nodes"] == []
    assert httpx.get(f"{single.api}/api/v1/agent/alive").json() == {"Status": "OK"}
    version = httpx.get(f"{single.api}/api/v1/agent/version").json()
    assert version["GitVersion"].startswith("v") and version["Product"] == "bacedge"
    assert {"Major", "Minor", "GitCommit", "BuildDate", "GOOS", "GOARCH"} <= set(version)
    agent_node = httpx.get(f"{single.api}/api/v1/agent/node").json()
    assert agent_node["NodeID"] == info["NodeID"]
    assert agent_node["NodeType"] == "Compute"  # a hybrid node, as Bacalhau reports one
    assert agent_node["SupportedProtocols"] == info["SupportedProtocols"] == ["bacedge/v1"]
    answer = httpx.get(f"{single.api}/api/v1/agent/config").json()
    config = answer["config"]
    assert config["API"]["Port"] == single.api_port
    assert config["Orchestrator"]["Enabled"] and config["Compute"]["Enabled"]
    assert config["Labels"] == {"site": "lab"} and config["DataDir"]
    assert config["Engines"]["Disabled"] == ["docker"]
    assert answer["bacedge"]["api"]["port"] == single.api_port
    spec = httpx.get(f"{single.api}/api/v1/openapi.json").json()
    assert f"{API}/jobs/{{id}}/logs" in spec["paths"] and "Job" in spec["components"]["schemas"]


def test_node_reject_and_approve(single: Cluster) -> None:
    node_id = single.nodes()[0]["Info"]["NodeID"]
    answer = httpx.put(
        f"{single.api}{API}/nodes/{node_id}",
        json={"NodeID": node_id, "Action": "reject", "Message": "test"},
    ).json()
    assert answer == {"Success": True, "Error": ""}
    assert single.nodes()[0]["Membership"] == "REJECTED"
    again = httpx.put(f"{single.api}{API}/nodes/{node_id}", json={"Action": "reject"}).json()
    assert again["Success"] is False and "already" in again["Error"]
    job_id = single.submit(
        {
            **noop("waits"),
            "Tasks": [{"Engine": {"Type": "noop"}, "Timeouts": {"QueueTimeout": 120}}],
        }
    )
    assert single.wait_state(job_id, "Queued")["Job"]["State"]["StateType"] == "Queued"
    httpx.put(f"{single.api}{API}/nodes/{node_id}", json={"Action": "approve"})
    single.wait_state(job_id, "Completed")


def test_unrunnable_job_fails_with_the_reason(single: Cluster) -> None:
    job_id = single.submit(
        {"Name": "gpu", "Tasks": [{"Engine": {"Type": "noop"}, "Resources": {"GPU": "1"}}]}
    )
    body = single.wait_state(job_id, "Failed")
    assert "too small for the task" in body["Job"]["State"]["Message"]


def test_auth_token_is_required_when_configured(cluster: Cluster) -> None:
    cluster.orchestrator(True, BACEDGE_API_AUTH_TOKEN="sekret")
    assert httpx.get(f"{cluster.api}/api/v1/agent/alive").status_code == 200
    assert httpx.get(f"{cluster.api}{API}/jobs").status_code == 401
    wrong = httpx.get(f"{cluster.api}{API}/jobs", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401, "wrong credentials are no credentials (403: no capability)"
    right = httpx.get(f"{cluster.api}{API}/jobs", headers={"Authorization": "Bearer sekret"})
    assert right.status_code == 200
    config = httpx.get(
        f"{cluster.api}/api/v1/agent/config", headers={"Authorization": "Bearer sekret"}
    ).json()["bacedge"]
    assert config["api"]["auth_token"] == "********"
    assert "sekret" not in (cluster.root / "logs" / "orchestrator.log").read_text()


def test_total_and_queue_timeouts_fail_the_job(single: Cluster) -> None:
    total = single.submit(
        {
            "Name": "too-long",
            "Tasks": [
                {
                    "Engine": {"Type": "noop", "Params": {"SleepSeconds": 600}},
                    "Timeouts": {"TotalTimeout": 1},
                }
            ],
        }
    )
    body = single.wait_state(total, "Failed")
    assert "total timeout of 1s" in body["Job"]["State"]["Message"]
    assert body["Executions"]["Items"][0]["ComputeState"]["StateType"] == 11  # cancelled
    node_id = single.nodes()[0]["Info"]["NodeID"]
    httpx.put(f"{single.api}{API}/nodes/{node_id}", json={"Action": "reject"})
    queued = single.submit(
        {"Name": "waits", "Tasks": [{"Engine": {"Type": "noop"}, "Timeouts": {"QueueTimeout": 1}}]}
    )
    body = single.wait_state(queued, "Failed")
    assert "queue timeout of 1s" in body["Job"]["State"]["Message"]


def test_documented_bacalhau_spec_is_accepted_by_the_api(single: Cluster) -> None:
    from pathlib import Path

    from edge.jobspec import parse_spec_text

    specs = Path(__file__).resolve().parents[1] / "unit" / "specs"
    for name in ("bacalhau-docs-batch.yaml", "bacalhau-docs-batch-lowercase.yaml"):
        data = parse_spec_text((specs / name).read_text())
        response = httpx.put(f"{single.api}{API}/jobs", json={"Job": data, "Force": True})
        assert response.status_code == 200, response.text
        job = httpx.get(f"{single.api}{API}/jobs/{response.json()['JobID']}").json()["Job"]
        assert job["Tasks"][0]["Engine"]["Params"]["Image"] == "ubuntu:latest"
