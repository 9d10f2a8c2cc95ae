"""The docker engine against the real rootless Podman of the test suite (no cluster)."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from podman import PodmanClient

from edge.executors.base import STDOUT, ExecutionRequest, ExecutorError
from edge.executors.podman import LABEL_EXECUTION, LABEL_NODE, PodmanExecutor, container_name
from edge.models import GPUInfo, Task
from tests.podman_image import TAG


@pytest.fixture
async def executor(socket: str) -> AsyncIterator[PodmanExecutor]:
    engine = PodmanExecutor(socket=socket, stop_grace=1, output_cap=1000)
    await engine.open()
    yield engine
    await engine.close()


@pytest.fixture
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="bacedge-podman-unit-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _request(
    workdir: Path, execution_id: str, params: dict[str, Any], **kw: Any
) -> ExecutionRequest:
    task = Task.model_validate({"Engine": {"Type": "docker", "Params": {"Image": TAG, **params}}})
    return ExecutionRequest(
        execution_id=execution_id,
        job_id="j-unit",
        node_id=kw.pop("node_id", "n-unit"),
        task=task,
        env={},
        workdir=workdir,
        timeout=kw.pop("timeout", 60),
        output_cap=kw.pop("output_cap", 1000),
        **kw,
    )


def _labelled(podman: PodmanClient, key: str, value: str) -> list[dict[str, Any]]:
    filters = json.dumps({"label": [f"{key}={value}"]})
    response = podman.api.get("/containers/json", params={"all": True, "filters": filters})
    response.raise_for_status()
    return list(response.json() or [])


async def test_output_is_capped_but_streamed_to_the_end(
    executor: PodmanExecutor, workdir: Path
) -> None:
    """The result comes from the complete log. The live stream ends where the output ends,
    in order and without repeats; it can miss a stretch only where Podman's own follow
    stream does (podman#21914), which is why the result is not built from it."""
    seen: list[bytes] = []
    result = await executor.run(
        _request(workdir, "e-cap", {"Parameters": ["seq", "1", "20000"]}),
        lambda kind, data: seen.append(data) if kind == STDOUT else None,
    )
    assert result.exit_code == 0 and result.error == ""
    assert result.stdout_truncated and len(result.stdout) == 1000
    assert result.stdout == "".join(f"{i}\n" for i in range(1, 400))[:1000]
    streamed = [int(line) for line in b"".join(seen).decode().splitlines()]
    assert streamed[0] == 1 and streamed[-1] == 20000
    assert all(a < b for a, b in itertools.pairwise(streamed))


async def test_complete_output_is_the_result(executor: PodmanExecutor, workdir: Path) -> None:
    result = await executor.run(
        _request(workdir, "e-all", {"Parameters": ["seq", "1", "50000"]}, output_cap=1 << 20),
        lambda kind, data: None,
    )
    assert not result.stdout_truncated
    assert result.stdout == "".join(f"{i}\n" for i in range(1, 50001))


async def test_a_stale_container_of_the_same_execution_is_replaced(
    executor: PodmanExecutor, workdir: Path, podman: PodmanClient
) -> None:
    stale = podman.containers.create(TAG, command=["true"], name=container_name("e-stale"))
    try:
        result = await executor.run(
            _request(workdir, "e-stale", {"Parameters": ["echo", "fresh"]}), lambda k, d: None
        )
        assert result.stdout == "fresh\n"
    finally:
        podman.api.delete(f"/containers/{stale.id}", params={"force": True})


async def test_cancel_stops_and_removes_the_container(
    executor: PodmanExecutor, workdir: Path, podman: PodmanClient
) -> None:
    started = asyncio.Event()
    run = asyncio.create_task(
        executor.run(
            _request(workdir, "e-cancel", {"Parameters": ["sh", "-c", "echo up; sleep 600"]}),
            lambda kind, data: started.set(),
        )
    )
    await asyncio.wait_for(started.wait(), 60)
    assert _labelled(podman, LABEL_EXECUTION, "e-cancel")
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert _labelled(podman, LABEL_EXECUTION, "e-cancel") == []


async def test_a_command_that_cannot_start_is_an_engine_error(
    executor: PodmanExecutor, workdir: Path, podman: PodmanClient
) -> None:
    with pytest.raises(ExecutorError, match="check Entrypoint and Parameters"):
        await executor.run(
            _request(workdir, "e-nocmd", {"Parameters": ["/no/such/program"]}), lambda k, d: None
        )
    assert _labelled(podman, LABEL_EXECUTION, "e-nocmd") == []


async def test_reconcile_reports_exited_removes_ours_and_spares_other_nodes(
    executor: PodmanExecutor, podman: PodmanClient
) -> None:
    def create(execution: str, node: str, command: list[str]) -> str:
        container = podman.containers.create(
            TAG,
            command=command,
            labels={LABEL_EXECUTION: execution, LABEL_NODE: node},
            network_mode="none",
        )
        container.start()
        return str(container.id)

    finished = create("e-done", "n-rec", ["sh", "-c", "echo done; exit 4"])
    running = create("e-run", "n-rec", ["sleep", "600"])
    orphan = create("e-old", "n-rec", ["true"])
    foreign = create("e-foreign", "n-other", ["true"])
    try:
        podman.containers.get(finished).wait()
        found = await executor.reconcile("n-rec", {"e-done", "e-run"})
        assert found["e-done"].exit_code == 4 and found["e-done"].stdout == "done\n"
        assert "Recovered" in found["e-done"].details
        assert "restarted while the task was running" in found["e-run"].error
        assert "Lost" in found["e-run"].details
        assert set(found) == {"e-done", "e-run"}
        assert _labelled(podman, LABEL_NODE, "n-rec") == []
        assert [c["Id"] for c in _labelled(podman, LABEL_NODE, "n-other")] == [foreign]
    finally:
        for container_id in (finished, running, orphan, foreign):
            podman.api.delete(f"/containers/{container_id}", params={"force": True})


async def test_an_image_loaded_meanwhile_is_found_at_bid_time(
    executor: PodmanExecutor, podman: PodmanClient
) -> None:
    task = Task.model_validate({"Engine": {"Type": "docker", "Params": {"Image": "fresh:1"}}})
    assert executor.problems(task) != []
    podman.images.get(TAG).tag("localhost/fresh", "1")
    try:
        await executor.prepare_bid(task)
        assert executor.problems(task) == []
        assert "localhost/fresh:1" in executor.images()
    finally:
        podman.images.remove("localhost/fresh:1")


async def test_missing_socket_refuses_tasks_with_the_fix_until_it_appears(
    socket: str, workdir: Path
) -> None:
    link = workdir / "podman.sock"
    engine = PodmanExecutor(socket=str(link))
    await engine.open()  # a node still starts: the socket may come up after it
    task = Task.model_validate({"Engine": {"Type": "docker", "Params": {"Image": TAG}}})
    message = (
        f"Podman socket {link} not found: run `bacedge setup podman --user NAME` as root, "
        "or set [compute] podman_socket"
    )
    assert engine.problems(task) == [message]
    assert engine.limits() == {} and engine.images() == []
    with pytest.raises(ExecutorError, match="not found"):
        await engine.reconcile("n-late", set())
    link.symlink_to(socket)
    await engine.prepare_bid(task)  # an offer for the engine tries again
    assert engine.problems(task) == []
    assert TAG in engine.images() and set(engine.limits()) == {
        "docker.cpu",
        "docker.memory",
        "docker.pids",
    }
    result = await engine.run(_request(workdir, "e-late", {"Parameters": ["echo", "up"]}), print)
    assert result.stdout == "up\n"
    await engine.close()


@pytest.fixture
def cdi_gpu() -> Iterator[GPUInfo]:
    """A GPU the host's NVIDIA CDI spec declares, mapped to a harmless device (/dev/full):
    rootless Podman reads /etc/cdi, so the real CDI path runs without a GPU."""
    spec_dir = Path("/etc/cdi")
    if os.geteuid() != 0:
        pytest.skip("writing a CDI spec to /etc/cdi needs root")
    gpu = GPUInfo(Index=0, Name="CDI test GPU", UUID=f"GPU-bacedge-test-{uuid.uuid4()}")
    created = not spec_dir.exists()
    spec_dir.mkdir(exist_ok=True)
    path = spec_dir / f"{gpu.UUID}.yaml"
    path.write_text(
        'cdiVersion: "0.5.0"\nkind: "nvidia.com/gpu"\n'
        f'devices:\n  - name: "{gpu.UUID}"\n    containerEdits:\n'
        '      deviceNodes:\n        - path: "/dev/full"\n'
        '      env:\n        - "BACEDGE_CDI_DEVICE=applied"\n'
    )
    yield gpu
    path.unlink()
    if created:
        spec_dir.rmdir()


async def test_reserved_gpus_reach_the_container_through_cdi(
    executor: PodmanExecutor, workdir: Path, cdi_gpu: GPUInfo
) -> None:
    request = _request(
        workdir,
        "e-gpu",
        {
            "Parameters": [
                "sh",
                "-c",
                "echo $BACEDGE_CDI_DEVICE $NVIDIA_VISIBLE_DEVICES; ls /dev/full",
            ]
        },
        gpus=[cdi_gpu],
    )
    request.env["NVIDIA_VISIBLE_DEVICES"] = cdi_gpu.UUID  # as the runner sets it
    result = await executor.run(request, lambda kind, data: None)
    assert result.error == "" and result.exit_code == 0, result.stderr
    assert result.stdout == f"applied {cdi_gpu.UUID}\n/dev/full\n"
