from __future__ import annotations

import pytest

from edge.models import (
    ComputeStateType,
    Execution,
    Job,
    ResourceError,
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
