"""The docker engine's pure parts: spec parsing, image references, limits, the CLI's job
builder and selector, the setup helper's choices, archive manifests, scheduling by image."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any

import click
import pytest
from podman.errors import APIError

from edge.cli.docker import build_docker_job
from edge.cli.image import ArchivedImage, already_loaded, archive_images
from edge.cli.placement import parse_selector
from edge.cli.setup import (
    cgroup_mode,
    containers_conf,
    engine_choice,
    free_subid_start,
    socket_answers,
)
from edge.executors import ServiceExecutor, canonical_engine
from edge.executors.base import STDERR, STDOUT, ExecutionRequest, ExecutorError
from edge.executors.podman import (
    HostLimits,
    PodmanExecutor,
    _Capture,
    _frames,
    _Images,
    _limits_note,
    _resume_at,
    _start_error,
    parse_spec,
    socket_path,
)
from edge.jobspec import load_job
from edge.models import Job, NodeInfo, NodeState, Task
from edge.models.node import ImageRef, find_image, registry_allowed
from edge.orchestrator.nodes import LiveNode
from edge.orchestrator.scheduler import select_node
from tests.podman_image import build_busybox_archive, image_id


def docker_task(params: dict[str, Any], **extra: Any) -> Task:
    return Task.model_validate({"Engine": {"Type": "docker", "Params": params}, **extra})


# -- job spec -----------------------------------------------------------------------------


def test_parse_spec_reads_bacalhau_params_case_insensitively() -> None:
    spec = parse_spec(
        docker_task(
            {
                "image": "busybox",
                "Entrypoint": ["/bin/sh", "-c"],
                "parameters": ["echo hi"],
                "EnvironmentVariables": ["A=1", "B=x=y"],
                "WorkingDirectory": "/work",
            }
        )
    )
    assert spec.image == "busybox"
    assert spec.entrypoint == ["/bin/sh", "-c"]
    assert spec.parameters == ["echo hi"]
    assert spec.env == {"A": "1", "B": "x=y"}
    assert spec.working_directory == "/work"
    assert spec.read_only_rootfs is True
    assert (
        parse_spec(docker_task({"Image": "x", "ReadOnlyRootfs": False})).read_only_rootfs is False
    )


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "docker task has no Image: set Engine.Params.Image"),
        ({"Image": "x", "Parameters": [{"a": 1}]}, "Parameters must be a list of strings"),
        ({"Image": "x", "EnvironmentVariables": ["NOEQUALS"]}, "is not KEY=value"),
        ({"Image": "x", "WorkingDirectory": "rel"}, "is not an absolute path"),
        ({"Image": "x", "ReadOnlyRootfs": "maybe"}, "is not true or false"),
    ],
)
def test_parse_spec_names_the_bad_param(params: dict[str, Any], message: str) -> None:
    with pytest.raises(ExecutorError, match=message):
        parse_spec(docker_task(params))


def test_podman_engine_is_an_alias_and_jobspec_canonicalises_it() -> None:
    assert canonical_engine("Podman") == "docker"
    job = load_job({"Tasks": [{"Engine": {"Type": "podman", "Params": {"Image": "busybox"}}}]})
    assert job.task.Engine.Type == "docker"


def test_socket_path_accepts_urls_and_defaults_to_the_users_runtime_dir() -> None:
    assert socket_path("unix:///run/user/5/podman/podman.sock") == "/run/user/5/podman/podman.sock"
    assert socket_path("/x.sock") == "/x.sock"
    assert socket_path("").endswith("/podman/podman.sock")


def test_executor_is_a_service_executor() -> None:
    assert isinstance(PodmanExecutor(), ServiceExecutor)


# -- images ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reference", "canonical"),
    [
        ("busybox", "docker.io/library/busybox:latest"),
        ("localhost/busybox", "localhost/busybox:latest"),
        ("docker.io/busybox:1.36", "docker.io/library/busybox:1.36"),
        ("ghcr.io/acme/tool:v1", "ghcr.io/acme/tool:v1"),
        ("registry.local:5000/x", "registry.local:5000/x:latest"),
        ("alpine@sha256:abc", "docker.io/library/alpine@sha256:abc"),
    ],
)
def test_image_references_are_read_as_docker_reads_them(reference: str, canonical: str) -> None:
    assert ImageRef.parse(reference).canonical() == canonical


def test_find_image_matches_short_names_in_any_registry_but_not_other_tags() -> None:
    local = ["localhost/busybox:latest", "docker.io/library/alpine:3.19"]
    assert find_image("busybox", local) == "localhost/busybox:latest"
    assert find_image("localhost/busybox:latest", local) == "localhost/busybox:latest"
    assert find_image("alpine:3.19", local) == "docker.io/library/alpine:3.19"
    assert find_image("docker.io/alpine:3.19", local) == "docker.io/library/alpine:3.19"
    assert find_image("alpine", local) is None  # :latest is not there
    assert find_image("docker.io/busybox", local) is None  # another registry's busybox


def test_registry_allow_list() -> None:
    assert registry_allowed("busybox", ["docker.io"])
    assert registry_allowed("ghcr.io/acme/x:1", ["ghcr.io/acme"])
    assert not registry_allowed("ghcr.io/acmex/x:1", ["ghcr.io/acme"])
    assert registry_allowed("anything/at:all", ["*"])
    assert not registry_allowed("busybox", [])


def test_local_images_resolve_by_tag_digest_and_id() -> None:
    images = _Images.from_list(
        [
            {
                "Id": "sha256:" + "ab" * 32,
                "RepoTags": ["localhost/busybox:latest"],
                "RepoDigests": ["localhost/busybox@sha256:" + "cd" * 32],
            },
            {"Id": "ef" * 32, "RepoTags": None},
        ]
    )
    assert images.tags == ["localhost/busybox:latest"]
    assert images.resolve("busybox") == "localhost/busybox:latest"
    assert images.resolve("localhost/busybox@sha256:" + "cd" * 32) is not None
    assert images.resolve("efefefefefef") == "ef" * 32
    assert images.resolve("sha256:abababababab") == "ab" * 32
    assert images.resolve("nothere") is None


def test_bid_problem_names_the_fix_for_a_missing_image() -> None:
    executor = PodmanExecutor(socket="/nowhere.sock")
    problem = executor._image_problem("localhost/nope:1")
    assert "image localhost/nope:1 is not on this node" in problem
    assert "bacedge image load FILE" in problem
    assert "[compute] allowed_registries" in problem
    pulls = PodmanExecutor(socket="/nowhere.sock", allowed_registries=["ghcr.io"])
    assert pulls._image_problem("ghcr.io/acme/x:1") == ""
    other = pulls._image_problem("quay.io/x/y")
    assert "its registry quay.io is not in [compute] allowed_registries (ghcr.io)" in other
    # Until the service is reached, every task is refused with how to set it up.
    (unreached,) = executor.problems(docker_task({"Image": "busybox"}))
    assert "Podman socket /nowhere.sock" in unreached and "bacedge setup podman" in unreached


# -- limits ---------------------------------------------------------------------------------


def test_rootless_cgroups_v1_enforces_nothing_and_says_why() -> None:
    limits = HostLimits.from_info(
        {"host": {"cgroupVersion": "v1", "security": {"rootless": True}, "cgroupControllers": []}}
    )
    assert limits.enforced == frozenset()
    assert limits.inventory() == {
        f"docker.{k}": "not enforced: rootless Podman on cgroups v1 cannot apply limits"
        for k in ("cpu", "memory", "pids")
    }


def test_cgroups_v2_enforces_the_delegated_controllers() -> None:
    limits = HostLimits.from_info(
        {
            "host": {
                "cgroupVersion": "v2",
                "security": {"rootless": True},
                "cgroupControllers": ["memory", "pids"],
            }
        }
    )
    assert limits.enforced == frozenset({"memory", "pids"})
    inventory = limits.inventory()
    assert inventory["docker.memory"] == "enforced"
    assert inventory["docker.cpu"].startswith("not enforced: cgroup controller(s) cpu")
    note = _limits_note({"cpu": "0.5 CPU", "memory": "64.0 MiB"}, limits)
    assert note.startswith("enforced: 64.0 MiB; not enforced on this node")
    assert note.endswith(": 0.5 CPU")


def test_limit_arguments_follow_what_the_host_enforces() -> None:
    executor = PodmanExecutor(pids_limit=50)
    task = docker_task({"Image": "x"}, Resources={"CPU": "250m", "Memory": "32Mi"})
    executor.host = HostLimits(frozenset({"cpu", "memory", "pids"}))
    args, note = executor._limit_args(task)
    assert args == {
        "cpu_period": 100_000,
        "cpu_quota": 25_000,
        "mem_limit": 32 << 20,
        "pids_limit": 50,
    }
    assert note == "enforced: 0.25 CPU, 32.0 MiB, 50 pids"
    executor.host = HostLimits(frozenset(), "no cgroups here")
    args, note = executor._limit_args(task)
    assert args == {}
    assert note == "not enforced on this node (no cgroups here): 0.25 CPU, 32.0 MiB, 50 pids"


# -- output ---------------------------------------------------------------------------------


def test_live_stream_resumes_after_what_it_delivered_even_across_a_gap() -> None:
    whole = b"".join(f"{i}\n".encode() for i in range(1, 2001))
    prefix = whole[:5000]
    assert _resume_at(whole, len(prefix), prefix[-64:]) == 5000
    assert _resume_at(whole, 0, b"") == 0
    # Podman's follow skipped bytes 3000-4000: the count is short, the tail says where.
    streamed = whole[:3000] + whole[4000:6000]
    assert _resume_at(whole, len(streamed), streamed[-64:]) == 6000
    assert _resume_at(whole, 10, b"not in the output") == len(whole)  # deliver nothing twice


def test_log_frames_and_capture_caps_each_stream() -> None:
    body = b"".join(
        bytes([kind, 0, 0, 0]) + len(data).to_bytes(4, "big") + data
        for kind, data in [(1, b"hello\n"), (2, b"oops\n"), (1, b"world\n")]
    )
    frames = list(_frames(body))
    assert frames == [(1, b"hello\n"), (2, b"oops\n"), (1, b"world\n")]
    seen: list[tuple[int, bytes]] = []
    capture = _Capture(8, lambda kind, data: seen.append((kind, data)))
    for kind, data in frames:
        capture.feed(kind, data)
    assert capture.text(STDOUT) == ("hello\nwo", True)
    assert capture.text(STDERR) == ("oops\n", False)
    assert seen == frames  # the live sink gets everything, uncapped


# -- CLI ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("podman_says", "hint"),
    [
        (
            "runc create failed: unable to join session keyring: unable to create session "
            "key: operation not permitted: OCI permission denied",
            "keyring = false",
        ),
        ('exec: "nope": executable file not found in $PATH', "check Entrypoint"),
        ("open /data/in: permission denied", "able to read every input"),
    ],
)
def test_start_errors_name_the_fix(podman_says: str, hint: str, tmp_path: Path) -> None:
    request = ExecutionRequest(
        execution_id="e-1",
        job_id="j-1",
        node_id="n-1",
        task=docker_task({"Image": "busybox"}),
        env={},
        workdir=tmp_path,
    )
    message = _start_error(APIError(podman_says), request)
    assert podman_says in message and hint in message


def test_build_docker_job_mirrors_bacalhau_docker_run() -> None:
    job = build_docker_job(
        "busybox",
        ["sh", "-c", "echo hi"],
        entrypoint=["/bin/env"],
        env={"A": "1"},
        workdir="/w",
        inputs=[{"Source": {"Type": "local", "Params": {"SourcePath": "/d"}}, "Target": "/in"}],
        outputs=[{"Name": "out", "Path": "/outputs"}],
        resources={"CPU": "500m", "Memory": "256Mb"},
        network="none",
        timeout=30,
        labels={"team": "edge"},
        constraints=parse_selector("zone=a"),
        count=2,
    )
    parsed = Job.model_validate(job)
    task = parsed.task
    assert task.Engine.Params == {
        "Image": "busybox",
        "Entrypoint": ["/bin/env"],
        "Parameters": ["sh", "-c", "echo hi"],
        "EnvironmentVariables": ["A=1"],
        "WorkingDirectory": "/w",
    }
    assert task.Resources.CPU == "500m" and task.Timeouts.ExecutionTimeout == 30
    assert parsed.Count == 2 and parsed.Labels == {"team": "edge"}
    assert load_job(job).task.Engine.Type == "docker"  # the server accepts it as is


def test_parse_selector() -> None:
    assert parse_selector("env=prod, zone in (a, b),!gpu,arch,tier!=x") == [
        {"Key": "env", "Operator": "=", "Values": ["prod"]},
        {"Key": "zone", "Operator": "in", "Values": ["a", "b"]},
        {"Key": "gpu", "Operator": "!", "Values": []},
        {"Key": "arch", "Operator": "exists", "Values": []},
        {"Key": "tier", "Operator": "!=", "Values": ["x"]},
    ]
    with pytest.raises(click.BadParameter):
        parse_selector("a b c")


def test_archive_manifest_gives_ids_and_tags(tmp_path: Path) -> None:
    archive = build_busybox_archive()
    (found,) = archive_images(archive)
    assert found == ArchivedImage(image_id(archive), ("localhost/busybox:latest",))
    present = [{"Id": found.image_id, "RepoTags": ["localhost/busybox:latest"]}]
    assert already_loaded([found], present)
    assert not already_loaded([found], [{"Id": found.image_id, "RepoTags": []}])
    assert not already_loaded([found], [])
    oci = tmp_path / "oci.tar"
    with tarfile.open(oci, "w") as tar:
        for name, data in {
            "index.json": {
                "manifests": [
                    {
                        "digest": "sha256:m1",
                        "annotations": {"org.opencontainers.image.ref.name": "x:1"},
                    }
                ]
            },
            "blobs/sha256/m1": {"config": {"digest": "sha256:c1"}},
        }.items():
            raw = json.dumps(data).encode()
            info = tarfile.TarInfo(name)
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    assert archive_images(oci) == [ArchivedImage("c1", ("x:1",))]
    assert archive_images(tmp_path / "missing.tar") == []


# -- setup helper -----------------------------------------------------------------------------


def test_runtime_choice_follows_the_cgroup_mode() -> None:
    hybrid = engine_choice("hybrid", False, {"crun", "runc"})
    assert (hybrid.runtime, hybrid.cgroup_manager) == ("runc", "cgroupfs")
    v2 = engine_choice("v2", True, {"crun", "runc"})
    assert (v2.runtime, v2.cgroup_manager) == ("crun", "systemd")
    assert engine_choice("v2", False, {"runc"}).runtime == "runc"
    with pytest.raises(click.ClickException, match="needs runc"):
        engine_choice("hybrid", False, {"crun"})
    conf = containers_conf(hybrid)
    assert 'runtime = "runc"' in conf and 'cgroup_manager = "cgroupfs"' in conf
    assert 'events_logger = "file"' in conf


def test_cgroup_mode_and_subid_allocation(tmp_path: Path) -> None:
    assert cgroup_mode(tmp_path) == "v1"
    (tmp_path / "unified").mkdir()
    assert cgroup_mode(tmp_path) == "hybrid"
    (tmp_path / "cgroup.controllers").write_text("cpu memory pids\n")
    assert cgroup_mode(tmp_path) == "v2"
    assert free_subid_start([]) == 100_000
    assert free_subid_start([("a", 100_000, 65_536), ("b", 165_536, 65_536)]) == 231_072
    assert not socket_answers(str(tmp_path / "none.sock"))


# -- scheduling ------------------------------------------------------------------------------


def _node(node_id: str, images: list[str], active: int = 0) -> LiveNode:
    info = NodeInfo.model_validate(
        {
            "NodeID": node_id,
            "ComputeNodeInfo": {
                "ExecutionEngines": ["docker"],
                "MaxCapacity": {"CPU": 4, "Memory": 1 << 32, "Disk": 1 << 40},
                "Inventory": {"Images": images},
            },
        }
    )
    node = LiveNode(state=NodeState(Info=info))
    node.active = {f"e-{i}" for i in range(active)}
    return node


def test_scheduler_prefers_a_node_that_has_the_image() -> None:
    job = load_job({"Tasks": [{"Engine": {"Type": "docker", "Params": {"Image": "busybox"}}}]})
    need = job.task.Resources.parse()
    idle_without = _node("n-idle", [])
    busy_with = _node("n-busy", ["localhost/busybox:latest"], active=3)
    assert select_node(job, need, [idle_without, busy_with]).node is busy_with
    other = load_job({"Tasks": [{"Engine": {"Type": "docker", "Params": {"Image": "alpine"}}}]})
    assert select_node(other, need, [idle_without, busy_with]).node is idle_without


def test_stop_grace_comes_from_config(tmp_path: Path) -> None:
    from edge.compute.agent import ComputeNode
    from edge.config import ConfigError, load_config
    from edge.executors import build_executors

    config = load_config(
        None,
        {"node.data_dir": str(tmp_path)},
        environ={"BACEDGE_COMPUTE_STOP_GRACE": "25"},
    )
    assert config.data_dir == tmp_path
    node = ComputeNode(config, [])
    executor = build_executors(["docker"], node._engine_settings())["docker"]
    assert isinstance(executor, PodmanExecutor) and executor.stop_grace == 25
    args = executor._create_args(
        ExecutionRequest("e-1", "j-1", "n-1", docker_task({"Image": "x"}), {}, tmp_path),
        parse_spec(docker_task({"Image": "x"})),
    )
    assert args["stop_timeout"] == 25
    with pytest.raises(ConfigError, match="stop_grace"):
        load_config(None, environ={"BACEDGE_COMPUTE_STOP_GRACE": "-1"})
