"""Conformance with Bacalhau's published API (issue 10): every answer of a real cluster is
checked, recursively, against the shapes of Bacalhau's OpenAPI document as
tests/bacalhau_schema.py writes them out, and Bacalhau's documented job specs of every type
(tests/integration/conformance_specs/) are submitted and run to their expected state.

A Bacalhau client decoding strictly must accept every answer: each property Bacalhau defines
has its JSON type, enum values are Bacalhau's, list answers use its wrappers, and required
properties are there. What bacedge sends beyond that is listed below; nothing else may appear,
and no addition may differ from a Bacalhau key only in case (Go would decode it into that key).
"""

from __future__ import annotations

import copy
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from edge.models import (
    ComputeState,
    ComputeStateType,
    Execution,
    GPUInfo,
    Job,
    JobHistory,
    NodeInfo,
    NodeState,
    Resources,
    RunOutput,
    StateChange,
)
from tests.bacalhau_schema import Checker

from .cluster import Cluster, wait_until

API = "/api/v1/orchestrator"
SPECS = Path(__file__).parent / "conformance_specs"
LABEL = "site=conformance-lab"  # what the documented specs' constraints select

ADDITIONS: dict[str, set[str]] = {
    "apimodels.IsAliveResponse": {"Store"},  # the local S3 store's health, when it runs
    "apimodels.GetVersionResponse": {"Product"},  # "bacedge": which implementation answers
    "models.BuildVersionInfo": {"Product"},
    "apimodels.GetAgentConfigResponse": {"bacedge"},  # bacedge's own config, as it prints it
    "models.ComputeNodeInfo": {"Inventory", "Stores", "AllowedLocalPaths"},
    "models.NodeState": {"Scheduling"},  # cordon/drain; left out while the node takes work
    "models.GPU": {"UUID", "DriverVersion", "MemoryUsed", "Utilization"},
    "models.Execution": {"PartitionCount", "JobVersion"},
    "models.JobHistory": {"JobVersion"},
}
"""Keys bacedge sends that Bacalhau's document does not define; Go clients ignore them."""

ENUM_ADDITIONS: dict[str, set[Any]] = {
    # bacedge nodes speak neither of Bacalhau's node protocols: they say so.
    "models.Protocol": {"bacedge/v1"},
}

NOT_SENT: dict[str, set[str]] = {
    "models.ComputeNodeInfo": {"address"},  # Bacalhau 1.7: where the node's ports are reached
    "models.ConnectionState": {"LastComputeSeqNum", "LastOrchestratorSeqNum"},  # NCL sequencing
    "models.JobHistory": {"NodeID"},
}
"""Bacalhau properties no answer of this cluster carries (the config's are not listed)."""


def checker() -> Checker:
    return Checker(ADDITIONS, ENUM_ADDITIONS)


def conforms(answer: Any, definition: str, path: str, check: Checker | None = None) -> None:
    check = check or checker()
    before = len(check.errors)
    check.definition(answer, definition, path)
    problems = check.errors[before:]
    assert not problems, f"{len(problems)} difference(s) from Bacalhau:\n" + "\n".join(problems)


def get(cluster: Cluster, path: str, **params: Any) -> Any:
    response = httpx.get(f"{cluster.api}{path}", params=params, timeout=10)
    assert response.status_code == 200, f"GET {path}: {response.status_code} {response.text}"
    return response.json()


def spec(name: str) -> dict[str, Any]:
    loaded = yaml.safe_load((SPECS / f"{name}.yaml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def renamed(job: dict[str, Any], name: str) -> dict[str, Any]:
    """The spec under another name (specs write `Name:` or `name:`)."""
    out = {k: v for k, v in job.items() if k.lower() != "name"}
    out["Name"] = name
    return out


# -- the checker itself ----------------------------------------------------------------------


def test_the_checker_names_the_path_of_every_difference() -> None:
    """The checks can fail, and say where: each broken field of a conforming answer is found."""
    job = Job.model_validate(spec("service-noop")).wire()
    conforms(job, "models.Job", "Job")
    broken = copy.deepcopy(job)
    broken["Tasks"][0]["Resources"]["CPU"] = 1
    broken["State"]["StateType"] = 4
    broken["Tasks"][0]["Network"]["Type"] = "bridge"
    broken["Tasks"][0]["network"] = {}
    broken["Tasks"][0]["Shell"] = "sh"
    del broken["Namespace"]
    check = checker()
    check.definition(broken, "models.Job", "Job")
    assert check.errors == [
        "Job.Tasks[0].Resources.CPU: expected string, got int",
        "Job.Tasks[0].Network.Type: 'bridge' is not in Bacalhau's models.Network "
        "('Default', 'None', 'Host', 'Full', 'HTTP', 'Bridge')",
        "Job.Tasks[0].network: Bacalhau's models.Task spells this key 'Network'",
        "Job.Tasks[0].Shell: not a property of Bacalhau's models.Task "
        "and not a listed bacedge addition",
        "Job.State.StateType: expected string, got int",
        "Job.Namespace: required by Bacalhau's models.Job, missing",
    ]
    node = NodeState().wire()
    node["ConnectionState"]["DisconnectedSince"] = ""
    node["Info"]["ComputeNodeInfo"]["MaxCapacity"]["Memory"] = -1
    check = checker()
    check.definition(node, "models.NodeState", "Node")
    assert check.errors == [
        "Node.Info.ComputeNodeInfo.MaxCapacity.Memory: expected non-negative integer, got int",
        "Node.ConnectionState.DisconnectedSince: expected RFC 3339 time string, got string ''",
    ]


def test_wire_models_conform_where_a_cluster_here_cannot_show_them() -> None:
    """Shapes a one-box cluster never answers with: a node that never connected, GPUs, an
    orchestrator-only node, an execution carrying its job and output, history of both kinds."""
    gpu = GPUInfo(Index=0, Name="Tesla T4", Memory=15360, UUID="GPU-1", MemoryUsed=10)
    node = NodeState(Info=NodeInfo(NodeID="n-1"))
    node.Info.ComputeNodeInfo.MaxCapacity = Resources(CPU=4, Memory=2**34, GPU=1, GPUs=[gpu])
    conforms(node.wire(), "models.NodeState", "Node")
    conforms(NodeInfo(NodeID="n-2", NodeType="Requester").wire(), "models.NodeInfo", "Node")
    job = Job.model_validate({**spec("batch-noop"), "ID": "j-1"})
    execution = Execution(
        ID="e-1",
        JobID="j-1",
        NodeID="n-1",
        Job=job,
        ComputeState=ComputeState(StateType=ComputeStateType.FAILED, Details={"Lost": "true"}),
        RunOutput=RunOutput(Stdout="x", Stderr="y", ExitCode=3, ErrorMsg="exit 3"),
    )
    conforms(execution.wire(), "models.Execution", "Execution")
    history = [
        JobHistory(JobID="j-1", JobState=StateChange(Previous="Pending", New="Running")),
        JobHistory(
            Type="ExecutionLevel",
            JobID="j-1",
            ExecutionID="e-1",
            ExecutionState=StateChange(Previous=6, New=10),
        ),
    ]
    for item in history:
        # The orchestrator stamps every event; a model made here has no time yet.
        wire = item.wire() | {"Time": "2025-01-02T03:04:05.5Z"}
        wire["Event"]["Timestamp"] = wire["Time"]
        conforms(wire, "models.JobHistory", "History")


# -- a real cluster ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lab() -> Iterator[Cluster]:
    """One process with both roles, labelled as the specs' constraints want; docker tasks run
    on it when BACEDGE_TEST_PODMAN_SOCKET names a rootless Podman socket."""
    root = Path(tempfile.mkdtemp(prefix="bacedge-conformance-"))
    root.chmod(0o755)  # the Podman service user traverses it to mount inputs
    extra = ["--labels", LABEL]
    socket = os.environ.get("BACEDGE_TEST_PODMAN_SOCKET")
    if socket:
        from tests.podman_image import load_busybox

        load_busybox(socket)
        extra += ["--podman-socket", socket]
    cluster = Cluster(root)
    try:
        cluster.orchestrator(True, *extra, BACEDGE_ORCHESTRATOR_RESTART_DELAY="0.2")
        cluster.wait_nodes(1)
        yield cluster
    except BaseException:
        print(cluster.logs())
        raise
    finally:
        cluster.close()
        shutil.rmtree(root, ignore_errors=True)


def submit(cluster: Cluster, job: dict[str, Any]) -> str:
    response = httpx.put(f"{cluster.api}{API}/jobs", json={"Job": job}, timeout=10)
    assert response.status_code == 200, response.text
    answer = response.json()
    conforms(answer, "apimodels.PutJobResponse", "PutJobResponse")
    return str(answer["JobID"])


def stop(cluster: Cluster, job_id: str) -> None:
    response = httpx.delete(f"{cluster.api}{API}/jobs/{job_id}", params={"reason": "done"})
    assert response.status_code == 200, response.text
    conforms(response.json(), "apimodels.StopJobResponse", "StopJobResponse")
    cluster.wait_state(job_id, "Stopped", timeout=60)


KINDS = {"batch": "Completed", "ops": "Completed", "daemon": "Running", "service": "Running"}


@pytest.mark.parametrize("name", sorted(p.stem for p in SPECS.glob("*.yaml")))
def test_documented_job_spec_is_accepted_and_runs(lab: Cluster, name: str) -> None:
    engines = lab.nodes()[0]["Info"]["ComputeNodeInfo"]["ExecutionEngines"]
    job = spec(name)
    engine = name.split("-", 1)[1]
    if engine not in engines:
        if engine == "docker" and not os.environ.get("BACEDGE_TEST_PODMAN_SOCKET"):
            pytest.skip("BACEDGE_TEST_PODMAN_SOCKET is not set: no docker task runs here")
        raise AssertionError(f"the {engine} engine is not enabled here: {engines}")
    kind = name.split("-", 1)[0]
    job_id = submit(lab, job)
    body = lab.wait_state(job_id, KINDS[kind], "Failed", "Stopped", timeout=120)
    executions = body["Executions"]["Items"]
    assert body["Job"]["State"]["StateType"] == KINDS[kind], (body["Job"]["State"], executions)
    assert body["Job"]["Type"] == kind
    if kind == "service":
        want = spec(name)["Count"]
        wait_until(
            lambda: (
                sum(e["ComputeState"]["StateType"] == 6 for e in lab.executions(job_id)) == want
            ),
            60,
            f"{want} running replicas",
        )
    elif kind == "daemon":
        wait_until(
            lambda: any(e["ComputeState"]["StateType"] == 6 for e in lab.executions(job_id)),
            60,
            "the daemon's execution to run",
        )
    else:
        assert executions and all(e["ComputeState"]["StateType"] == 9 for e in executions)
    conforms(get(lab, f"{API}/jobs/{job_id}", include="executions,history"), *GET_JOB)
    if kind in ("daemon", "service"):
        stop(lab, job_id)
        conforms(get(lab, f"{API}/jobs/{job_id}", include="executions,history"), *GET_JOB)


GET_JOB = ("apimodels.GetJobResponse", "GetJobResponse")


def test_every_endpoint_answers_in_bacalhaus_shapes(lab: Cluster) -> None:
    check = checker()

    def answer(path: str, definition: str, **params: Any) -> Any:
        body = get(lab, path, **params)
        conforms(body, definition, f"GET {path}", check)
        return body

    answer("/api/v1/agent/alive", "apimodels.IsAliveResponse")
    answer("/api/v1/agent/version", "apimodels.GetVersionResponse")
    answer("/api/v1/agent/node", "models.NodeInfo")
    answer("/api/v1/agent/config", "apimodels.GetAgentConfigResponse")

    # A finished batch job with a published result, one updated to a second version, and a
    # daemon that runs until it is stopped.
    wasm = submit(lab, renamed(spec("batch-wasm"), "endpoints-wasm"))
    lab.wait_state(wasm, "Completed", "Failed", timeout=60)
    noop = renamed(spec("batch-noop"), "endpoints-noop")
    first = submit(lab, noop)
    lab.wait_state(first, "Completed", "Failed")
    assert submit(lab, {**noop, "Meta": {"round": "2"}}) == first  # same name: version 2
    daemon = submit(lab, renamed(spec("daemon-noop"), "endpoints-daemon"))
    lab.wait_state(daemon, "Running")
    wait_until(
        lambda: any(e["ComputeState"]["StateType"] == 6 for e in lab.executions(daemon)),
        30,
        "the daemon's execution",
    )

    listed = answer(f"{API}/jobs", "apimodels.ListJobsResponse")
    assert {j["ID"] for j in listed["Items"]} >= {wasm, first, daemon}
    page = answer(f"{API}/jobs", "apimodels.ListJobsResponse", limit=1)
    assert len(page["Items"]) == 1 and page["NextToken"]
    answer(f"{API}/jobs", "apimodels.ListJobsResponse", limit=1, next_token=page["NextToken"])
    for job_id in (wasm, first, daemon):
        for include in ("", "executions", "history", "executions,history"):
            body = answer(f"{API}/jobs/{job_id}", "apimodels.GetJobResponse", include=include)
            assert ("Executions" in body) == ("executions" in include)
            assert ("History" in body) == ("history" in include)
        answer(f"{API}/jobs/{job_id}/history", "apimodels.ListJobHistoryResponse")
        answer(f"{API}/jobs/{job_id}/executions", "apimodels.ListJobExecutionsResponse")
        answer(f"{API}/jobs/{job_id}/results", "apimodels.ListJobResultsResponse")
        answer(f"{API}/jobs/{job_id}/versions", "apimodels.ListJobsResponse")
    results = get(lab, f"{API}/jobs/{wasm}/results")["Items"]
    # As Bacalhau's local publisher: the result is a urlDownload source of its archive.
    assert [r["Type"] for r in results] == ["urlDownload"] and results[0]["Params"]["URL"]
    versions = get(lab, f"{API}/jobs/{first}/versions")["Items"]
    assert [v["Version"] for v in versions] == [1, 2]
    answer(f"{API}/jobs/{wasm}/history", "apimodels.ListJobHistoryResponse", limit=2)

    nodes = answer(f"{API}/nodes", "apimodels.ListNodesResponse")
    node_id = nodes["Nodes"][0]["Info"]["NodeID"]
    answer(f"{API}/nodes/{node_id}", "apimodels.GetNodeResponse")

    def act(method: str, path: str, **body: Any) -> Any:
        response = httpx.request(method, f"{lab.api}{path}", json=body, timeout=10)
        assert response.status_code == 200, response.text
        conforms(response.json(), "apimodels.PutNodeResponse", f"{method} {path}", check)
        return response.json()

    assert act("PUT", f"{API}/nodes/{node_id}", Action="cordon", Message="m")["Success"]
    cordoned = answer(f"{API}/nodes/{node_id}", "apimodels.GetNodeResponse")
    assert cordoned["Node"]["Scheduling"]["Status"] == "CORDONED"
    answer(f"{API}/nodes", "apimodels.ListNodesResponse")
    assert act("POST", f"{API}/nodes", NodeID=node_id, Action="uncordon")["Success"]
    refused = act("PUT", f"{API}/nodes", NodeID=node_id, Action="approve", Message="again")
    assert refused["Success"] is False and refused["Error"]
    assert "Scheduling" not in answer(f"{API}/nodes/{node_id}", "apimodels.GetNodeResponse")

    stop(lab, daemon)
    answer(f"{API}/jobs/{daemon}", "apimodels.GetJobResponse", include="executions,history")
    answer(f"{API}/jobs", "apimodels.ListJobsResponse", reverse="true", order_by="created_at")

    assert not check.errors
    unsent = {k: v for k, v in check.unsent().items() if not k.startswith("types.")}
    assert unsent == NOT_SENT, unsent
    added = {k: v for k, v in check.added.items() if v}
    assert added.keys() <= ADDITIONS.keys()
