"""`docker run` / `wasm run` placement options, seen through --dry-run (no server needed)."""

from __future__ import annotations

from pathlib import Path

import yaml
from click.testing import CliRunner

from edge.cli.main import cli
from edge.jobspec import load_job

HELLO = str(Path(__file__).resolve().parents[2] / "examples" / "hello.wasm")


def dry_run(*argv: str) -> dict[str, object]:
    result = CliRunner().invoke(cli, [*argv[:2], "--dry-run", *argv[2:]])
    assert result.exit_code == 0, result.output
    spec = yaml.safe_load(result.output)
    load_job(spec)  # what would be submitted is a valid job
    return dict(spec)


def test_target_all_is_an_ops_job_with_bacalhaus_constraints_and_priority() -> None:
    spec = dry_run("wasm", "run", "--target", "all", "--constraints", "zone=a", HELLO)
    assert spec["Type"] == "ops" and spec["Count"] == 1
    assert spec["Constraints"] == [{"Key": "zone", "Operator": "=", "Values": ["a"]}]
    docker = dry_run(
        "docker", "run", "-s", "favour_arch=arm64", "--priority", "7", "busybox", "--", "true"
    )
    assert docker["Type"] == "batch" and docker["Priority"] == 7
    assert docker["Constraints"] == [{"Key": "favour_arch", "Operator": "=", "Values": ["arm64"]}]
    alias = dry_run("docker", "run", "--selector", "zone in (a,b)", "busybox")
    assert alias["Constraints"] == [{"Key": "zone", "Operator": "in", "Values": ["a", "b"]}]


def test_wasm_dry_run_prints_the_job_with_the_module_inline() -> None:
    spec = dry_run("wasm", "run", HELLO, "--", "arg1")
    task = spec["Tasks"][0]  # type: ignore[index]
    assert task["Engine"]["Params"]["Parameters"] == ["arg1"]
    assert task["InputSources"][0]["Source"]["Params"]["URL"].startswith("data:")


def test_target_all_with_a_count_is_a_usage_error() -> None:
    result = CliRunner().invoke(
        cli, ["docker", "run", "--target", "all", "--count", "3", "busybox", "--dry-run"]
    )
    assert result.exit_code == 2 and "drop --count" in result.output
