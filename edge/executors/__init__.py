"""Execution engines, built by name from the node's configuration.

Engines are imported only when enabled, and one whose library cannot load (wasmer-sdk
needs glibc >= 2.35; podman-py may be absent) is skipped with a warning, so a node still
starts with the engines it can run. No engine list means every engine that works on this
host; a setting that configures an engine (docker's Podman socket) enables it.
"""

from __future__ import annotations

import functools
import importlib
import logging
import subprocess
import sys
from collections.abc import Collection, Mapping
from typing import Any, Protocol, runtime_checkable

from edge.models import Task

from .base import (
    STDERR,
    STDOUT,
    ExecutionRequest,
    ExecutionResult,
    Executor,
    ExecutorError,
    LogSink,
    MountedInput,
    ResultDir,
)

log = logging.getLogger("bacedge.executors")

ENGINES: dict[str, tuple[str, str]] = {
    "noop": ("edge.executors.noop", "NoopExecutor"),
    "wasm": ("edge.executors.wasm", "WasmExecutor"),
    "docker": ("edge.executors.podman", "PodmanExecutor"),
}
"""Engine type -> (module, class). Keys are the names nodes advertise."""

ENGINE_ALIASES = {"podman": "docker"}

ENABLING_SETTINGS = {"docker": "socket"}
"""Engine -> its setting that, when given, enables the engine (`--podman-socket PATH`)."""


@runtime_checkable
class ServiceExecutor(Protocol):
    """An engine backed by a service outside the agent (Podman): it must be reached when the
    node starts, it adds facts to the node's inventory (images, enforceable limits), and its
    tasks can outlive an agent crash, so a restarted agent reconciles them."""

    async def open(self) -> None:
        """Connect if the service is there; if not, `problems()` refuses tasks with the
        reason and the fix until `refresh` reaches it."""
        ...

    async def refresh(self) -> bool:
        """Reconnect if needed and re-read the service's facts; True when they changed."""
        ...

    async def prepare_bid(self, task: Task) -> None:
        """Bring what `problems()` relies on up to date for this task."""
        ...

    def images(self) -> list[str]: ...

    def limits(self) -> dict[str, str]: ...

    async def reconcile(
        self, node_id: str, unfinished: Collection[str]
    ) -> dict[str, ExecutionResult]:
        """Clean up this node's leftovers; the results of `unfinished` executions found."""
        ...


def canonical_engine(name: str) -> str:
    """The registry name for an Engine.Type as written in a job ("Podman" -> "docker")."""
    lowered = name.strip().lower()
    return ENGINE_ALIASES.get(lowered, lowered)


def _service_answers(name: str, settings: Mapping[str, Any]) -> bool:
    """Whether an engine backed by a service finds it at its default place (docker: this
    user's Podman socket exists and answers)."""
    if name != "docker":
        return True
    try:
        from .podman import connect  # podman-py may be absent
    except ImportError:
        return False
    try:
        connect(str(settings.get("socket") or "")).close()
    except Exception:  # absent, not ours, not answering: auto-detection says no
        return False
    return True


def enabled_engines(
    names: Collection[str], settings: Mapping[str, Mapping[str, Any]] | None = None
) -> list[str]:
    """The engines to build: `names` as configured, or when empty every engine that works
    here (noop, wasm when its library loads, docker when Podman answers at its default
    socket); either way plus each engine whose enabling setting is given."""
    settings = settings or {}
    wanted = [canonical_engine(n) for n in names]
    if not wanted:
        wanted = [n for n in ENGINES if n in ENABLING_SETTINGS or _loads(n)]
        wanted = [n for n in wanted if _service_answers(n, settings.get(n, {}))]
    for name, key in ENABLING_SETTINGS.items():
        if settings.get(name, {}).get(key) and name not in wanted:
            wanted.append(name)
    return wanted


LIBRARIES = {"wasm": "wasmer_sdk"}
"""Engine -> the library its module loads lazily, on its first task (edge/lazy.py); whether
that library loads on this host is tried in a child process, so an idle node never holds it
(wasmer-sdk is about 30 MiB of the agent's memory)."""


def _loads(name: str) -> bool:
    try:
        importlib.import_module(ENGINES[name][0])
    except (ImportError, OSError):
        return False
    return name not in LIBRARIES or library_loads(LIBRARIES[name]) is None


@functools.cache  # asked when choosing engines and again when building them: one child
def library_loads(library: str) -> str | None:
    """None when `library` imports in a fresh interpreter; else why not, in one line."""
    try:
        probe = subprocess.run(
            [sys.executable, "-c", f"import {library}"],
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{library} could not be tried: {exc}"
    if probe.returncode == 0:
        return None
    lines = [line for line in probe.stderr.strip().splitlines() if line.strip()]
    return lines[-1] if lines else f"importing {library} exited {probe.returncode}"


def build_executors(
    names: list[str], settings: Mapping[str, Mapping[str, Any]] | None = None
) -> dict[str, Executor]:
    """The enabled engines by name (see `enabled_engines`: empty means every engine that
    works here); `settings[name]` are keyword arguments for its class.

    An unknown name is a configuration error (ValueError); an engine whose library is
    missing is left out with a warning.
    """
    executors: dict[str, Executor] = {}
    for raw in enabled_engines(names, settings):
        name = canonical_engine(raw)
        if name in executors:
            continue
        if name not in ENGINES:
            known = ", ".join(sorted(ENGINES))
            raise ValueError(f"unknown engine {raw!r}: supported are {known}")
        module_name, class_name = ENGINES[name]
        try:
            module = importlib.import_module(module_name)
            problem = library_loads(LIBRARIES[name]) if name in LIBRARIES else None
            if problem is not None:
                raise ImportError(problem)
        except (ImportError, OSError) as exc:
            log.warning(
                "engine %s is disabled: its library cannot be loaded (%s)",
                name,
                exc,
                extra={"engine": name},
            )
            continue
        factory = getattr(module, class_name)
        executors[name] = factory(**dict((settings or {}).get(name, {})))
    return executors


__all__ = [
    "ENGINES",
    "ENGINE_ALIASES",
    "STDERR",
    "STDOUT",
    "ExecutionRequest",
    "ExecutionResult",
    "Executor",
    "ExecutorError",
    "LogSink",
    "MountedInput",
    "ResultDir",
    "ServiceExecutor",
    "build_executors",
    "canonical_engine",
    "enabled_engines",
]
