"""Wire shapes and rules checked against Bacalhau's published models and API (issue 10)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from edge.client import _parse_get_job, _parse_version
from edge.compute.runner import task_env, task_inputs
from edge.config import Config
from edge.executors import enabled_engines
from edge.jobspec import SpecError, SpecLimits, load_job, validate_job_spec
from edge.models import (
    AllocatedResources,
    BuildVersionInfo,
    ComputeStateType,
    Execution,
    Job,
    JobHistory,
    JobStateType,
    NetworkConfig,
    NetworkType,
    NodeInfo,
    NodeState,
    Resources,
)
from edge.orchestrator.agent_config import bacalhau_config, go_duration
from edge.orchestrator.history import execution_event, job_event
from edge.orchestrator.nodes import LiveNode
from edge.orchestrator.scheduler import matching_nodes

# -- 1. GetJob nests History and Executions as list answers ---------------------------------


def test_get_job_reads_bacalhau_list_answers_and_bare_lists() -> None:
    execution = {"ID": "e-1", "ComputeState": {"StateType": 9}}
    history = {"JobID": "j-1", "JobVersion": 2, "Type": "JobLevel"}
    nested = {
        "Job": {"ID": "j-1"},
        "History": {"Items": [history], "NextToken": ""},
        "Executions": {"Items": [execution], "NextToken": ""},
    }
    job, hist, execs = _parse_get_job(nested)
    assert job.ID == "j-1" and hist is not None and execs is not None
    assert hist[0].JobVersion == 2 and execs[0].ID == "e-1"
    _, hist, execs = _parse_get_job({"Job": {}, "History": [history], "Executions": [execution]})
    assert hist is not None and execs is not None and len(hist) == len(execs) == 1
    assert _parse_get_job({"Job": {}})[1:] == (None, None)


# -- 2. AllocatedResources: task name -> resources --------------------------------------


def test_allocated_resources_are_keyed_by_task_name() -> None:
    need = Resources(CPU=0.5, Memory=256 * 10**6)
    execution = Execution(AllocatedResources=AllocatedResources(Tasks={"main": need}))
    wire = execution.wire()["AllocatedResources"]
    assert set(wire) == {"Tasks"} and set(wire["Tasks"]) == {"main"}
    assert wire["Tasks"]["main"]["CPU"] == 0.5 and wire["Tasks"]["main"]["Memory"] == 256 * 10**6
    assert execution.AllocatedResources.total().CPU == 0.5


def test_allocated_resources_stored_flat_are_read_as_the_main_task() -> None:
    old = Execution.model_validate({"AllocatedResources": {"Tasks": {"CPU": 1, "Memory": 5}}})
    assert old.AllocatedResources.Tasks["main"].Memory == 5
    assert Execution.model_validate({"AllocatedResources": {}}).AllocatedResources.Tasks == {}


# -- 3. Network.Type in Bacalhau's spelling -----------------------------------------------


@pytest.mark.parametrize(
    "given, sent",
    [
        ("none", "None"),
        ("NONE", "None"),
        ("http", "HTTP"),
        ("Http", "HTTP"),
        ("host", "Host"),
        ("full", "Full"),
        ("bridge", "Bridge"),
        ("", "Default"),
        (None, "Default"),
    ],
)
def test_network_type_any_case_in_bacalhau_spelling_out(given: str | None, sent: str) -> None:
    network = NetworkConfig.model_validate({"Type": given})
    assert network.wire()["Type"] == sent
    assert NetworkConfig.model_validate(network.wire()) == network


def test_unknown_network_type_is_a_spec_error_with_its_path() -> None:
    problems = validate_job_spec(
        {"Tasks": [{"Engine": {"Type": "noop"}, "Network": {"Type": "wifi"}}]}
    )
    assert problems and problems[0].startswith("Tasks[0].Network.Type: ")


def test_network_type_enum_compares_by_member() -> None:
    assert NetworkType("http") is NetworkType.HTTP
    assert NetworkConfig().Type is NetworkType.DEFAULT


# -- 5. version: BuildVersionInfo embedded, Bacalhau's JSON tags ----------------------------


def test_version_is_flat_with_bacalhau_json_keys() -> None:
    wire = BuildVersionInfo(Major="0", Minor="1", GitVersion="v0.1.0", GOOS="linux").wire()
    assert wire["GitVersion"] == "v0.1.0" and wire["Major"] == "0" and wire["GOOS"] == "linux"
    assert "gitversion" not in wire  # the legacy v1beta1 spelling is read, not sent
    assert wire["BuildDate"] == "0001-01-01T00:00:00Z"  # a time a Go client can parse


@pytest.mark.parametrize(
    "body",
    [
        {"gitversion": "v1.7.0", "major": "1", "minor": "7", "goarch": "amd64"},  # v1beta1
        {"GitVersion": "v1.7.0", "Major": "1", "Minor": "7", "GOARCH": "amd64"},  # Bacalhau
        {"BuildVersionInfo": {"GitVersion": "v1.7.0", "Major": "1", "Minor": "7"}},  # older
    ],
)
def test_client_reads_every_version_shape(body: dict[str, Any]) -> None:
    info = _parse_version(body)
    assert info["GitVersion"] == "v1.7.0" and info["Major"] == "1" and info["Minor"] == "7"


# -- 4, 6. node type, protocols, history versions, agent config -------------------------


def test_node_info_carries_supported_protocols() -> None:
    assert NodeInfo().wire()["SupportedProtocols"] == ["bacedge/v1"]
    theirs = NodeInfo.model_validate({"NodeType": "Requester", "SupportedProtocols": ["ncl/v1"]})
    assert theirs.SupportedProtocols == ["ncl/v1"]


def test_history_events_carry_the_job_version() -> None:
    assert job_event("j-1", "Submission", "Job submitted", version=3).model().JobVersion == 3
    event = execution_event("j-1", "e-1", "ExecutionState", "Running", version=2)
    assert JobHistory.model_validate(event.model().wire()).JobVersion == 2


@pytest.mark.parametrize("kind", ["job", "execution", "job-note", "execution-note"])
def test_history_events_built_as_json_match_validated_models(kind: str) -> None:
    """The builders write an event's JSON straight from its fields, for speed: it must be
    what validating the same fields and dumping the model makes, to the byte (control
    characters, quotes and non-ASCII text included), and keep no reference to the
    caller's dict."""
    details = {"NodeID": "n-1", "Why": 'quote " back\\slash \x01 tab\t é ✓ \u2028'}
    message = 'line\nbreak "quoted" \x7f naïve'
    change: dict[str, object] | None = None
    if kind == "job-note":  # no state change: an event with a message only
        event = job_event("j-1", "Scheduling", message, details=details, version=2)
    elif kind == "execution-note":
        event = execution_event("j-1", "e-1", "LateReport", message, details=details)
    elif kind == "job":
        event = job_event(
            "j-1",
            "Scheduling",
            message,
            JobStateType.PENDING,
            JobStateType.QUEUED,
            4,
            details,
            version=2,
        )
        change = {"Previous": "Pending", "New": "Queued"}
    else:
        event = execution_event(
            "j-1",
            "e-1",
            "ExecutionState",
            message,
            ComputeStateType.BID_ACCEPTED,
            ComputeStateType.RUNNING,
            details,
            version=2,
        )
        change = {
            "Previous": int(ComputeStateType.BID_ACCEPTED),
            "New": int(ComputeStateType.RUNNING),
        }
    job_level = kind.startswith("job")
    validated = JobHistory.model_validate(
        {
            "Type": "JobLevel" if job_level else "ExecutionLevel",
            "JobID": "j-1",
            "JobVersion": 0 if kind == "execution-note" else 2,
            "ExecutionID": "" if job_level else "e-1",
            "JobState": change if job_level else None,
            "ExecutionState": None if job_level else change,
            "NewRevision": 4 if kind == "job" else 0,
            "Comment": message,
            "Time": event.Time,
            "Event": {
                "Topic": {"job": "Scheduling", "job-note": "Scheduling"}.get(
                    kind, "LateReport" if kind == "execution-note" else "ExecutionState"
                ),
                "Message": message,
                "Timestamp": event.Time,
                "Details": dict(details),
            },
        }
    )
    assert event.Data == validated.model_dump_json(by_alias=True, exclude={"SeqNum"})
    assert (event.JobID, event.ExecutionID, event.Type) == (
        "j-1",
        validated.ExecutionID,
        validated.Type.value,
    )
    details["NodeID"] = "changed"
    assert event.model().Event.Details["NodeID"] == "n-1"


def test_offer_encoding_attaches_each_job_once_and_matches_the_model_encoding() -> None:
    from edge.transport.messages import OfferBatch, decode, encode, encode_offer

    job = load_job(
        {"Type": "batch", "Count": 2, "Tasks": [{"Name": "main", "Engine": {"Type": "noop"}}]}
    )
    job.ID = "j-1"
    executions = [
        Execution(ID=f"e-{i}", JobID=job_id, NodeID="n-1", PartitionIndex=i)
        for i, job_id in enumerate(["j-1", "j-1", "j-gone"])
    ]
    for fresh in (False, True):
        wire = encode_offer(executions, {"j-1": encode(job)}, fresh=fresh)
        model = OfferBatch(
            Executions=[
                e.model_copy(update={"Job": job if e.JobID == "j-1" else None}) for e in executions
            ],
            Fresh=fresh,
        )
        assert {"Fresh": False} | json.loads(wire) == json.loads(encode(model))
        decoded = decode(OfferBatch, wire)
        assert decoded == model and decoded.Executions[2].Job is None
        assert decoded.Fresh is fresh


def test_offers_decoded_with_a_job_cache_equal_the_plain_decoding_and_share_each_version() -> None:
    """A node decodes offers keeping each job version once: the executions equal what the
    plain decoding gives, executions of one version share one Job, another version (or a
    job the cache let go) is its own, and bad offers are refused as before."""
    from edge.transport.messages import (
        JobCache,
        OfferBatch,
        decode,
        decode_offer,
        encode,
        encode_offer,
    )

    spec = {"Type": "batch", "Count": 2, "Tasks": [{"Name": "main", "Engine": {"Type": "noop"}}]}
    v1, v2, other = load_job(spec), load_job(spec), load_job(spec)
    v1.ID = v2.ID = "j-1"
    v2.Version, other.ID = 2, "j-2"
    v1.Tasks[0].Env = {"A": "1"}  # versions of one job differ
    cache = JobCache(size=2)
    first = encode_offer(
        [Execution(ID=f"e-{i}", JobID="j-1", NodeID="n") for i in range(3)], {"j-1": encode(v1)}
    )
    second = encode_offer(
        [
            Execution(ID="e-3", JobID="j-1", NodeID="n"),
            Execution(ID="e-4", JobID="j-gone", NodeID="n"),
        ],
        {"j-1": encode(v1)},
        fresh=True,
    )
    third = encode_offer([Execution(ID="e-5", JobID="j-1", NodeID="n")], {"j-1": encode(v2)})
    decoded = [decode_offer(wire, cache) for wire in (first, second, third)]
    for wire, offer in zip((first, second, third), decoded, strict=True):
        assert offer == decode(OfferBatch, wire)
        assert encode(offer) == encode(decode(OfferBatch, wire))
    jobs = [e.Job for offer in decoded for e in offer.Executions]
    assert all(job is jobs[0] for job in jobs[1:4]) and jobs[4] is None
    assert jobs[5] is not jobs[0] and jobs[5] is not None and jobs[5].Version == 2
    # At most `size` versions are held: the oldest goes first.
    decode_offer(encode_offer([Execution(ID="e-6", JobID="j-2")], {"j-2": encode(other)}), cache)
    again = decode_offer(first, cache).Executions[0].Job
    assert again == jobs[0] and again is not jobs[0]
    # More new versions in one offer than the cache holds: every execution keeps its job.
    small = JobCache(size=1)
    decode_offer(first, small)
    third_job, fourth_job = load_job(spec), load_job(spec)
    third_job.ID, fourth_job.ID = "j-3", "j-4"
    crowded = encode_offer(
        [Execution(ID=f"e-{j}", JobID=j) for j in ("j-1", "j-3", "j-4", "j-1")],
        {"j-1": encode(v1), "j-3": encode(third_job), "j-4": encode(fourth_job)},
    )
    offer = decode_offer(crowded, small)
    assert [e.Job.ID if e.Job else None for e in offer.Executions] == ["j-1", "j-3", "j-4", "j-1"]
    assert offer == decode(OfferBatch, crowded)
    for bad in (b"not json", b"[" * 100_000, b'{"Executions": [{"ID": 1}]}', b'{"Executions": 3}'):
        with pytest.raises(ValueError):
            decode_offer(bad, cache)


def test_agent_config_uses_bacalhau_key_names_and_redacts_secrets() -> None:
    config = Config.model_validate(
        {
            "node": {"labels": {"site": "a"}, "data_dir": "/var/lib/bacedge"},
            "api": {"host": "0.0.0.0", "port": 1234},
            "nats": {"token": "sekret"},
            "orchestrator": {"auto_approve_nodes": False, "node_heartbeat_timeout": 45},
            "compute": {"allowed_local_paths": ["/srv"], "heartbeat_interval": 15},
        }
    )
    node = NodeInfo.model_validate({"ComputeNodeInfo": {"ExecutionEngines": ["noop", "wasm"]}})
    out = bacalhau_config(config, node)
    assert out["API"] == {"Host": "0.0.0.0", "Port": 1234}
    assert out["DataDir"] == "/var/lib/bacedge" and out["Labels"] == {"site": "a"}
    assert out["Orchestrator"]["Enabled"] and out["Compute"]["Enabled"]
    assert out["Orchestrator"]["NodeManager"] == {
        "DisconnectTimeout": "45s",
        "ManualApproval": True,
    }
    assert out["Compute"]["AllowListedLocalPaths"] == ["/srv"]
    assert out["Compute"]["Heartbeat"] == {"Interval": "15s"}
    assert out["Engines"] == {"Disabled": ["docker"]}
    assert out["Orchestrator"]["Auth"] == {"Token": "<redacted>"}
    assert "sekret" not in repr(out) and isinstance(config.nats.token, SecretStr)
    assert bacalhau_config(config, None)["Compute"]["Enabled"] is False


@pytest.mark.parametrize(
    "seconds, text",
    [(0, "0s"), (0.5, "500ms"), (15, "15s"), (90, "1m30s"), (1800, "30m0s"), (3600, "1h0m0s")],
)
def test_go_durations(seconds: float, text: str) -> None:
    assert go_duration(seconds) == text


# -- 7. Bacalhau's legacy wasm spec --------------------------------------------------------

# testdata/jobs/wasm_legacy.yaml in bacalhau-project/bacalhau, with a shorter module.
LEGACY_WASM = """\
Name: Wasm Job
Type: batch
Count: 1
Tasks:
  - Name: main
    Engine:
      Type: wasm
      Params:
        EntryModule:
          Alias: ""
          Source:
            Params:
              URL: |-
                data:application/wasm;base64,AGFzbQEAAAA=
            Type: inline
          Target: ""
        Entrypoint: _start
        EnvironmentVariables: null
        ImportModules: []
        Parameters: null
"""


def test_bacalhau_legacy_wasm_spec_is_rewritten_at_submission() -> None:
    from edge.jobspec import parse_spec_text

    job = load_job(parse_spec_text(LEGACY_WASM))
    task = job.task
    assert task.Engine.param("EntryModule") == "/main.wasm"
    assert len(task.InputSources) == 1
    source = task.InputSources[0]
    assert source.Target == "/main.wasm" and source.Source.Type == "inline"
    assert source.Source.param("URL") == "data:application/wasm;base64,AGFzbQEAAAA="
    assert task_inputs(task) == [source]  # the node mounts it once
    assert validate_job_spec(job.wire()) == []  # the rewritten job is valid as it stands


def test_legacy_entry_module_target_does_not_clash_with_another_input() -> None:
    spec: dict[str, Any] = {
        "Tasks": [
            {
                "Engine": {
                    "Type": "wasm",
                    "Params": {
                        "entrymodule": {
                            "Alias": "app.wasm",
                            "Source": {"Type": "inline", "Params": {"URL": "data:,x"}},
                        }
                    },
                },
                "InputSources": [
                    {
                        "Source": {"Type": "inline", "Params": {"URL": "data:,y"}},
                        "Target": "/app.wasm",
                    }
                ],
            }
        ]
    }
    task = load_job(spec).task
    entry = task.Engine.param("EntryModule")
    assert entry == "/entry-module-1/app.wasm"
    assert [s.Target for s in task.InputSources] == ["/app.wasm", entry]


def test_a_broken_legacy_entry_module_is_reported_at_its_path() -> None:
    problems = validate_job_spec(
        {
            "Tasks": [
                {"Engine": {"Type": "wasm", "Params": {"EntryModule": {"Source": {"Type": "s3"}}}}}
            ]
        }
    )
    assert problems == ["Tasks[0].Engine.Params.EntryModule.Source.Params.Bucket: required"]


# -- 9. partitions -------------------------------------------------------------------------


def _node(node_id: str, engines: list[str], labels: dict[str, str]) -> LiveNode:
    return LiveNode(
        state=NodeState.model_validate(
            {
                "Info": {
                    "NodeID": node_id,
                    "Labels": labels,
                    "ComputeNodeInfo": {
                        "ExecutionEngines": engines,
                        "MaxCapacity": {"CPU": 4, "Memory": 2**30, "Disk": 2**30},
                    },
                },
                "ConnectionState": {"Status": "CONNECTED"},
            }
        )
    )


def test_ops_partitions_are_the_nodes_matching_engine_and_constraints() -> None:
    job = Job.model_validate(
        {
            "Type": "ops",
            "Constraints": [{"Key": "site", "Operator": "=", "Values": ["a"]}],
            "Tasks": [{"Engine": {"Type": "noop"}}],
        }
    )
    nodes = [
        _node("n-1", ["noop"], {"site": "a"}),
        _node("n-2", ["noop"], {"site": "a"}),
        _node("n-3", ["noop"], {"site": "b"}),
        _node("n-4", ["wasm"], {"site": "a"}),
    ]
    matching, reasons = matching_nodes(job, Resources(), nodes)
    assert [n.node_id for n in matching] == ["n-1", "n-2"]
    assert "labels that do not match" in str(reasons["n-3"]) and "'noop'" in str(reasons["n-4"])


def test_partition_count_is_the_one_the_orchestrator_decided() -> None:
    job = Job.model_validate({"Type": "ops", "Count": 0, "Tasks": [{"Engine": {"Type": "noop"}}]})
    placed = Execution(ID="e-1", JobID="j-1", Job=job, PartitionIndex=1, PartitionCount=2)
    env = task_env(placed, "n-1", 1)
    assert env["BACALHAU_PARTITION_INDEX"] == "1" and env["BACALHAU_PARTITION_COUNT"] == "2"
    # Placed by an orchestrator that did not say: the count still covers the index.
    older = Execution(ID="e-2", JobID="j-1", Job=job, PartitionIndex=2)
    assert task_env(older, "n-1", 1)["BACALHAU_PARTITION_COUNT"] == "3"


# -- 8. engines ----------------------------------------------------------------------------


def test_no_engine_list_means_every_engine_that_works_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    from edge.executors import podman

    monkeypatch.setattr(podman, "default_socket", lambda: str(tmp_path / "no-podman.sock"))
    auto = enabled_engines([], {"docker": {"socket": ""}})
    wasm_loads = importlib.util.find_spec("wasmer_sdk") is not None
    assert auto == ["noop", "wasm"] if wasm_loads else ["noop"]  # no Podman answers here


def test_a_configured_podman_socket_enables_docker(tmp_path: Path) -> None:
    socket = {"docker": {"socket": str(tmp_path / "podman.sock")}}
    assert enabled_engines(["noop"], socket) == ["noop", "docker"]
    assert enabled_engines(["podman"], socket) == ["docker"]
    assert enabled_engines(["noop"], {"docker": {"socket": ""}}) == ["noop"]
    assert "docker" in enabled_engines([], socket)


def test_config_engines_default_to_auto() -> None:
    assert Config().compute.engines == []


# -- 10. bounds ----------------------------------------------------------------------------


def test_a_huge_count_is_refused_naming_the_field_and_the_limit() -> None:
    limits = SpecLimits(max_count=1000, max_timeout=86400, source="[orchestrator]")
    spec = {"Count": 100_000_000, "Tasks": [{"Engine": {"Type": "noop"}}]}
    with pytest.raises(SpecError) as caught:
        load_job(spec, limits)
    assert caught.value.problems == [
        "Count: 100000000 is more than the limit of 1000 ([orchestrator] max_count)"
    ]
    assert load_job({**spec, "Count": 1000}, limits).Count == 1000


@pytest.mark.parametrize(
    "job, fragment",
    [
        ({"Priority": -1}, "Priority: must be 0 or more (got -1)"),
        ({"Priority": 10**30}, "Priority: 1e+30 is more than the limit of 2147483647"),
        ({"Count": 10**30}, "Count: 1e+30 is more than the limit of 1000"),
        (
            {"Tasks": [{"Engine": {"Type": "noop"}, "Resources": {"CPU": "1" + "0" * 30}}]},
            "Tasks[0].Resources.CPU: 1e+30 is more than the limit of 100000 cores",
        ),
        (
            {"Tasks": [{"Engine": {"Type": "noop"}, "Resources": {"Memory": "9999999Pb"}}]},
            "Tasks[0].Resources.Memory: ",
        ),
        (
            {"Tasks": [{"Engine": {"Type": "noop"}, "Resources": {"GPU": "100000"}}]},
            "Tasks[0].Resources.GPU: 100000 is more than the limit of 1024",
        ),
        (
            {"Tasks": [{"Engine": {"Type": "noop"}, "Timeouts": {"TotalTimeout": 90000}}]},
            "Tasks[0].Timeouts.TotalTimeout: 90000 is more than the limit of 86400 seconds "
            "([orchestrator] max_timeout)",
        ),
        ({"Count": 1e400}, "Count: "),
    ],
)
def test_absurd_numbers_are_refused_cleanly(job: dict[str, Any], fragment: str) -> None:
    spec = {"Tasks": [{"Engine": {"Type": "noop"}}], **job}
    limits = SpecLimits(max_count=1000, max_timeout=86400, source="[orchestrator]")
    problems = validate_job_spec(spec, limits)
    assert any(p.startswith(fragment) for p in problems), problems


def test_assemble_takes_exactly_the_models_fields() -> None:
    from edge.models import ComputeState

    state = ComputeState.assemble(StateType=ComputeStateType.RUNNING, Message="m", Details={})
    assert state == ComputeState(StateType=ComputeStateType.RUNNING, Message="m")
    assert state.model_dump_json() == ComputeState.model_validate(state.wire()).model_dump_json()
    with pytest.raises(TypeError, match="Details"):
        ComputeState.assemble(StateType=ComputeStateType.RUNNING, Message="m")
    with pytest.raises(TypeError, match="Detail"):
        ComputeState.assemble(StateType=ComputeStateType.RUNNING, Message="m", Detail={})


@pytest.mark.parametrize(
    "ns", [1_764_000_000_123_456_789, 1_764_000_000_000_000_999, 86_399_999_999_000]
)
def test_now_is_written_as_datetime_writes_it(ns: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """`rfc3339()` formats the time of day once per second and the microseconds each call:
    the text must be datetime's (microseconds, none when zero), across second changes."""
    from datetime import datetime, timezone

    from edge.orchestrator import history

    for step in (ns, ns + 1_000_000_000, ns):  # a new second, then back: re-formatted each time
        monkeypatch.setattr(history.time, "time_ns", lambda step=step: step)
        seconds, fraction = divmod(step, 1_000_000_000)
        expected = datetime.fromtimestamp(seconds, timezone.utc).replace(
            microsecond=fraction // 1000
        )
        assert history.rfc3339() == expected.isoformat().replace("+00:00", "Z")
