"""The noop and wasm engines, run for real (wasm modules built from tests/wasm/*.wat)."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from edge.executors import ENGINES, build_executors, canonical_engine
from edge.executors.base import (
    STDERR,
    STDOUT,
    ExecutionRequest,
    ExecutorError,
    MountedInput,
    ResultDir,
)
from edge.executors.noop import NoopExecutor
from edge.executors.wasm import WasmExecutor, exported_functions, with_entrypoint
from edge.models import Task
from edge.storage import build_input_providers, prepare_inputs
from edge.storage.base import StoragePolicy
from tests.wasm_build import build_wasm


class Sink:
    """Collects output chunks as the engine streams them."""

    def __init__(self) -> None:
        self.chunks: list[tuple[int, bytes]] = []
        self.seen = asyncio.Event()

    def __call__(self, kind: int, data: bytes) -> None:
        self.chunks.append((kind, data))
        self.seen.set()

    def text(self, kind: int) -> str:
        return b"".join(d for k, d in self.chunks if k == kind).decode()


def make_task(
    engine: str, params: dict[str, Any], sources: list[dict[str, Any]] | None = None
) -> Task:
    return Task.model_validate(
        {"Engine": {"Type": engine, "Params": params}, "InputSources": sources or []}
    )


def request(tmp_path: Path, task: Task, **kwargs: Any) -> ExecutionRequest:
    kwargs.setdefault("env", {})
    return ExecutionRequest(
        execution_id="e-1",
        job_id="j-1",
        node_id="n-1",
        task=task,
        workdir=tmp_path / "work",
        **kwargs,
    )


# -- noop -------------------------------------------------------------------------------


async def test_noop_finishes_with_exit_code_zero(tmp_path: Path) -> None:
    sink = Sink()
    result = await NoopExecutor().run(request(tmp_path, make_task("noop", {})), sink)
    assert (result.exit_code, result.stdout, result.error) == (0, "", "")
    assert sink.chunks == []


async def test_noop_params_script_the_outcome(tmp_path: Path) -> None:
    sink = Sink()
    task = make_task("noop", {"exitcode": "2", "Stdout": "hello\n"})
    result = await NoopExecutor().run(request(tmp_path, task), sink)
    assert (result.exit_code, result.stdout, result.stdout_truncated) == (2, "hello\n", False)
    assert sink.chunks == [(STDOUT, b"hello\n")]


async def test_noop_stdout_is_capped(tmp_path: Path) -> None:
    task = make_task("noop", {"Stdout": "x" * 10})
    result = await NoopExecutor().run(request(tmp_path, task, output_cap=4), Sink())
    assert (result.stdout, result.stdout_truncated) == ("xxxx", True)


async def test_noop_sleep_is_cancellable(tmp_path: Path) -> None:
    task = make_task("noop", {"SleepSeconds": 600})
    running = asyncio.create_task(NoopExecutor().run(request(tmp_path, task), Sink()))
    await asyncio.sleep(0)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running


async def test_noop_sleep_past_the_timeout_fails(tmp_path: Path) -> None:
    task = make_task("noop", {"SleepSeconds": 600})
    result = await NoopExecutor().run(request(tmp_path, task, timeout=0.01), Sink())
    assert result.error == "execution timed out after 0.01s"
    assert result.exit_code != 0


def test_noop_rejects_bad_params() -> None:
    problems = NoopExecutor().problems(make_task("noop", {"ExitCode": "two"}))
    assert len(problems) == 1 and "ExitCode" in problems[0]
    assert NoopExecutor().problems(make_task("noop", {"SleepSeconds": -1}))
    assert NoopExecutor().problems(make_task("noop", {"ExitCode": 3})) == []


# -- registry ---------------------------------------------------------------------------


def test_build_executors_by_name() -> None:
    executors = build_executors(["noop", "wasm", "noop"])
    assert sorted(executors) == ["noop", "wasm"]
    assert executors["noop"].name == "noop"


def test_build_executors_skips_an_engine_whose_library_is_missing(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(ENGINES, "ghost", ("edge.executors.no_such_engine", "GhostExecutor"))
    with caplog.at_level(logging.WARNING, logger="bacedge.executors"):
        executors = build_executors(["ghost", "noop"])
    assert list(executors) == ["noop"]
    assert "engine ghost is disabled" in caplog.text


def test_build_executors_rejects_unknown_names() -> None:
    with pytest.raises(ValueError, match="unknown engine 'qemu'"):
        build_executors(["qemu"])


def test_podman_is_an_alias_of_docker() -> None:
    assert canonical_engine(" Podman ") == "docker"
    assert canonical_engine("WASM") == "wasm"


# -- wasm -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def wasm_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("wasmer-cache")


@pytest.fixture
async def wasm(wasm_cache: Path) -> AsyncIterator[WasmExecutor]:
    executor = WasmExecutor(cache_dir=wasm_cache)
    yield executor
    await executor.close()


def module_input(name: str, target: str = "/main.wasm") -> MountedInput:
    return MountedInput(host_path=build_wasm(name), target=target)


def wasm_task(params: dict[str, Any] | None = None, **extra: Any) -> Task:
    return make_task("wasm", {"EntryModule": "main.wasm", **(params or {})}, **extra)


async def test_wasm_hello_prints_its_arguments_and_env(tmp_path: Path, wasm: WasmExecutor) -> None:
    sink = Sink()
    task = wasm_task({"Parameters": ["a", "b c", 3]})
    req = request(tmp_path, task, env={"GREETING": "hi"}, inputs=[module_input("hello")])
    result = await wasm.run(req, sink)
    assert result.error == ""
    assert result.exit_code == 0
    assert result.stdout == "a\nb c\n3\nGREETING=hi\n"
    assert result.stderr == "hello from wasm\n"
    assert not result.stdout_truncated and not result.stderr_truncated
    assert sink.text(STDOUT) == result.stdout
    assert sink.text(STDERR) == result.stderr


async def test_wasm_reuses_the_loaded_module(tmp_path: Path, wasm: WasmExecutor) -> None:
    req = request(tmp_path, wasm_task(), inputs=[module_input("hello")])
    first = await wasm.run(req, Sink())
    second = await wasm.run(req, Sink())
    assert first.details["module_sha256"] == second.details["module_sha256"]
    assert second.stderr == "hello from wasm\n"


async def test_wasm_reads_inputs_and_writes_results(tmp_path: Path, wasm: WasmExecutor) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "in.txt").write_text("payload\n")
    outputs = tmp_path / "results" / "outputs"
    task = wasm_task({"Parameters": ["/inputs/in.txt", "/outputs/out.txt"]})
    req = request(
        tmp_path,
        task,
        inputs=[module_input("io"), MountedInput(host_path=data, target="/inputs")],
        results=[ResultDir(name="outputs", path="/outputs", host_dir=outputs)],
    )
    result = await wasm.run(req, Sink())
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout == "payload\n"
    assert (outputs / "out.txt").read_text() == "payload\n"
    assert not any(p.name.startswith(".wasm-") for p in (tmp_path / "work").iterdir())


async def test_wasm_single_file_input_at_its_target(tmp_path: Path, wasm: WasmExecutor) -> None:
    source = tmp_path / "staged.csv"
    source.write_text("a,b\n")
    outputs = tmp_path / "out"
    req = request(
        tmp_path,
        wasm_task({"Parameters": ["/inputs/data.csv", "/outputs/copy.csv"]}),
        inputs=[module_input("io"), MountedInput(host_path=source, target="/inputs/data.csv")],
        results=[ResultDir(name="outputs", path="/outputs", host_dir=outputs)],
    )
    result = await wasm.run(req, Sink())
    assert result.stdout == "a,b\n"
    assert (outputs / "copy.csv").read_text() == "a,b\n"


async def test_wasm_read_only_inputs_stay_unchanged(tmp_path: Path, wasm: WasmExecutor) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_text("original\n")
    (data / "b.txt").write_text("overwrite\n")
    task = wasm_task({"Parameters": ["/inputs/b.txt", "/inputs/a.txt"]})
    inputs = [module_input("io"), MountedInput(host_path=data, target="/inputs")]
    result = await wasm.run(request(tmp_path, task, inputs=inputs), Sink())
    assert result.exit_code == 0  # the guest may write: into its own copy-on-write view
    assert (data / "a.txt").read_text() == "original\n"


async def test_wasm_read_write_input_is_shared(tmp_path: Path, wasm: WasmExecutor) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_text("shared\n")
    task = wasm_task({"Parameters": ["/data/a.txt", "/data/new.txt"]})
    inputs = [module_input("io"), MountedInput(host_path=data, target="/data", read_write=True)]
    result = await wasm.run(request(tmp_path, task, inputs=inputs), Sink())
    assert result.exit_code == 0
    assert (data / "new.txt").read_text() == "shared\n"


async def test_wasm_workspace_paths_are_copied_in_and_out(
    tmp_path: Path, wasm: WasmExecutor
) -> None:
    source = tmp_path / "in.txt"
    source.write_text("in the workspace\n")
    outputs = tmp_path / "out"
    req = request(
        tmp_path,
        wasm_task({"Parameters": ["/workspace/in.txt", "/workspace/out/result.txt"]}),
        inputs=[module_input("io"), MountedInput(host_path=source, target="/workspace/in.txt")],
        results=[ResultDir(name="out", path="/workspace/out", host_dir=outputs)],
    )
    result = await wasm.run(req, Sink())
    assert result.exit_code == 0, result.stderr
    assert (outputs / "result.txt").read_text() == "in the workspace\n"


async def test_wasm_exit_code_is_reported(tmp_path: Path, wasm: WasmExecutor) -> None:
    result = await wasm.run(request(tmp_path, wasm_task(), inputs=[module_input("exit3")]), Sink())
    assert (result.exit_code, result.stderr, result.error) == (3, "failing\n", "")


async def test_wasm_timeout_stops_the_module(tmp_path: Path, wasm: WasmExecutor) -> None:
    sink = Sink()
    req = request(tmp_path, wasm_task(), inputs=[module_input("loop")], timeout=0.2)
    result = await wasm.run(req, sink)
    assert result.error == "execution timed out after 0.2s"
    assert result.exit_code != 0
    assert result.stdout == "started\n"


async def test_wasm_cancellation_stops_the_module(tmp_path: Path, wasm: WasmExecutor) -> None:
    sink = Sink()
    req = request(tmp_path, wasm_task(), inputs=[module_input("loop")])
    running = asyncio.create_task(wasm.run(req, sink))
    await sink.seen.wait()  # streamed while the module still runs
    assert sink.text(STDOUT) == "started\n"
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    after = await wasm.run(request(tmp_path, wasm_task(), inputs=[module_input("hello")]), Sink())
    assert after.exit_code == 0


async def test_wasm_output_over_the_cap_is_truncated(tmp_path: Path, wasm: WasmExecutor) -> None:
    sink = Sink()
    req = request(tmp_path, wasm_task(), inputs=[module_input("flood")], output_cap=1000)
    result = await wasm.run(req, sink)
    assert result.exit_code == 0
    assert (result.stdout, result.stdout_truncated) == ("x" * 1000, True)
    assert (result.stderr, result.stderr_truncated) == ("y" * 1000, True)
    assert sink.text(STDOUT) == "x" * (1 << 20)  # the live log is not cut


async def test_wasm_output_at_the_cap_is_not_truncated(tmp_path: Path, wasm: WasmExecutor) -> None:
    req = request(tmp_path, wasm_task(), inputs=[module_input("flood")], output_cap=1 << 20)
    result = await wasm.run(req, Sink())
    assert len(result.stdout) == 1 << 20
    assert not result.stdout_truncated


async def test_wasm_other_entrypoint(tmp_path: Path, wasm: WasmExecutor) -> None:
    task = wasm_task({"Entrypoint": "greet"})
    result = await wasm.run(request(tmp_path, task, inputs=[module_input("hello")]), Sink())
    assert (result.exit_code, result.stdout) == (0, "greetings\n")


async def test_wasm_unknown_entrypoint_lists_exports(tmp_path: Path, wasm: WasmExecutor) -> None:
    task = wasm_task({"Entrypoint": "main"})
    with pytest.raises(ExecutorError) as caught:
        await wasm.run(request(tmp_path, task, inputs=[module_input("hello")]), Sink())
    message = str(caught.value)
    assert "exports no function 'main'" in message and "_start, greet" in message
    assert "\n" not in message


def test_with_entrypoint_exports_the_function_as_start() -> None:
    data = build_wasm("hello").read_bytes()
    assert exported_functions(data) == ["_start", "greet"]
    assert sorted(exported_functions(with_entrypoint(data, "greet"))) == ["_start", "greet"]
    with pytest.raises(KeyError):
        with_entrypoint(data, "missing")


async def test_wasm_invalid_module_is_an_executor_error(tmp_path: Path, wasm: WasmExecutor) -> None:
    bad = tmp_path / "bad.wasm"
    bad.write_bytes(b"\0asm\x01\0\0\0\x01\x05garbage")
    inputs = [MountedInput(host_path=bad, target="/main.wasm")]
    with pytest.raises(ExecutorError) as caught:
        await wasm.run(request(tmp_path, wasm_task(), inputs=inputs), Sink())
    message = str(caught.value)
    assert message.startswith("wasm EntryModule main.wasm is not a valid WASI module")
    assert "wasm32-wasip1" in message and "\n" not in message


async def test_wasm_text_file_is_an_executor_error(tmp_path: Path, wasm: WasmExecutor) -> None:
    text = tmp_path / "main.wasm"
    text.write_text("not a module")
    inputs = [MountedInput(host_path=text, target="/main.wasm")]
    with pytest.raises(ExecutorError, match="not a valid WASI module"):
        await wasm.run(request(tmp_path, wasm_task(), inputs=inputs), Sink())


async def test_wasm_missing_entry_module(tmp_path: Path, wasm: WasmExecutor) -> None:
    with pytest.raises(ExecutorError, match="has no EntryModule"):
        await wasm.run(request(tmp_path, make_task("wasm", {})), Sink())
    task = wasm_task({"EntryModule": "/other.wasm"})
    with pytest.raises(ExecutorError, match=r"matches no input .*Target is /other.wasm"):
        await wasm.run(request(tmp_path, task, inputs=[module_input("hello")]), Sink())


async def test_wasm_entry_module_by_alias(tmp_path: Path, wasm: WasmExecutor) -> None:
    sources = [{"Source": {"Type": "local"}, "Alias": "mod", "Target": "/app/hello.wasm"}]
    task = wasm_task({"EntryModule": "mod"}, sources=sources)
    assert wasm.problems(task) == []
    inputs = [module_input("hello", "/app/hello.wasm")]
    result = await wasm.run(request(tmp_path, task, inputs=inputs), Sink())
    assert result.stderr == "hello from wasm\n"


async def test_wasm_entry_module_inside_a_directory(tmp_path: Path, wasm: WasmExecutor) -> None:
    folder = tmp_path / "unpacked"
    folder.mkdir()
    (folder / "hello.wasm").write_bytes(build_wasm("hello").read_bytes())
    inputs = [MountedInput(host_path=folder, target="/main.wasm")]
    result = await wasm.run(request(tmp_path, wasm_task(), inputs=inputs), Sink())
    assert result.stderr == "hello from wasm\n"


async def test_wasm_legacy_entry_module_object(tmp_path: Path, wasm: WasmExecutor) -> None:
    legacy = {"Source": {"Type": "inline", "Params": {"URL": "data:,"}}, "Target": "/mod.wasm"}
    task = wasm_task({"EntryModule": legacy})
    assert wasm.problems(task) == []
    inputs = [module_input("hello", "/mod.wasm")]
    result = await wasm.run(request(tmp_path, task, inputs=inputs), Sink())
    assert result.exit_code == 0


def test_wasm_problems(wasm_cache: Path) -> None:
    wasm = WasmExecutor(cache_dir=wasm_cache)
    sources = [{"Source": {"Type": "inline"}, "Target": "/main.wasm"}]
    assert wasm.problems(wasm_task(sources=sources)) == []
    assert "has no EntryModule" in wasm.problems(make_task("wasm", {}))[0]
    assert "matches no input source" in wasm.problems(wasm_task())[0]
    imports = wasm_task({"ImportModules": [{"Source": {"Type": "inline"}}]}, sources=sources)
    assert "ImportModules are not supported" in wasm.problems(imports)[0]
    bad_params = wasm_task({"Parameters": "a b"}, sources=sources)
    assert "Parameters must be a list" in wasm.problems(bad_params)[0]


async def test_wasm_module_shipped_inline_end_to_end(tmp_path: Path, wasm: WasmExecutor) -> None:
    module = base64.b64encode(build_wasm("hello").read_bytes()).decode()
    sources = [
        {
            "Source": {
                "Type": "inline",
                "Params": {"URL": f"data:application/wasm;base64,{module}"},
            },
            "Target": "/main.wasm",
        }
    ]
    task = wasm_task({"Parameters": ["x"]}, sources=sources)
    assert wasm.problems(task) == []
    for hold in (False, True):  # written to disk, or held in memory (how a node runs it)
        staging = tmp_path / f"staging-{hold}"
        inputs = await prepare_inputs(
            task.InputSources, staging, StoragePolicy(), build_input_providers(), hold
        )
        assert (inputs[0].content is not None) is hold
        result = await wasm.run(request(tmp_path, task, inputs=inputs), Sink())
        assert result.stdout == "x\n"
        assert staging.exists() is not hold  # held: nothing was written for it


async def test_wasm_held_inline_inputs_are_written_when_the_task_needs_files(
    tmp_path: Path, wasm: WasmExecutor
) -> None:
    """A held module and a held data file, with a result folder: the layout needs files,
    so both are written (0644) where they were planned, and the task reads its input."""
    module = build_wasm("io").read_bytes()
    outputs = tmp_path / "results" / "outputs"
    staging = tmp_path / "staging"
    held = [
        MountedInput(
            host_path=staging / "inline-a" / "main.wasm", target="/main.wasm", content=module
        ),
        MountedInput(
            host_path=staging / "inline-b" / "in.txt", target="/inputs/in.txt", content=b"held\n"
        ),
    ]
    req = request(
        tmp_path,
        wasm_task({"Parameters": ["/inputs/in.txt", "/outputs/out.txt"]}),
        inputs=held,
        results=[ResultDir(name="outputs", path="/outputs", host_dir=outputs)],
    )
    result = await wasm.run(req, Sink())
    assert (result.exit_code, result.stderr, result.stdout) == (0, "", "held\n")
    assert (outputs / "out.txt").read_text() == "held\n"
    assert (staging / "inline-b" / "in.txt").stat().st_mode & 0o777 == 0o644


async def test_wasm_entry_module_must_be_the_held_file_itself(
    tmp_path: Path, wasm: WasmExecutor
) -> None:
    held = MountedInput(host_path=tmp_path / "inline-a" / "mods", target="/mods", content=b"\0asm")
    task = wasm_task({"EntryModule": "/mods/main.wasm"})
    with pytest.raises(ExecutorError, match=r"matches no input of the task \(inputs at: /mods\)"):
        await wasm.run(request(tmp_path, task, inputs=[held]), Sink())


async def test_wasm_module_without_start(tmp_path: Path, wasm: WasmExecutor) -> None:
    with pytest.raises(ExecutorError) as caught:
        await wasm.run(request(tmp_path, wasm_task(), inputs=[module_input("lib")]), Sink())
    assert str(caught.value) == (
        "wasm EntryModule main.wasm exports no function '_start' (it exports: compute): "
        "set Engine.Params.Entrypoint to one of them"
    )


async def test_wasm_unknown_import_is_an_executor_error(tmp_path: Path, wasm: WasmExecutor) -> None:
    req = request(tmp_path, wasm_task(), inputs=[module_input("imports")])
    with pytest.raises(ExecutorError, match=r"cannot start .*host_thing"):
        await wasm.run(req, Sink())


async def test_wasm_symlinks_out_of_an_input_are_not_followed(
    tmp_path: Path, wasm: WasmExecutor
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("secret\n")
    data = tmp_path / "data"
    data.mkdir()
    (data / "link.txt").symlink_to(secret)
    outputs = tmp_path / "out"
    req = request(
        tmp_path,
        wasm_task({"Parameters": ["/inputs/link.txt", "/outputs/leak.txt"]}),
        inputs=[module_input("io"), MountedInput(host_path=data, target="/inputs")],
        results=[ResultDir(name="outputs", path="/outputs", host_dir=outputs)],
    )
    result = await wasm.run(req, Sink())
    assert (result.exit_code, result.stderr) == (1, "cannot open input\n")
    assert not (outputs / "leak.txt").exists()


async def test_wasm_result_path_cannot_be_the_root(tmp_path: Path, wasm: WasmExecutor) -> None:
    req = request(
        tmp_path,
        wasm_task(),
        inputs=[module_input("hello")],
        results=[ResultDir(name="all", path="/", host_dir=tmp_path / "all")],
    )
    with pytest.raises(ExecutorError, match="ResultPath all is the guest root"):
        await wasm.run(req, Sink())
    assert list((tmp_path / "work").iterdir()) == []
