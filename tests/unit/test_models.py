from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from edge.models import (
    AllocatedResources,
    ComputeState,
    ComputeStateType,
    DesiredState,
    DesiredStateType,
    Execution,
    GPUInfo,
    Job,
    NodeConnection,
    NodeMembership,
    NodeState,
    ResourceError,
    Resources,
    RunOutput,
    parse_bytes,
    parse_cpu,
    parse_gpu,
)


@pytest.mark.parametrize(
    "text, cores", [("500m", 0.5), ("0.5", 0.5), ("2", 2.0), (1, 1.0), ("", 0.0), ("1500m", 1.5)]
)
def test_cpu_strings(text: str | int, cores: float) -> None:
    assert parse_cpu(text) == cores


@pytest.mark.parametrize(
    "text, size",
    [
        ("512Mb", 512 * 10**6),
        ("1Gb", 10**9),
        ("2Gi", 2 * 2**30),
        ("1024", 1024),
        ("256MiB", 256 * 2**20),
        ("1.5GB", 15 * 10**8),
        ("10k", 10_000),
        (4096, 4096),
    ],
)
def test_size_strings(text: str | int, size: int) -> None:
    assert parse_bytes(text) == size


@pytest.mark.parametrize("bad", ["lots", "1XB", "-1Gb", "1 G B"])
def test_bad_sizes_say_what_is_accepted(bad: str) -> None:
    with pytest.raises(ResourceError, match="use a number with a unit"):
        parse_bytes(bad, "memory")


def test_bad_cpu_and_gpu() -> None:
    with pytest.raises(ResourceError, match="millicores"):
        parse_cpu("two")
    with pytest.raises(ResourceError, match="whole number"):
        parse_gpu("1.5")


def test_wire_names_match_bacalhau() -> None:
    execution = Execution.model_validate(
        {
            "id": "e-1",
            "computeState": {"stateType": 9},
            "runOutput": {"stdout": "hi", "stderr": "oops", "exitCode": 0},
        }
    )
    wire = execution.wire()
    assert wire["ComputeState"]["StateType"] == 9
    assert wire["RunOutput"]["stderr"] == "oops"  # lowercase on Bacalhau's wire
    assert "Stderr" not in wire["RunOutput"]
    assert execution.state == ComputeStateType.COMPLETED and execution.terminal
    assert RunOutput.model_validate({"Stderr": "x"}).Stderr == "x"


def test_job_state_is_a_string_and_type_case_insensitive() -> None:
    job = Job.model_validate({"Type": "BATCH", "State": {"StateType": "Running"}})
    assert job.wire()["Type"] == "batch"
    assert job.wire()["State"]["StateType"] == "Running"


def test_null_sections_take_defaults() -> None:
    job = Job.model_validate({"Labels": None, "Tasks": [{"Env": None, "InputSources": None}]})
    assert job.Labels == {} and job.task.Env == {} and job.task.InputSources == []


def test_exactly_spelled_input_reads_as_any_spelling_does() -> None:
    """Messages bacedge sends itself skip the key rewrite; nothing reads differently."""
    execution = Execution(ID="e-1", JobID="j-1", NodeID="n-1").model_dump_json(by_alias=True)
    assert (
        Execution.model_validate_json(execution).model_dump()
        == Execution.model_validate(
            {"id": "e-1", "jobID": "j-1", "nodeid": "n-1", "RunOutput": None}
        ).model_dump()
    )
    assert RunOutput.model_validate({"stderr": "x", "Stdout": None}).Stderr == "x"


def test_gpu_memory_is_mib_and_unmeasured_use_is_left_out() -> None:
    """Bacalhau's GPU: {Index, Name, Vendor, Memory (MiB), PCIAddress}; bacedge's MemoryUsed
    and Utilization travel only when measured, so an unmeasured GPU never reads as idle."""
    t4 = GPUInfo.model_validate({"Index": 0, "Name": "Tesla T4", "Memory": 15360})
    assert t4.memory_bytes == 15 * 2**30
    assert t4.MemoryUsed is None and t4.Utilization is None and t4.memory_used_bytes is None
    wire = t4.wire()
    assert wire["Memory"] == 15360
    assert "MemoryUsed" not in wire and "Utilization" not in wire
    measured = GPUInfo(Memory=81559, MemoryUsed=0, Utilization=0).wire()
    assert measured["MemoryUsed"] == 0 and measured["Utilization"] == 0  # idle, measured
    assert GPUInfo.model_validate(measured) == GPUInfo(Memory=81559, MemoryUsed=0, Utilization=0)


NODE_INFO = {"NodeID": "QmXaXu9N5GNetatsvwnTfQqNtSeKAD6uCmarbh3LMRYAcF", "NodeType": "Compute"}


@pytest.mark.parametrize(
    "shape, membership, status",
    [
        pytest.param(  # Bacalhau 1.6 and later
            {
                "Info": NODE_INFO,
                "Membership": "PENDING",
                "Connection": "CONNECTED",  # deprecated, still sent by 1.6
                "ConnectionState": {
                    "Status": "DISCONNECTED",
                    "LastHeartbeat": "2025-01-01T00:00:00Z",
                },
            },
            "PENDING",
            "DISCONNECTED",
            id="connection-state",
        ),
        pytest.param(  # Bacalhau up to 1.5
            {"Info": NODE_INFO, "Membership": "REJECTED", "Connection": "DISCONNECTED"},
            "REJECTED",
            "DISCONNECTED",
            id="connection-word",
        ),
        pytest.param(
            {"Info": NODE_INFO, "Approval": "PENDING", "Liveness": "CONNECTED"},
            "PENDING",
            "CONNECTED",
            id="approval-liveness",
        ),
        pytest.param(NODE_INFO, "APPROVED", "CONNECTED", id="node-info-only"),  # before approval
    ],
)
def test_nodes_in_older_bacalhau_shapes(
    shape: dict[str, Any], membership: str, status: str
) -> None:
    node = NodeState.model_validate(shape)
    assert node.Info.NodeID == NODE_INFO["NodeID"]
    assert node.Membership == NodeMembership(membership)
    assert node.ConnectionState.Status == NodeConnection(status)
    assert list(node.wire()) == ["Info", "Membership", "Connection", "ConnectionState"]
    assert node.wire()["Connection"] == status  # as Bacalhau sends it: both, in this order


def test_the_models_package_names_each_model_once_and_loads_it_on_first_use() -> None:
    """`edge.models` is lazy (PEP 562): every public name resolves to its submodule's own
    object, `dir()` lists it, and a name it does not have is an AttributeError."""
    import importlib

    import edge.models as package

    for name in package.__all__:
        home = importlib.import_module(f"edge.models.{package._HOME[name]}")
        assert getattr(package, name) is getattr(home, name), name
    assert set(package.__all__) <= set(dir(package))
    with pytest.raises(AttributeError, match="no attribute 'Nothing'"):
        package.Nothing  # noqa: B018


@pytest.mark.parametrize("task_name", ["main", ""])
def test_a_placed_execution_is_what_validating_its_fields_makes(task_name: str) -> None:
    """`Execution.placed` skips validation (every placement makes one): it must equal the
    validated model, to the byte, and pass validation as it is."""
    job = Job.model_validate(
        {
            "ID": "j-1",
            "Name": "hello",
            "Namespace": "team",
            "Version": 3,
            "Tasks": [{"Name": task_name, "Engine": {"Type": "noop"}}],
        }
    )
    reserved = Resources(CPU=0.5, Memory=64 * 2**20)
    placed = Execution.placed(job, "n-1", 2, 5, reserved, "e-1", 1234)
    validated = Execution(
        ID="e-1",
        Namespace="team",
        Name="hello",
        NodeID="n-1",
        JobID="j-1",
        JobVersion=3,
        PartitionIndex=2,
        PartitionCount=5,
        AllocatedResources=AllocatedResources(Tasks={task_name or "main": reserved}),
        DesiredState=DesiredState(StateType=DesiredStateType.RUNNING),
        ComputeState=ComputeState(StateType=ComputeStateType.ASK_FOR_BID),
        CreateTime=1234,
        ModifyTime=1234,
        Revision=1,
    )
    assert placed.model_dump_json(by_alias=True) == validated.model_dump_json(by_alias=True)
    assert Execution.model_validate(placed.model_dump(by_alias=True)) == validated
    assert placed.terminal is False and placed.state == ComputeStateType.ASK_FOR_BID
    # New executions share their (frozen) desired state and empty result: changed only by
    # replacing them, as the orchestrator does, never in place for all of them.
    other = Execution.placed(job, "n-2", 3, 5, reserved, "e-2", 1234)
    assert other.DesiredState is placed.DesiredState
    assert other.PublishedResult is placed.PublishedResult
    with pytest.raises(ValidationError):
        placed.DesiredState.Message = "changed for every execution"
    with pytest.raises(ValidationError):
        placed.PublishedResult.Type = "s3"
    placed.DesiredState = DesiredState(StateType=DesiredStateType.STOPPED)
    assert other.DesiredState.StateType == DesiredStateType.RUNNING
