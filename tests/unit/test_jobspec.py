from __future__ import annotations

from pathlib import Path

import pytest

from edge.jobspec import SpecError, load_job, parse_spec_text, validate_job_spec
from edge.models import JobType, NetworkType

SPECS = Path(__file__).parent / "specs"


@pytest.mark.parametrize(
    "name",
    ["bacalhau-docs-batch.yaml", "bacalhau-docs-batch-lowercase.yaml", "bacalhau-docs-full.yaml"],
)
def test_bacalhau_documented_specs_are_accepted_unchanged(name: str) -> None:
    data = parse_spec_text((SPECS / name).read_text())
    assert validate_job_spec(data) == []
    job = load_job(data)
    assert job.Type == JobType.BATCH
    assert job.task.Engine.Type == "docker"
    assert job.task.Engine.param("image") == "ubuntu:latest"


def test_lowercase_and_pascal_case_give_the_same_job() -> None:
    upper = load_job(parse_spec_text((SPECS / "bacalhau-docs-batch.yaml").read_text()))
    lower = load_job(parse_spec_text((SPECS / "bacalhau-docs-batch-lowercase.yaml").read_text()))
    assert upper.Name == lower.Name
    assert upper.task.Engine == lower.task.Engine
    assert lower.task.Resources.parse().CPU == 0.5
    assert lower.task.Resources.parse().Memory == 256 * 10**6
    assert lower.task.Timeouts.ExecutionTimeout == 600


def test_full_spec_fields_survive() -> None:
    job = load_job(parse_spec_text((SPECS / "bacalhau-docs-full.yaml").read_text()))
    task = job.task
    assert job.Count == 2 and job.Priority == 50 and job.Labels == {"project": "edge"}
    assert job.Constraints[0].Values == ["x86_64"]
    assert task.InputSources[0].Source.Type == "localdirectory"
    assert task.InputSources[0].Source.param("SourcePath") == "/srv/data"
    assert task.ResultPaths[0].Path == "/outputs"
    assert task.Network.Type == NetworkType.NONE
    assert task.Resources.parse().Disk == 2 * 2**30
    assert task.Timeouts.TotalTimeout == 900


def test_every_problem_is_reported_with_its_field_path() -> None:
    problems = validate_job_spec(
        {
            "Name": "bad",
            "Tasks": [
                {
                    "Engine": {"Type": "docker", "Params": {}},
                    "InputSources": [
                        {"Source": {"Type": "ftp"}, "Target": "/in"},
                        {"Source": {"Type": "local", "Params": {}}, "Target": "rel"},
                    ],
                    "ResultPaths": [{"Name": "out"}],
                    "Resources": {"Memory": "lots"},
                }
            ],
        }
    )
    assert "Tasks[0].Engine.Params.Image: required (e.g. localhost/busybox:latest)" in problems
    assert any(
        p.startswith("Tasks[0].InputSources[0].Source.Type: unknown input source type 'ftp'")
        for p in problems
    )
    assert "Tasks[0].InputSources[1].Source.Params.SourcePath: required" in problems
    assert any(
        p.startswith("Tasks[0].InputSources[1].Target: must be an absolute path") for p in problems
    )
    assert "Tasks[0].ResultPaths[0].Path: required" in problems
    assert any(p.startswith("Tasks[0].Resources: invalid memory 'lots'") for p in problems)


def test_unknown_engine_and_missing_entry_module() -> None:
    assert validate_job_spec({"Tasks": [{"Engine": {"Type": "kvm"}}]}) == [
        "Tasks[0].Engine.Type: unknown engine 'kvm': use one of docker, podman, wasm, noop"
    ]
    problems = validate_job_spec({"Tasks": [{"Engine": {"Type": "wasm", "Params": {}}}]})
    assert problems == [
        "Tasks[0].Engine.Params.EntryModule: required (the module's path, e.g. main.wasm)"
    ]


def test_wrong_types_name_the_field() -> None:
    problems = validate_job_spec({"Count": "many", "Tasks": [{"Engine": {"Type": "noop"}}]})
    assert problems and problems[0].startswith("Count: ")


def test_task_count_must_be_one() -> None:
    assert validate_job_spec({"Name": "x", "Tasks": []}) == [
        "Tasks: a job has exactly one task (got 0)"
    ]


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("Name: [unclosed", "invalid YAML at line 1"),
        ('{"Name": ', "invalid JSON at line 1"),
        ("- just\n- a list", "expected a job"),
    ],
)
def test_malformed_text_gives_one_line_with_the_position(text: str, fragment: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_spec_text(text)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_api_body_wrapper_is_accepted() -> None:
    data = parse_spec_text('{"Job": {"Name": "w", "Tasks": [{"Engine": {"Type": "noop"}}]}}')
    assert load_job(data).Name == "w"


def test_wasm_legacy_entry_module_object() -> None:
    data = {
        "Tasks": [
            {
                "Engine": {
                    "Type": "wasm",
                    "Params": {
                        "EntryModule": {
                            "Source": {
                                "Type": "localDirectory",
                                "Params": {"SourcePath": "/srv/app"},
                            },
                            "Target": "/app",
                        }
                    },
                }
            }
        ]
    }
    assert validate_job_spec(data) == []
