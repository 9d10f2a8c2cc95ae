"""CLI rendering and option parsing, with no server: what an operator reads and types."""

from __future__ import annotations

import base64
import json
import re
import socket
import subprocess
import sys
from pathlib import Path

import click
import pytest
import yaml
from click.testing import CliRunner

from edge.cli.common import BacedgeCommand, read_spec
from edge.cli.main import COMMANDS, cli, load_optional_command
from edge.cli.output import (
    Cell,
    age,
    describe_job,
    describe_node,
    display_id,
    dump,
    executions_table,
    history_table,
    human_duration,
    jobs_table,
    nodes_table,
    parse_rfc3339,
    render_fields,
    render_table,
)
from edge.cli.wasm import build_wasm_job, parse_input, parse_output
from edge.models import Execution, Job, JobHistory, NodeState

ANSI = re.compile(r"\x1b\[[0-9;]*m")
NOW = 1_700_000_000 * 10**9
JOB_ID = "j-1a2b3c4d-0000-4000-8000-000000000001"
EXEC_ID = "e-5e6f7a8b-0000-4000-8000-000000000002"
NODE_ID = "n-9c0d1e2f-0000-4000-8000-000000000003"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _job(**extra: object) -> Job:
    data = {
        "ID": JOB_ID,
        "Name": "hello",
        "Type": "batch",
        "CreateTime": NOW - 90 * 10**9,
        "ModifyTime": NOW - 5 * 10**9,
        "State": {"StateType": "Completed"},
        "Tasks": [{"Name": "main", "Engine": {"Type": "docker", "Params": {"Image": "busybox"}}}],
    }
    data.update(extra)
    return Job.model_validate(data)


def _execution() -> Execution:
    return Execution.model_validate(
        {
            "ID": EXEC_ID,
            "NodeID": NODE_ID,
            "JobID": JOB_ID,
            "Revision": 3,
            "CreateTime": NOW - 60 * 10**9,
            "ModifyTime": NOW - 2 * 10**9,
            "ComputeState": {"StateType": 9},
            "DesiredState": {"StateType": 2},
            "RunOutput": {"Stdout": "hello world\n", "stderr": "a warning\n", "ExitCode": 0},
        }
    )


def _node() -> NodeState:
    gib = 2**30
    return NodeState.model_validate(
        {
            "Info": {
                "NodeID": NODE_ID,
                "NodeType": "Compute",
                "Labels": {"arch": "arm64", "site": "north"},
                "ComputeNodeInfo": {
                    "ExecutionEngines": ["docker", "wasm"],
                    "MaxCapacity": {"CPU": 4, "Memory": 8 * gib, "Disk": 64 * gib, "GPU": 1},
                    "AvailableCapacity": {
                        "CPU": 3.5,
                        "Memory": 6 * gib,
                        "Disk": 60 * gib,
                        "GPU": 1,
                        "GPUs": [{"Index": 0, "Name": "Orin", "Memory": 8 * 1024}],  # MiB
                    },
                },
            },
            "Membership": "APPROVED",
            "ConnectionState": {"Status": "CONNECTED", "LastHeartbeat": "2024-01-02T03:04:05Z"},
        }
    )


# --------------------------------------------------------------------------- time and ids


def test_ages_read_like_a_person_would_say_them() -> None:
    assert age(NOW - 5 * 10**9, NOW) == "5s ago"
    assert age(NOW - 3 * 60 * 10**9, NOW) == "3m ago"
    assert age(NOW - 5 * 3600 * 10**9, NOW) == "5h ago"
    assert age(NOW - 2 * 86400 * 10**9, NOW) == "2d ago"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", age(NOW - 30 * 86400 * 10**9, NOW))
    assert age(0, NOW) == ""  # unknown time: blank, not "54 years ago"


def test_durations_are_precise_when_short_and_coarse_when_long() -> None:
    assert human_duration(0.42) == "0.4s"
    assert human_duration(184) == "3m 4s"
    assert human_duration(2 * 3600 + 180) == "2h 3m"
    assert human_duration(3 * 86400 + 4 * 3600) == "3d 4h"


def test_generated_ids_are_shortened_but_node_names_are_not() -> None:
    """As Bacalhau's CLI shortens them (idgen.ShortID and ShortNodeID)."""
    assert display_id(JOB_ID) == "j-1a2b3c4d"
    assert display_id(NODE_ID) == "n-9c0d1e2f"
    assert display_id("e-78faf114-6a45-457e-825c-40fd2fad768f") == "e-78faf114"
    assert display_id("78faf114-6a45-457e-825c-40fd2fad768f") == "78faf114"  # older job IDs
    assert display_id("QmXaXu9N5GNetatsvwnTfQqNtSeKAD6uCmarbh3LMRYAcF") == "QmXaXu9N"  # libp2p
    for whole in (
        "edge-jetson-01",
        "hostname.domain.com",
        "sub-domain.hostname.domain.com",
        "i-0a1b2c3d4e5f6g7h8",  # an AWS instance ID
        "4267434651811076444",  # a GCP instance ID
        "e-78faf114",
        "",
    ):
        assert display_id(whole) == whole


def test_rfc3339_from_go_with_nanoseconds_and_z() -> None:
    parsed = parse_rfc3339("2024-01-02T03:04:05.123456789Z")
    assert parsed is not None
    assert (parsed.year, parsed.second, parsed.microsecond) == (2024, 5, 123456)
    short = parse_rfc3339("2024-01-02T03:04:06.5Z")  # Go drops trailing zeros
    assert short is not None and short.microsecond == 500000
    assert parse_rfc3339("not a time") is None


# --------------------------------------------------------------------------- tables


def test_table_columns_align_and_colour_does_not_shift_them() -> None:
    rows: list[list[str | Cell]] = [["a", Cell("Completed", "green")], ["longer", "Failed"]]
    plain = render_table(["ID", "STATE"], rows, colour=False)
    coloured = render_table(["ID", "STATE"], rows, colour=True)
    assert "\x1b[" not in plain
    assert "\x1b[" in coloured
    assert ANSI.sub("", coloured) == plain
    assert plain.splitlines() == ["ID      STATE", "a       Completed", "longer  Failed"]


def test_job_list_columns_match_bacalhau() -> None:
    lines = jobs_table([_job()], now_ns=NOW).splitlines()
    assert lines[0].split() == ["CREATED", "ID", "JOB", "TYPE", "STATE"]
    assert lines[1].split() == ["1m", "ago", "j-1a2b3c4d", "hello", "batch", "Completed"]
    assert JOB_ID in jobs_table([_job()], wide=True, now_ns=NOW)


def test_execution_table_names_states() -> None:
    lines = executions_table([_execution()], now_ns=NOW).splitlines()
    assert re.split(r"\s{2,}", lines[0]) == [
        "CREATED", "MODIFIED", "ID", "NODE ID", "REV.", "COMPUTE STATE", "DESIRED STATE",
    ]  # fmt: skip
    assert re.split(r"\s{2,}", lines[1]) == [
        "1m ago", "2s ago", "e-5e6f7a8b", "n-9c0d1e2f", "3", "Completed", "Stopped",
    ]  # fmt: skip


def test_node_table_shows_available_over_total() -> None:
    lines = nodes_table([_node()]).splitlines()
    assert re.split(r"\s{2,}", lines[0]) == [
        "ID", "TYPE", "APPROVAL", "STATUS", "LABELS", "CPU", "MEMORY", "DISK", "GPU",
    ]  # fmt: skip
    row = re.split(r"\s{2,}", lines[1])
    assert row[:5] == ["n-9c0d1e2f", "Compute", "APPROVED", "CONNECTED", "arch=arm64 site=north"]
    assert row[5:] == ["3.5 / 4.0", "6.0 GiB / 8.0 GiB", "60.0 GiB / 64.0 GiB", "1 / 1"]


def test_history_reads_integer_execution_states_as_names() -> None:
    item = JobHistory.model_validate(
        {
            "Type": "ExecutionLevel",
            "ExecutionID": EXEC_ID,
            "ExecutionState": {"Previous": 5, "New": 6},
            "Time": "2024-01-02T03:04:05Z",
            "Event": {"Topic": "Execution", "Message": "started"},
        }
    )
    table = history_table([item])
    assert "BidAccepted → Running" in table
    assert "Execution" in table and "started" in table


def test_describe_job_shows_state_executions_and_output() -> None:
    text = describe_job(_job(), [], [_execution()], now_ns=NOW)
    assert re.search(r"^State\s+= Completed$", text, re.M)
    assert re.search(r"^Engine\s+= docker busybox$", text, re.M)
    assert "Executions" in text and "e-5e6f7a8b" in text
    assert "Standard Output (e-5e6f7a8b, exit code 0)\nhello world" in text
    assert "Standard Error (e-5e6f7a8b, exit code 0)\na warning" in text


def test_describe_node_shows_capacity_and_gpus() -> None:
    text = describe_node(_node())
    assert re.search(r"^Approval\s+= APPROVED$", text, re.M)
    assert "CPU    = 3.5 / 4.0" in text
    assert "0: NVIDIA Orin (8.0 GiB)" in text  # Memory is MiB on the wire, as Bacalhau's


def test_describe_node_shows_gpu_use_only_when_measured() -> None:
    node = _node()
    gpu = node.Info.ComputeNodeInfo.AvailableCapacity.GPUs[0]
    gpu.MemoryUsed, gpu.Utilization = 2048, 0
    assert "0: NVIDIA Orin (8.0 GiB, 2.0 GiB used, 0% busy)" in describe_node(node)


def test_fields_skip_empty_values() -> None:
    assert render_fields([("A", "1"), ("Empty", ""), ("Longer", "2")]) == "A      = 1\nLonger = 2"


def test_json_and_yaml_use_bacalhau_field_names() -> None:
    as_json = json.loads(dump([_execution()], "json"))
    assert as_json[0]["RunOutput"]["stderr"] == "a warning\n"  # lowercase on the wire
    assert as_json[0]["ComputeState"]["StateType"] == 9
    as_yaml = dump({"Job": _job()}, "yaml")
    assert yaml.safe_load(as_yaml)["Job"]["ID"] == JOB_ID
    assert "Stdout: |" in dump(_execution(), "yaml")  # multi-line output stays readable


# --------------------------------------------------------------------------- option parsing


@click.command(cls=BacedgeCommand)
@click.option("--wait/--no-wait", default=True)
@click.option("--id-only", is_flag=True)
@click.argument("file")
@click.argument("args", nargs=-1)
def _probe(wait: bool, id_only: bool, file: str, args: tuple[str, ...]) -> None:
    click.echo(json.dumps({"wait": wait, "id_only": id_only, "file": file, "args": list(args)}))


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--wait=false", "spec.yaml"], {"wait": False, "file": "spec.yaml"}),
        (["--wait=true", "spec.yaml"], {"wait": True, "file": "spec.yaml"}),
        (["--wait", "spec.yaml"], {"wait": True, "file": "spec.yaml"}),  # the file is not eaten
        (["--no-wait", "spec.yaml"], {"wait": False}),
        (["--id-only=true", "spec.yaml"], {"id_only": True}),
        (["--id-only=false", "spec.yaml"], {"id_only": False}),
        (["spec.yaml", "--", "--wait=false"], {"wait": True, "args": ["--wait=false"]}),
    ],
)
def test_go_style_boolean_flags(argv: list[str], expected: dict[str, object]) -> None:
    result = CliRunner().invoke(_probe, argv)
    assert result.exit_code == 0, result.output
    seen = json.loads(result.output)
    assert {k: seen[k] for k in expected} == expected


def test_bad_boolean_value_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["job", "run", "--wait=maybe", "spec.yaml"])
    assert result.exit_code == 2
    assert "'maybe' is not a boolean" in result.output


def test_version_and_groups() -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["--version"]).output.startswith("bacedge, version ")
    listing = runner.invoke(cli, ["--help"]).output
    for group in ("job", "node", "agent", "wasm"):
        assert re.search(rf"^\s+{group}\s", listing, re.M)
    job_help = runner.invoke(cli, ["job", "--help"]).output
    for command in ("run", "list", "describe", "executions", "history", "logs", "stop", "rerun"):
        assert re.search(rf"^\s+{command}\s", job_help, re.M)


def test_version_loads_no_command_module() -> None:
    """`bacedge --version` stays fast on a small board: no group, no pydantic, no httpx."""
    code = (
        "import sys; from edge.cli.main import cli; "
        "sys.argv=['bacedge','--version']\n"
        "try: cli()\nexcept SystemExit: pass\n"
        "heavy=[m for m in ('edge.cli.job','edge.client','pydantic','httpx','textual') "
        "if m in sys.modules]; print('HEAVY', heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert "bacedge, version" in out and "HEAVY []" in out, out


def test_job_list_loads_only_the_models_it_reads() -> None:
    """`bacedge job list --api URL` builds the job models and nothing else: no config (the
    connection is fully given), no node, event or version models, no TUI."""
    port = _closed_port()
    code = (
        "import sys; from edge.cli.main import cli; "
        f"sys.argv=['bacedge','job','list','--api','http://127.0.0.1:{port}']\n"
        "try: cli()\nexcept SystemExit: pass\n"
        "loaded=[m for m in ('edge.config','edge.models.node','edge.models.events',"
        "'edge.models.version','edge.models.compat','textual') if m in sys.modules]\n"
        "print('LOADED', loaded, 'edge.models.job' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "cannot reach the orchestrator" in done.stderr, done.stderr
    assert "LOADED [] True" in done.stdout, done.stdout


def test_optional_commands_are_skipped_only_when_their_module_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("edge.cli.main.COMMANDS", [*COMMANDS, ("edge.cli.nowhere", "nowhere")])
    assert load_optional_command("nowhere") is None
    assert "nowhere" not in CliRunner().invoke(cli, ["--help"]).output


def test_api_address_defaults_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    port = _closed_port()
    monkeypatch.setenv("BACEDGE_API", f"http://127.0.0.1:{port}")
    result = CliRunner().invoke(cli, ["node", "list"])
    assert result.exit_code == 1
    assert f"http://127.0.0.1:{port}" in result.output
    monkeypatch.delenv("BACEDGE_API")
    assert "default: http://127.0.0.1:1234" in CliRunner().invoke(cli, ["job", "list", "-h"]).output


# --------------------------------------------------------------------------- spec files


def test_malformed_yaml_is_one_line_error(tmp_path: Path) -> None:
    spec = tmp_path / "job.yaml"
    spec.write_text("name: x\n  tasks: [\n")
    api = f"http://127.0.0.1:{_closed_port()}"
    result = CliRunner().invoke(cli, ["job", "run", str(spec), "--api", api])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"Error: {spec}: invalid YAML at line 2")


@pytest.mark.parametrize(
    ("content", "message"),
    [("", "empty, expected a job spec"), ("- a\n- b\n", "found a list"), ("{]", "invalid JSON")],
)
def test_spec_files_that_are_not_specs(tmp_path: Path, content: str, message: str) -> None:
    spec = tmp_path / "job.yaml"
    spec.write_text(content)
    with pytest.raises(click.ClickException, match=message):
        read_spec(str(spec))


def test_missing_spec_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["job", "run", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 1
    assert result.output.strip() == f"Error: {tmp_path / 'nope.yaml'}: no such file"


def test_json_spec_from_stdin_is_read() -> None:
    spec = {"Name": "x", "Tasks": [{"Engine": {"Type": "noop"}}]}
    runner = CliRunner()
    with runner.isolation(input=json.dumps(spec)):
        assert read_spec("-") == spec


# --------------------------------------------------------------------------- wasm job building


def test_wasm_job_mounts_the_module_inline_at_main_wasm() -> None:
    module = b"\0asm\x01\0\0\0"
    job = build_wasm_job(module, ["a", "--b"], env={"K": "V"}, timeout=30, labels={"x": "y"})
    task = job["Tasks"][0]
    assert task["Engine"] == {
        "Type": "wasm",
        "Params": {"EntryModule": "main.wasm", "Parameters": ["a", "--b"]},
    }
    inline = task["InputSources"][0]
    assert inline["Target"] == "/main.wasm"
    assert inline["Source"]["Type"] == "inline"
    url = inline["Source"]["Params"]["URL"]
    assert url.startswith("data:application/wasm;base64,")
    assert base64.b64decode(url.split(",", 1)[1]) == module
    assert task["Env"] == {"K": "V"}
    assert task["Timeouts"] == {"ExecutionTimeout": 30}
    assert job["Labels"] == {"x": "y"}
    assert "Name" not in job  # each run is a new job, not a new version of one


def test_wasm_input_and_output_specs(tmp_path: Path) -> None:
    src = parse_input(f"{tmp_path}/data")
    assert src == {
        "Source": {
            "Type": "local",
            "Params": {"SourcePath": f"{tmp_path}/data", "ReadWrite": False},
        },
        "Target": "/inputs/data",
    }
    rw = parse_input("src=/srv/x,dst=/in/x,rw")
    assert rw["Target"] == "/in/x" and rw["Source"]["Params"]["ReadWrite"] is True
    assert parse_output("out:/outputs") == {"Name": "out", "Path": "/outputs"}
    assert parse_output("/outputs") == {"Name": "outputs", "Path": "/outputs"}
    with pytest.raises(click.BadParameter):
        parse_output("out:relative")
    with pytest.raises(click.BadParameter):
        parse_input("/x,dst=relative")


def test_wasm_run_refuses_a_file_that_is_not_wasm(tmp_path: Path) -> None:
    bad = tmp_path / "bad.wasm"
    bad.write_text("hello")
    api = f"http://127.0.0.1:{_closed_port()}"
    result = CliRunner().invoke(cli, ["wasm", "run", str(bad), "--api", api])
    assert result.exit_code == 1
    assert result.output.strip() == f"Error: {bad}: not a WebAssembly module (no \\0asm header)"
