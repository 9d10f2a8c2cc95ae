"""The docker engine: Bacalhau docker tasks run by rootless Podman, through podman-py.

The agent never needs root: it only talks to the API socket of an unprivileged service user
(`bacedge setup podman --user NAME` creates one). Each task is one container with no network
unless the node allows it, a read-only root filesystem (tmpfs on /tmp, /var/tmp and /run),
no-new-privileges, a pids limit and the CPU/memory limits of its Resources wherever the host's
cgroups can enforce them; where they cannot (rootless on cgroups v1) the node says so in its
inventory and the execution's Details say so in the job history, rather than pretending.

Images are offline first: a task uses an image already in the service user's store and a
pull is tried only from the registries the node allows, so a bid for an image the node has
not got and may not pull is refused with that reason. Containers are labelled with their
job, execution and node, so an agent restarted after a crash finds and removes what it left.

podman-py is blocking: every call runs in a worker thread, never on the event loop. Waits
and log streams last as long as a task, so they use a pool of their own and cannot starve
the loop's default executor.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import posixpath
import struct
import threading
from collections.abc import Callable, Collection, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import requests

from edge.lazy import optional_extras_hidden

with optional_extras_hidden("rich"):  # podman-py's pull progress bars: never shown here
    from podman import PodmanClient
    from podman.api.client import APIResponse
    from podman.domain.containers import Container
    from podman.errors import APIError

from edge.models import LOST_DETAIL, NetworkType, ResourceError, Task, format_bytes
from edge.models.node import ImageRef, find_image, registry_allowed

from .base import STDERR, STDOUT, ExecutionRequest, ExecutionResult, ExecutorError, LogSink
from .gpu import gpu_devices

log = logging.getLogger("bacedge.executors.podman")

T = TypeVar("T")

LABEL_EXECUTION = "bacedge.execution"
LABEL_JOB = "bacedge.job"
LABEL_NODE = "bacedge.node"
CONTAINER_PREFIX = "bacedge-"
TMPFS_DIRS = ("/tmp", "/var/tmp", "/run")  # writable scratch on a read-only root
CPU_PERIOD = 100_000  # microseconds; the quota is CPU cores times this
DEFAULT_STOP_GRACE = 10.0  # seconds between SIGTERM and SIGKILL, as `docker stop`
LIMITS = ("cpu", "memory", "pids")
_NETWORKED = (NetworkType.HOST, NetworkType.FULL, NetworkType.HTTP, NetworkType.BRIDGE)
_FRAME = struct.Struct(">BxxxL")  # Podman's multiplexed log frame: stream, 3 pad, size
_SETUP_HINT = "run `bacedge setup podman --user NAME` as root, or set [compute] podman_socket"


def default_socket() -> str:
    """The socket of this user's rootless Podman service."""
    return f"/run/user/{os.geteuid()}/podman/podman.sock"


def socket_path(configured: str) -> str:
    """The socket's filesystem path from `[compute] podman_socket` (a path or unix:// URL)."""
    text = (configured or "").strip()
    for prefix in ("unix://", "http+unix://"):
        if text.startswith(prefix):
            text = text[len(prefix) :]
            break
    return text or default_socket()


def connect(configured: str = "") -> PodmanClient:
    """A client for the socket, or ExecutorError naming the fix when nothing listens there.

    Used by the agent and by the `bacedge image` commands alike, so both say the same thing.
    """
    path = socket_path(configured)
    if not os.path.exists(path):
        raise ExecutorError(f"Podman socket {path} not found: {_SETUP_HINT}")
    client = PodmanClient(base_url=f"unix://{path}")
    try:
        client.version()
    except (APIError, requests.RequestException) as exc:
        client.close()
        if not os.access(path, os.R_OK | os.W_OK):
            raise ExecutorError(
                f"Podman socket {path} is not accessible to this user (UID {os.geteuid()}): "
                f"run bacedge as the socket's owner (UID {os.stat(path).st_uid}) or root"
            ) from None
        raise ExecutorError(
            f"Podman socket {path} does not answer ({_one_line(str(exc))}): start the service "
            "with `bacedge setup podman --user NAME` as root"
        ) from None
    return client


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _api_message(exc: BaseException) -> str:
    """What Podman said, without requests' URL noise."""
    explanation = getattr(exc, "explanation", None)
    return _one_line(str(explanation or exc))


# -- job spec ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DockerSpec:
    """The docker engine's Params, checked (Bacalhau's names, plus ReadOnlyRootfs)."""

    image: str
    entrypoint: list[str] | None = None
    parameters: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    working_directory: str = ""
    read_only_rootfs: bool = True


def _strings(value: Any, what: str, example: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(
        isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in value
    ):
        raise ExecutorError(f"docker {what} must be a list of strings: write it as {example}")
    return [str(v) for v in value]


def _env_list(value: Any) -> dict[str, str]:
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    out: dict[str, str] = {}
    for item in _strings(value, "EnvironmentVariables", '["KEY=value"]'):
        key, eq, rest = item.partition("=")
        if not eq or not key:
            raise ExecutorError(
                f"docker EnvironmentVariables entry {item!r} is not KEY=value: write it as "
                '["KEY=value"]'
            )
        out[key] = rest
    return out


def parse_spec(task: Task) -> DockerSpec:
    """The task's docker Params, or ExecutorError saying which one is wrong and how to fix it."""
    engine = task.Engine
    image = engine.param("Image")
    if not isinstance(image, str) or not image.strip():
        raise ExecutorError(
            "docker task has no Image: set Engine.Params.Image, e.g. localhost/busybox:latest"
        )
    entrypoint = engine.param("Entrypoint")
    workdir = engine.param("WorkingDirectory") or ""
    if not isinstance(workdir, str) or (workdir and not workdir.startswith("/")):
        raise ExecutorError(
            f"docker WorkingDirectory {workdir!r} is not an absolute path: set it to e.g. /work"
        )
    read_only = engine.param("ReadOnlyRootfs", True)
    if not isinstance(read_only, bool):
        raise ExecutorError(f"docker ReadOnlyRootfs {read_only!r} is not true or false")
    return DockerSpec(
        image=image.strip(),
        entrypoint=_strings(entrypoint, "Entrypoint", '["sh", "-c"]') if entrypoint else None,
        parameters=_strings(engine.param("Parameters") or [], "Parameters", '["echo", "hi"]'),
        env=_env_list(engine.param("EnvironmentVariables") or []),
        working_directory=workdir,
        read_only_rootfs=read_only,
    )


def container_name(execution_id: str) -> str:
    return CONTAINER_PREFIX + execution_id


# -- what the host can enforce ------------------------------------------------------------


@dataclass(frozen=True)
class HostLimits:
    """Which cgroup limits Podman applies on this host, and why not where it does not."""

    enforced: frozenset[str]
    reason: str = ""  # why the others are not

    @classmethod
    def from_info(cls, info: dict[str, Any]) -> HostLimits:
        host = info.get("host") or {}
        version = str(host.get("cgroupVersion") or "")
        rootless = bool((host.get("security") or {}).get("rootless"))
        if version == "v1":
            if rootless:
                return cls(frozenset(), "rootless Podman on cgroups v1 cannot apply limits")
            return cls(frozenset(LIMITS))
        controllers = {str(c) for c in host.get("cgroupControllers") or []}
        enforced = frozenset(limit for limit in LIMITS if limit in controllers)
        missing = [limit for limit in LIMITS if limit not in enforced]
        reason = ""
        if missing:
            reason = (
                f"cgroup controller(s) {', '.join(missing)} not delegated to the Podman user "
                "(systemd user@.service Delegate=)"
            )
        return cls(enforced, reason)

    def inventory(self) -> dict[str, str]:
        """`Inventory.Limits` entries: engine.limit -> enforced, or why not."""
        return {
            f"docker.{limit}": "enforced"
            if limit in self.enforced
            else f"not enforced: {self.reason}"
            for limit in LIMITS
        }


# -- output -------------------------------------------------------------------------------


def _frames(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(stream, payload) of each frame in a complete multiplexed log body."""
    index = 0
    while len(data) - index >= _FRAME.size:
        kind, size = _FRAME.unpack_from(data, index)
        index += _FRAME.size
        yield kind, data[index : index + size]
        index += size


class _Capture:
    """Keeps the first `cap` bytes of each stream and forwards every chunk to the sink
    (when there is one)."""

    def __init__(self, cap: int, sink: LogSink | None) -> None:
        self.cap = cap
        self.sink = sink
        self.kept = {STDOUT: bytearray(), STDERR: bytearray()}
        self.seen = {STDOUT: 0, STDERR: 0}
        self._sink_failed = False

    def feed(self, kind: int, data: bytes) -> None:
        if kind not in self.kept or not data:
            return
        self.seen[kind] += len(data)
        kept = self.kept[kind]
        if len(kept) < self.cap:
            kept += data[: self.cap - len(kept)]
        if self._sink_failed or self.sink is None:
            return
        try:
            self.sink(kind, data)
        except Exception:
            log.exception("log sink failed; dropping the rest of this task's live output")
            self._sink_failed = True

    def text(self, kind: int) -> tuple[str, bool]:
        return (
            bytes(self.kept[kind]).decode("utf-8", "replace"),
            self.seen[kind] > len(self.kept[kind]),
        )


class _LogFollower:
    """Streams a running container's output from a worker thread onto the event loop.

    Podman ends a follow stream only some time after the task exits, so the executor does
    not wait for it: it detaches the follower and reads the complete log once. That read is
    the task's output; the live stream is best effort, because Podman's k8s-file follow can
    skip a stretch of a fast writer's output (podman#21914, #26206). The follower keeps the
    tail of what it delivered so the rest can be found in the complete log without repeats.
    """

    TAIL = 4096

    def __init__(
        self, client: PodmanClient, container_id: str, loop: asyncio.AbstractEventLoop
    ) -> None:
        self.client = client
        self.container_id = container_id
        self.loop = loop
        self.capture: _Capture | None = None
        self.delivered = {STDOUT: 0, STDERR: 0}
        self.tails = {STDOUT: b"", STDERR: b""}
        self._lock = threading.Lock()
        self._detached = False

    def run(self) -> None:
        response: APIResponse | None = None
        try:
            response = self.client.api.get(
                f"/containers/{self.container_id}/logs",
                params={"follow": True, "stdout": True, "stderr": True},
                stream=True,
            )
            if response.status_code != 200:
                return
            raw = response.raw
            while not self._detached:
                header = raw.read(_FRAME.size)
                if len(header) < _FRAME.size:
                    return
                kind, size = _FRAME.unpack(header)
                data = raw.read(size) if size else b""
                with self._lock:
                    if self._detached:
                        return
                    if kind in self.delivered and data:
                        self.delivered[kind] += len(data)
                        self.tails[kind] = (self.tails[kind] + data)[-self.TAIL :]
                        self.loop.call_soon_threadsafe(self._feed, kind, data)
        except Exception as exc:  # a stream cut by removal or shutdown ends following
            log.debug("log follow ended", extra={"error": str(exc)})
        finally:
            if response is not None:
                with contextlib.suppress(Exception):
                    response.close()

    def _feed(self, kind: int, data: bytes) -> None:
        if self.capture is not None:
            self.capture.feed(kind, data)

    def detach(self) -> dict[int, tuple[int, bytes]]:
        """Stop delivering; returns, per stream, the bytes delivered and their tail."""
        with self._lock:
            self._detached = True
            return {kind: (self.delivered[kind], self.tails[kind]) for kind in self.delivered}


def _resume_at(whole: bytes, delivered: int, tail: bytes) -> int:
    """Where in a stream's complete output the live stream should go on.

    Normally right after what it delivered. When the follow stream skipped a stretch, the
    count is short: the end of the delivered tail, found in the complete output, is the spot
    (a repetitive output may match early, which repeats a few identical lines at worst).
    """
    if not tail or whole[delivered - len(tail) : delivered] == tail:
        return delivered
    found = whole.find(tail, max(0, delivered - len(tail)))
    return len(whole) if found < 0 else found + len(tail)


# -- the executor --------------------------------------------------------------------------


@dataclass
class _Images:
    """Local images by every name a task may use: tags, digests and IDs."""

    tags: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)  # tags and repo digests
    ids: list[str] = field(default_factory=list)

    @classmethod
    def from_list(cls, items: list[dict[str, Any]]) -> _Images:
        tags: set[str] = set()
        names: set[str] = set()
        ids: list[str] = []
        for item in items:
            item_tags = [t for t in item.get("RepoTags") or [] if t and "<none>" not in t]
            tags.update(item_tags)
            names.update(item_tags)
            names.update(d for d in item.get("RepoDigests") or [] if d)
            if item.get("Id"):
                ids.append(str(item["Id"]).removeprefix("sha256:"))
        return cls(sorted(tags), sorted(names), ids)

    def resolve(self, reference: str) -> str | None:
        """The local name or ID to run for `reference`, or None when it is not here."""
        found = find_image(reference, self.names)
        if found is not None:
            return found
        wanted = reference.strip().removeprefix("sha256:").lower()
        if len(wanted) >= 12 and all(c in "0123456789abcdef" for c in wanted):
            return next((i for i in self.ids if i.startswith(wanted)), None)
        return None


class PodmanExecutor:
    """Engine "docker" (alias "podman"): Bacalhau's docker Params on rootless Podman."""

    name = "docker"
    holds_inline = False

    def __init__(
        self,
        socket: str = "",
        allowed_registries: Collection[str] = (),
        pids_limit: int = 1024,
        output_cap: int = 1 << 20,
        stop_grace: float = DEFAULT_STOP_GRACE,
        wait_interval: float = 0.05,
    ) -> None:
        self.socket = socket_path(socket)
        self.allowed_registries = [r for r in allowed_registries if r.strip()]
        self.pids_limit = pids_limit
        self.output_cap = output_cap
        self.stop_grace = stop_grace
        self.wait_interval = wait_interval
        self.host = HostLimits(frozenset(), "the Podman service was not reached yet")
        self._client: PodmanClient | None = None
        self.unavailable = f"Podman socket {self.socket} was not tried yet: {_SETUP_HINT}"
        self._connecting: asyncio.Task[bool] | None = None
        self._node_id = ""  # known from `reconcile`, to clean up once the service appears
        self._cleanup_pending = False
        self._running: set[str] = set()  # executions with a container, never cleaned up
        self._images = _Images()
        self._refreshing: asyncio.Task[bool] | None = None
        self._removals: set[asyncio.Future[None]] = set()
        # Waits and log streams block a thread each for a task's whole run.
        self._pool = ThreadPoolExecutor(max_workers=256, thread_name_prefix="podman")

    # -- plumbing ----------------------------------------------------------------------
    @property
    def client(self) -> PodmanClient:
        if self._client is None:
            raise ExecutorError(self.unavailable)
        return self._client

    async def _call(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """A short podman-py call, in the loop's default thread pool."""
        return await asyncio.to_thread(func, *args, **kwargs)

    async def _long(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """A call that lasts as long as a task (wait, log stream), in the engine's own pool."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(func, *args, **kwargs))

    # -- node facts ------------------------------------------------------------------------
    async def open(self) -> None:
        """Reach the service, learn what the host enforces, and list the images.

        A service that is not there (yet: a user manager may start its socket after the
        agent) does not stop the node: bids are refused with the reason and the fix, and
        `refresh` keeps trying, so the engine comes up when the socket does.
        """
        if not await self._connect():
            log.warning(
                "docker engine waiting for Podman; its tasks are refused until then",
                extra={"socket": self.socket, "error": self.unavailable},
            )

    async def _connect(self) -> bool:
        """Connect if not connected (concurrent callers share one try); True if connected."""
        if self._client is not None:
            return True
        if self._connecting is None or self._connecting.done():
            self._connecting = asyncio.ensure_future(self._try_connect())
        return await asyncio.shield(self._connecting)

    async def _try_connect(self) -> bool:
        try:
            client = await self._call(connect, self.socket)
            info = await self._call(client.info)
        except ExecutorError as exc:
            self.unavailable = str(exc)
            return False
        except (APIError, requests.RequestException) as exc:
            self.unavailable = f"Podman at {self.socket} failed: {_api_message(exc)}"
            return False
        self.host = HostLimits.from_info(info)
        self._client = client
        self.unavailable = ""
        await self._refresh()
        log.info(
            "podman engine ready",
            extra={
                "socket": self.socket,
                "images": len(self._images.tags),
                "limits": ",".join(sorted(self.host.enforced)) or "none",
            },
        )
        if self._cleanup_pending:
            self._cleanup_pending = False
            with contextlib.suppress(APIError, requests.RequestException, ExecutorError):
                await self._remove_leftovers()
        return True

    def images(self) -> list[str]:
        """Tags of the images tasks can use now (for the node's inventory)."""
        return list(self._images.tags)

    def limits(self) -> dict[str, str]:
        return self.host.inventory() if self._client is not None else {}

    async def refresh(self) -> bool:
        """Connect if needed, re-read the image list (concurrent callers share one call);
        True if the images changed."""
        if self._client is None:
            return await self._connect()
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = asyncio.ensure_future(self._refresh())
        return await asyncio.shield(self._refreshing)

    async def _refresh(self) -> bool:
        try:
            response = await self._call(self.client.api.get, "/images/json")
            response.raise_for_status()
            images = _Images.from_list(response.json() or [])
        except (APIError, requests.RequestException, ValueError, ExecutorError) as exc:
            log.warning("cannot list Podman images", extra={"error": _api_message(exc)})
            return False
        changed = images.tags != self._images.tags
        self._images = images
        return changed

    async def prepare_bid(self, task: Task) -> None:
        """Refresh the image list before a bid needs an image it does not know yet, so an
        image loaded a moment ago is found."""
        with contextlib.suppress(ExecutorError):
            spec = parse_spec(task)
            if self._client is None or self._images.resolve(spec.image) is None:
                await self.refresh()

    def problems(self, task: Task) -> list[str]:
        try:
            spec = parse_spec(task)
        except ExecutorError as exc:
            return [str(exc)]
        if self._client is None:
            return [self.unavailable]
        problem = self._image_problem(spec.image)
        return [problem] if problem else []

    def _image_problem(self, reference: str) -> str:
        if self._images.resolve(reference) is not None:
            return ""
        if registry_allowed(reference, self.allowed_registries):
            return ""  # it is pulled when the task runs
        registry = ImageRef.parse(reference).registry
        fix = "load it with `bacedge image load FILE` on the node"
        if not self.allowed_registries:
            return (
                f"image {reference} is not on this node and this node pulls from no registry: "
                f"{fix}, or allow its registry ({registry}) in [compute] allowed_registries"
            )
        return (
            f"image {reference} is not on this node and its registry {registry} is not in "
            f"[compute] allowed_registries ({', '.join(self.allowed_registries)}): {fix}, "
            "or allow the registry"
        )

    # -- running -----------------------------------------------------------------------
    async def _image_for(self, reference: str) -> str:
        """The local image to run, pulled first when that is allowed and needed."""
        local = self._images.resolve(reference)
        if local is None:
            await self.refresh()
            local = self._images.resolve(reference)
        if local is not None:
            return local
        problem = self._image_problem(reference)
        if problem:
            raise ExecutorError(problem)
        canonical = ImageRef.parse(reference).canonical()
        log.info("pulling image", extra={"image": canonical})
        try:
            await self._long(self.client.images.pull, canonical)
        except (APIError, requests.RequestException) as exc:
            raise ExecutorError(
                f"cannot pull image {canonical}: {_api_message(exc)}: check the registry is "
                "reachable from the node, or load the image with `bacedge image load FILE`"
            ) from None
        await self.refresh()
        return self._images.resolve(canonical) or canonical

    def _limit_args(self, task: Task) -> tuple[dict[str, Any], str]:
        """podman-py limit arguments for what the host enforces, and the Details text."""
        try:
            need = task.Resources.parse()
        except ResourceError as exc:
            raise ExecutorError(str(exc)) from None
        wanted: dict[str, str] = {}
        args: dict[str, Any] = {}
        if need.CPU > 0:
            wanted["cpu"] = f"{need.CPU:g} CPU"
            if "cpu" in self.host.enforced:
                args["cpu_period"] = CPU_PERIOD
                args["cpu_quota"] = max(1000, int(need.CPU * CPU_PERIOD))
        if need.Memory > 0:
            wanted["memory"] = format_bytes(need.Memory)
            if "memory" in self.host.enforced:
                args["mem_limit"] = need.Memory
        if self.pids_limit > 0:
            wanted["pids"] = f"{self.pids_limit} pids"
            if "pids" in self.host.enforced:
                args["pids_limit"] = self.pids_limit
        return args, _limits_note(wanted, self.host)

    def _network(self, task: Task, allow: bool) -> str:
        kind = task.Network.Type
        if not allow:
            if kind in _NETWORKED:  # the bidder refuses these; this only guards a bug
                raise ExecutorError(
                    f"network type {kind.value!r} is not allowed on this node: "
                    "an operator can set [compute] allow_networking"
                )
            return "none"
        if kind is NetworkType.NONE:
            return "none"
        return "host" if kind is NetworkType.HOST else "slirp4netns"

    def _create_args(self, request: ExecutionRequest, spec: DockerSpec) -> dict[str, Any]:
        mounts: list[dict[str, Any]] = []
        for mounted in request.inputs:
            mounts.append(
                {
                    "type": "bind",
                    "source": str(mounted.host_path),
                    "target": posixpath.normpath(mounted.target),
                    "read_only": not mounted.read_write,
                }
            )
        for result in request.results:
            result.host_dir.mkdir(parents=True, exist_ok=True)
            # The task's user is the service user or one of its subordinate IDs, not us.
            result.host_dir.chmod(0o777)
            mounts.append({"type": "bind", "source": str(result.host_dir), "target": result.path})
        targets = {m["target"] for m in mounts}
        if spec.read_only_rootfs:
            mounts += [
                {"type": "tmpfs", "source": "tmpfs", "target": d}
                for d in TMPFS_DIRS
                if d not in targets
            ]
        env = {**spec.env, **request.env}
        args: dict[str, Any] = {
            "name": container_name(request.execution_id),
            "command": spec.parameters or None,
            "entrypoint": spec.entrypoint,
            "environment": env,
            "labels": {
                LABEL_EXECUTION: request.execution_id,
                LABEL_JOB: request.job_id,
                LABEL_NODE: request.node_id,
            },
            "mounts": mounts,
            "network_mode": self._network(request.task, request.allow_network),
            "read_only": spec.read_only_rootfs,
            "no_new_privileges": True,
            "stop_timeout": int(self.stop_grace),
            # Podman defaults to journald where systemd runs, and a lingering service user
            # has no journal to read back from: its logs API then returns nothing.
            "log_config": {"Type": "k8s-file"},
        }
        if spec.working_directory:
            args["working_dir"] = spec.working_directory
        if request.gpus:
            args["devices"] = gpu_devices(request.gpus)
        return {k: v for k, v in args.items() if v is not None}

    async def _create(self, image: str, args: dict[str, Any]) -> Container:
        try:
            return await self._call(self.client.containers.create, image, **args)
        except APIError as exc:
            if exc.status_code != 409 and "already in use" not in str(exc):
                raise ExecutorError(_create_error(exc, args)) from None
        # A container of this execution survived a crash: it is stale, replace it.
        await self._remove(args["name"], stop=False)
        try:
            return await self._call(self.client.containers.create, image, **args)
        except APIError as exc:
            raise ExecutorError(_create_error(exc, args)) from None

    async def run(self, request: ExecutionRequest, sink: LogSink) -> ExecutionResult:
        spec = parse_spec(request.task)
        limit_args, limits_note = self._limit_args(request.task)
        args = {**self._create_args(request, spec), **limit_args}
        timeout = request.timeout if request.timeout and request.timeout > 0 else None
        try:
            image = await asyncio.wait_for(self._image_for(spec.image), timeout)
        except asyncio.TimeoutError:
            raise ExecutorError(
                f"pulling image {spec.image} took longer than the execution timeout "
                f"({timeout or 0:g}s): load it on the node with `bacedge image load FILE`"
            ) from None
        self._running.add(request.execution_id)
        creating = asyncio.ensure_future(self._create(image, args))
        try:
            # Shielded: the call goes on in its thread anyway, so on cancellation wait for
            # it and remove what it made rather than leave a container behind.
            container = await asyncio.shield(creating)
        except BaseException:
            self._running.discard(request.execution_id)
            if not creating.done():
                await _uncancellable(self._discard(creating))
            raise
        details = {"Image": image, "ContainerID": container.id[:12], "Limits": limits_note}
        try:
            result = await self._supervise(container, request, sink, timeout, details)
        except BaseException:  # cancelled or failed: stopped (with grace), then removed
            await _uncancellable(self._remove(container.id, stop=True))
            raise
        finally:
            self._running.discard(request.execution_id)
        # The task has ended and its output is read: removing the container need not delay
        # the result. A crash before it is done is cleaned up by `reconcile` on restart.
        removal = asyncio.ensure_future(self._remove(container.id, stop=False))
        self._removals.add(removal)
        removal.add_done_callback(self._removals.discard)
        return result

    async def _discard(self, creating: asyncio.Future[Container]) -> None:
        with contextlib.suppress(Exception):
            container = await creating
            await self._remove(container.id, stop=False)

    async def _supervise(
        self,
        container: Container,
        request: ExecutionRequest,
        sink: LogSink,
        timeout: float | None,
        details: dict[str, str],
    ) -> ExecutionResult:
        capture = _Capture(request.output_cap, sink)
        try:
            await self._call(container.start)
        except APIError as exc:
            raise ExecutorError(_start_error(exc, request)) from None
        follower = _LogFollower(self.client, container.id, asyncio.get_running_loop())
        follower.capture = capture
        follow = asyncio.ensure_future(self._long(follower.run))
        waiting = asyncio.ensure_future(
            self._long(
                container.wait,
                condition=["stopped", "exited"],
                interval=f"{int(self.wait_interval * 1000)}ms",
            )
        )
        error = ""
        try:
            try:
                exit_code = await asyncio.wait_for(asyncio.shield(waiting), timeout)
            except asyncio.TimeoutError:
                error = f"execution timed out after {timeout or 0:g}s"
                await self._stop(container.id)
                exit_code = await waiting
        except (APIError, requests.RequestException) as exc:
            raise ExecutorError(
                f"lost track of the task's container: {_api_message(exc)}"
            ) from None
        finally:
            delivered = follower.detach()
            follow.add_done_callback(_ignore_result)
            waiting.add_done_callback(_ignore_result)
        output = await self._complete_output(container.id, capture, delivered)
        if exit_code == 137 and not error:
            error = await self._oom_error(container.id, request)
        stdout, stdout_truncated = output.text(STDOUT)
        stderr, stderr_truncated = output.text(STDERR)
        return ExecutionResult(
            exit_code=int(exit_code),
            stdout=stdout,
            stdout_truncated=stdout_truncated,
            stderr=stderr,
            stderr_truncated=stderr_truncated,
            error=error,
            details={k: v for k, v in details.items() if v},
        )

    async def _complete_output(
        self, container_id: str, live: _Capture, delivered: dict[int, tuple[int, bytes]]
    ) -> _Capture:
        """The task's output from its complete log; the live stream gets what it missed.

        Falls back to what was streamed live when the log cannot be read.
        """
        try:
            body = await self._logs(container_id)
        except (APIError, requests.RequestException) as exc:
            log.warning("cannot read the task's output", extra={"error": _api_message(exc)})
            return live
        output = _Capture(live.cap, None)
        frames = list(_frames(body))
        streams = {kind: bytearray() for kind in delivered}
        for kind, data in frames:
            output.feed(kind, data)
            if kind in streams:
                streams[kind] += data
        skip: dict[int, int] = {}
        for kind, (count, tail) in delivered.items():
            skip[kind] = _resume_at(bytes(streams[kind]), count, tail)
            if skip[kind] != count:
                log.warning(
                    "Podman's live log stream skipped output; the result has all of it",
                    extra={"container": container_id[:12], "stream": kind},
                )
        for kind, data in frames:
            if kind not in skip:
                continue
            drop = min(skip[kind], len(data))
            skip[kind] -= drop
            if drop < len(data):
                live.feed(kind, data[drop:])
        return output

    async def _logs(self, container_id: str) -> bytes:
        response = await self._call(
            self.client.api.get,
            f"/containers/{container_id}/logs",
            params={"stdout": True, "stderr": True},
        )
        response.raise_for_status()
        return bytes(response.content)

    async def _oom_error(self, container_id: str, request: ExecutionRequest) -> str:
        with contextlib.suppress(APIError, requests.RequestException, KeyError, TypeError):
            container = await self._call(self.client.containers.get, container_id)
            if container.attrs["State"].get("OOMKilled"):
                memory = request.task.Resources.Memory or "its limit"
                return f"task ran out of memory ({memory}): raise Resources.Memory"
        return ""

    async def _stop(self, container_id: str) -> None:
        """SIGTERM, then SIGKILL after the grace period."""
        with contextlib.suppress(APIError, requests.RequestException):
            await self._call(
                self.client.api.post,
                f"/containers/{container_id}/stop",
                params={"timeout": int(self.stop_grace)},
                timeout=self.stop_grace * 1.5 + 5,
            )

    async def _remove(self, container_id: str, stop: bool) -> None:
        """Stops (with grace) when asked, then removes; gone already is fine."""
        if stop:
            await self._stop(container_id)
        try:
            response = await self._call(
                self.client.api.delete,
                f"/containers/{container_id}",
                params={"force": True, "v": True, "timeout": 0},  # kill what still runs
            )
            if response.status_code not in (200, 204, 404):
                log.warning(
                    "cannot remove container",
                    extra={"container": container_id, "error": response.text.strip()},
                )
        except (APIError, requests.RequestException, ExecutorError) as exc:
            log.warning(
                "cannot remove container",
                extra={"container": container_id, "error": _api_message(exc)},
            )

    # -- after a restart ----------------------------------------------------------------
    async def reconcile(
        self, node_id: str, unfinished: Collection[str]
    ) -> dict[str, ExecutionResult]:
        """Removes this node's containers; returns how each unfinished execution ended.

        A container that exited while the agent was down gives its real result; one still
        running lost its supervisor (its output, timeout, cancellation), so it is removed and
        its execution fails with that reason. Containers of other nodes are left alone.
        """
        self._node_id = node_id
        if self._client is None:  # cleaned up as soon as the service is reached
            self._cleanup_pending = True
            raise ExecutorError(self.unavailable)
        found: dict[str, ExecutionResult] = {}
        leftovers: list[str] = []
        for item in await self._node_containers():
            container_id = str(item.get("Id") or "")
            execution_id = str((item.get("Labels") or {}).get(LABEL_EXECUTION) or "")
            state = str(item.get("State") or "").lower()
            if execution_id in unfinished:
                if state in ("exited", "stopped"):
                    found[execution_id] = await self._recovered(container_id, item)
                else:
                    found[execution_id] = ExecutionResult(
                        exit_code=-1,
                        error=(
                            "compute node restarted while the task was running: its "
                            f"container ({state or 'unknown state'}) was removed"
                        ),
                        details={LOST_DETAIL: "node restarted"},  # may run again here
                    )
            log.info(
                "removing a container left from before the restart",
                extra={"container": container_id[:12], "execution_id": execution_id},
            )
            leftovers.append(container_id)
        # Killed, not stopped with grace: nothing supervises them any more, and the node
        # should not wait a grace period per container before it takes new work.
        await asyncio.gather(*(self._remove(c, stop=False) for c in leftovers))
        return found

    async def _node_containers(self) -> list[dict[str, Any]]:
        response = await self._call(
            self.client.api.get,
            "/containers/json",
            params={"all": True, "filters": f'{{"label":["{LABEL_NODE}={self._node_id}"]}}'},
        )
        response.raise_for_status()
        return list(response.json() or [])

    async def _remove_leftovers(self) -> None:
        """This node's containers from before the service was reached (their executions
        were already failed), except those of executions running now."""
        for item in await self._node_containers():
            execution_id = str((item.get("Labels") or {}).get(LABEL_EXECUTION) or "")
            if execution_id not in self._running:
                await self._remove(str(item.get("Id") or ""), stop=False)

    async def _recovered(self, container_id: str, item: dict[str, Any]) -> ExecutionResult:
        capture = _Capture(self.output_cap, None)
        with contextlib.suppress(APIError, requests.RequestException):
            for kind, data in _frames(await self._logs(container_id)):
                capture.feed(kind, data)
        stdout, stdout_truncated = capture.text(STDOUT)
        stderr, stderr_truncated = capture.text(STDERR)
        return ExecutionResult(
            exit_code=int(item.get("ExitCode") or 0),
            stdout=stdout,
            stdout_truncated=stdout_truncated,
            stderr=stderr,
            stderr_truncated=stderr_truncated,
            details={"Recovered": "the task ended while the compute node was restarting"},
        )

    async def close(self) -> None:
        if self._removals:
            await asyncio.wait(self._removals, timeout=30)
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()
        self._pool.shutdown(wait=False, cancel_futures=True)


def _limits_note(wanted: dict[str, str], host: HostLimits) -> str:
    """The execution's `Limits` detail: what was asked and whether it holds."""
    if not wanted:
        return ""
    applied = [v for k, v in wanted.items() if k in host.enforced]
    ignored = [v for k, v in wanted.items() if k not in host.enforced]
    parts = []
    if applied:
        parts.append("enforced: " + ", ".join(applied))
    if ignored:
        parts.append(f"not enforced on this node ({host.reason}): " + ", ".join(ignored))
    return "; ".join(parts)


def _create_error(exc: APIError, args: dict[str, Any]) -> str:
    message = _api_message(exc)
    if "permission denied" in message.lower() or "no such file" in message.lower():
        return (
            f"Podman cannot create the task's container ({message}): the Podman service user "
            "must be able to reach every input and result directory; keep [node] data_dir "
            "and allowed local paths readable by it"
        )
    return f"Podman cannot create the task's container: {message}"


def _start_error(exc: APIError, request: ExecutionRequest) -> str:
    message = _api_message(exc)
    lowered = message.lower()
    if "executable file not found" in lowered or "no such file or directory" in lowered:
        return (
            f"the task's command cannot start ({message}): check Entrypoint and Parameters "
            "name a program that exists in the image"
        )
    if "session keyring" in lowered:
        return (
            f"the task's container cannot start ({message}): the kernel refuses keyctl here, "
            "as inside systemd-nspawn or LXC; allow it there (systemd-nspawn "
            "--system-call-filter=@keyring) or set keyring = false under [containers] in the "
            "Podman service user's containers.conf"
        )
    if "permission denied" in lowered:
        return (
            f"the task's container cannot start ({message}): the Podman service user must be "
            "able to read every input and result directory"
        )
    return f"the task's container cannot start: {message}"


def _ignore_result(future: asyncio.Future[Any]) -> None:
    """Retrieve a worker's outcome so a late error is not reported as never retrieved."""
    if not future.cancelled():
        future.exception()


async def _uncancellable(work: Any) -> None:
    """Runs cleanup to its end even when the caller is cancelled meanwhile, then re-raises."""
    task = asyncio.ensure_future(work)
    cancelled = False
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError


__all__ = [
    "LABEL_EXECUTION",
    "LABEL_JOB",
    "LABEL_NODE",
    "DockerSpec",
    "HostLimits",
    "PodmanExecutor",
    "connect",
    "container_name",
    "default_socket",
    "parse_spec",
    "socket_path",
]
