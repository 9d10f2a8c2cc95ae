"""The wasm engine: runs WASI modules in-process with wasmer-sdk, sandboxed.

wasmer-sdk 0.5 lets the Python side touch only `/workspace` of a sandbox; the one way it
shows host directories to a guest is a *local package*: a directory whose wasmer.toml
`[fs]` table maps guest paths to host paths. So a task with inputs or result paths runs
from a throwaway package in its workdir, whose guest root is a copy-on-write view of a
directory of hard links (the read-only inputs) with result directories (and read-write
inputs) mounted read-write on top; results land in their host directories directly.
A task with nothing to mount (the hello-world case) skips all of that and runs a package
loaded from the module's bytes, cached by sha256: a few milliseconds per run.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import posixpath
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from edge.lazy import lazy_module
from edge.lru import LRU
from edge.models import InputSource, Task
from edge.workspace import write_held

from .base import (
    STDERR,
    STDOUT,
    ExecutionRequest,
    ExecutionResult,
    ExecutorError,
    LogSink,
    MountedInput,
)

if TYPE_CHECKING:
    import wasmer_sdk
else:  # loaded by the node's first wasm task (whether it loads here is tried at start)
    wasmer_sdk = lazy_module("wasmer_sdk")

log = logging.getLogger("bacedge.executors.wasm")

WORKSPACE = "/workspace"  # the sandbox's own in-memory directory and the guest's cwd
DEFAULT_ENTRYPOINT = "_start"
_DRAIN_AFTER_EXIT = 2.0  # a finished guest's pipes reach EOF at once; this only bounds a bug
_DRAIN_AFTER_KILL = 0.05  # a killed guest's pipes never reach EOF (wasmer-sdk 0.5)
_FIX_MODULE = "build it for WASI (e.g. --target wasm32-wasip1) and check the EntryModule input"


# -- job spec ---------------------------------------------------------------------------


@dataclass(frozen=True)
class WasmSpec:
    """The wasm engine's Params, checked."""

    entry_module: str  # guest path, absolute
    entry_alias: str  # EntryModule as written, to match an input's Alias
    entrypoint: str = DEFAULT_ENTRYPOINT
    parameters: list[str] = field(default_factory=list)
    legacy_input: InputSource | None = None  # EntryModule given as an input-source object


def guest_path(path: str) -> str:
    """An absolute, normalised guest path; relative paths are taken from the root."""
    return posixpath.normpath("/" + path.strip().lstrip("/"))


def _under(path: str, top: str) -> bool:
    return path == top or path.startswith(top.rstrip("/") + "/")


def parse_spec(task: Task) -> WasmSpec:
    """The task's wasm Params, or ExecutorError saying which one is wrong and how to fix it."""
    engine = task.Engine
    raw = engine.param("EntryModule")
    legacy: InputSource | None = None
    if isinstance(raw, dict):
        try:
            legacy = InputSource.model_validate(raw)
        except ValidationError as exc:
            raise ExecutorError(
                f"wasm EntryModule object is not an input source ({exc.error_count()} errors): "
                "set EntryModule to the module's path, e.g. /main.wasm"
            ) from None
        raw = legacy.Target or legacy.Alias or "main.wasm"
    if not isinstance(raw, str) or not raw.strip():
        raise ExecutorError(
            "wasm task has no EntryModule: set Engine.Params.EntryModule to the path of the "
            "module's input source, e.g. /main.wasm"
        )
    entrypoint = engine.param("Entrypoint") or DEFAULT_ENTRYPOINT
    if not isinstance(entrypoint, str):
        raise ExecutorError(
            f"wasm Entrypoint {entrypoint!r} is not a function name: set it to e.g. _start"
        )
    parameters = engine.param("Parameters") or []
    if not isinstance(parameters, list) or not all(
        isinstance(p, (str, int, float)) and not isinstance(p, bool) for p in parameters
    ):
        raise ExecutorError(
            'wasm Parameters must be a list of strings: write them as e.g. ["--n", "3"]'
        )
    imports = engine.param("ImportModules") or []
    if imports:
        raise ExecutorError(
            "wasm ImportModules are not supported on this node: link the modules into the "
            "entry module (e.g. with wasm-merge) or drop ImportModules"
        )
    return WasmSpec(
        entry_module=guest_path(raw),
        entry_alias=raw.strip(),
        entrypoint=entrypoint,
        parameters=[str(p) for p in parameters],
        legacy_input=legacy,
    )


def entry_module_input(task: Task) -> InputSource | None:
    """The input source carried inside a legacy object-form EntryModule, for the node to
    prepare along with the task's other inputs (Target defaults to /<Alias or main.wasm>)."""
    raw = task.Engine.param("EntryModule")
    if not isinstance(raw, dict):
        return None
    try:
        source = InputSource.model_validate(raw)
    except ValidationError:
        return None
    if not source.Target:
        source = source.model_copy(update={"Target": guest_path(source.Alias or "main.wasm")})
    return source


def _alias_matches(spec: WasmSpec, source: InputSource) -> bool:
    alias = source.Alias.strip()
    return bool(alias) and alias in (spec.entry_alias, spec.entry_alias.lstrip("/"))


def _matches_source(spec: WasmSpec, source: InputSource) -> bool:
    if _alias_matches(spec, source):
        return True
    return bool(source.Target) and _under(spec.entry_module, guest_path(source.Target))


def _resolve_module(spec: WasmSpec, request: ExecutionRequest) -> tuple[Path, str, bytes | None]:
    """The module file on the host, the input target it came from, and its bytes when the
    input is held in memory (a small inline module: never written to disk)."""
    wanted = spec.entry_module
    aliased = {
        guest_path(s.Target)
        for s in request.task.InputSources
        if s.Target and _alias_matches(spec, s)
    }
    candidates: list[tuple[Path, str, Path]] = []
    for mounted in request.inputs:
        target = guest_path(mounted.target)
        if _under(wanted, target):
            relative = posixpath.relpath(wanted, target)
            if mounted.content is not None:  # one file: the module is that file or nothing
                if relative == ".":
                    return mounted.host_path, target, mounted.content
                continue
            path = mounted.host_path if relative == "." else mounted.host_path / relative
            candidates.append((path, target, mounted.host_path))
        elif any(_under(target, alias) for alias in aliased):
            if mounted.content is not None:
                return mounted.host_path, target, mounted.content
            candidates.append((mounted.host_path, target, mounted.host_path))
    for path, target, top in candidates:
        if not _inside(path, top):
            continue  # a symlink out of the input: never read what the input does not hold
        if path.is_file():
            return path, target, None
        if path.is_dir():
            found = _single_module_in(path)
            if found is not None:
                return found, target, None
    targets = ", ".join(sorted(guest_path(m.target) for m in request.inputs)) or "none"
    if candidates:
        raise ExecutorError(
            f"wasm EntryModule {spec.entry_alias} is not a file in its input source: "
            "point EntryModule at the .wasm file itself, e.g. /inputs/main.wasm"
        )
    raise ExecutorError(
        f"wasm EntryModule {spec.entry_alias} matches no input of the task (inputs at: "
        f"{targets}): add an InputSource whose Target is {wanted}"
    )


def _inside(path: Path, top: Path) -> bool:
    return path.resolve().is_relative_to(top.resolve())


def _plain_files(directory: Path) -> Iterator[tuple[Path, str]]:
    """(path, path relative to `directory`) of its regular files; symlinks are skipped, as
    they could point out of an allowed input (and wasmer would not follow them anyway)."""
    for top, dirs, names in os.walk(directory):
        dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(top, d))]
        for name in names:
            path = Path(top) / name
            if not path.is_symlink() and path.is_file():
                yield path, os.path.relpath(path, directory)


def _single_module_in(directory: Path) -> Path | None:
    """A directory input holding one module (an unpacked inline tarball) stands for it."""
    files = [p for p, _ in _plain_files(directory)]
    modules = [p for p in files if p.suffix == ".wasm"]
    if len(modules) == 1:
        return modules[0]
    return files[0] if len(files) == 1 else None


# -- wasm binary: exports, and renaming one to _start --------------------------------------


def _leb_u32(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data) or shift > 28:
            raise ValueError("truncated or oversized LEB128 number")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def _enc_u32(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _sections(data: bytes) -> Iterator[tuple[int, int, int, int]]:
    """(id, header start, payload start, payload end) of each section of a core module."""
    if data[:4] != b"\0asm" or data[4:8] != b"\x01\0\0\0":
        raise ValueError("not a WebAssembly core module")
    pos = 8
    while pos < len(data):
        header = pos
        section_id = data[pos]
        size, pos = _leb_u32(data, pos + 1)
        if pos + size > len(data):
            raise ValueError("section runs past the end of the module")
        yield section_id, header, pos, pos + size
        pos += size


def _exports(data: bytes, start: int) -> list[tuple[str, int, int]]:
    count, pos = _leb_u32(data, start)
    out = []
    for _ in range(count):
        length, pos = _leb_u32(data, pos)
        name = data[pos : pos + length].decode("utf-8")
        kind = data[pos + length]
        index, pos = _leb_u32(data, pos + length + 1)
        out.append((name, kind, index))
    return out


def exported_functions(data: bytes) -> list[str]:
    """The module's exported function names (empty when it cannot be parsed)."""
    try:
        for section_id, _, start, _ in _sections(data):
            if section_id == 7:
                return [name for name, kind, _ in _exports(data, start) if kind == 0]
    except (ValueError, IndexError, UnicodeDecodeError):
        pass
    return []


def with_entrypoint(data: bytes, entrypoint: str) -> bytes:
    """The module with function `entrypoint` exported as `_start` too (wasmer runs `_start`).

    Raises KeyError when the module exports no such function.
    """
    for section_id, header, start, end in _sections(data):
        if section_id != 7:
            continue
        exports = _exports(data, start)
        index = next((i for n, k, i in exports if n == entrypoint and k == 0), None)
        if index is None:
            break
        kept = [e for e in exports if e[0] != DEFAULT_ENTRYPOINT]
        kept.append((DEFAULT_ENTRYPOINT, 0, index))
        payload = bytearray(_enc_u32(len(kept)))
        for name, kind, idx in kept:
            raw = name.encode()
            payload += _enc_u32(len(raw)) + raw + bytes([kind]) + _enc_u32(idx)
        return data[:header] + b"\x07" + _enc_u32(len(payload)) + bytes(payload) + data[end:]
    raise KeyError(entrypoint)


def _prepare_module(data: bytes, spec: WasmSpec) -> bytes:
    if spec.entrypoint == DEFAULT_ENTRYPOINT:
        return data
    try:
        return with_entrypoint(data, spec.entrypoint)
    except KeyError:
        pass
    except (ValueError, IndexError, UnicodeDecodeError) as exc:
        raise ExecutorError(
            f"wasm EntryModule {spec.entry_alias} is not a valid WebAssembly module ({exc}): "
            f"{_FIX_MODULE}"
        ) from None
    raise ExecutorError(_no_entrypoint(spec, data))


def _no_entrypoint(spec: WasmSpec, data: bytes) -> str:
    names = ", ".join(exported_functions(data)) or "none"
    return (
        f"wasm EntryModule {spec.entry_alias} exports no function {spec.entrypoint!r} "
        f"(it exports: {names}): set Engine.Params.Entrypoint to one of them"
    )


def _one_line(text: str) -> str:
    return " ".join(text.split())


# -- host side of the guest filesystem ---------------------------------------------------


def _toml_string(text: str) -> str:
    out = ['"']
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def _link_or_copy(source: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, dest, follow_symlinks=False)
    except OSError:  # another filesystem, or links not allowed: pay for a copy
        shutil.copy2(source, dest, follow_symlinks=False)


def _link_tree(source: Path, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for path, relative in _plain_files(source):
        _link_or_copy(path, dest / relative)


def _read_tree(source: Path, target: str) -> dict[str, bytes]:
    if source.is_file():
        return {target: source.read_bytes()}
    return {
        posixpath.normpath(posixpath.join(target, relative)): path.read_bytes()
        for path, relative in _plain_files(source)
    }


@dataclass
class _Layout:
    """How one execution's inputs and results appear in the guest."""

    package_dir: Path | None = None  # a local package, when anything is mounted
    workspace_files: dict[str, bytes] = field(default_factory=dict)
    workspace_results: list[tuple[str, Path]] = field(default_factory=list)


def _build_layout(
    request: ExecutionRequest,
    module_target: str,
    module: bytes | None,
    module_path: Path,
    package_dir: Path,
) -> _Layout:
    """Blocking (links, copies, reads): runs in a thread. `module` is set when rewritten;
    `package_dir` is an empty directory for the local package, if one is needed. Inputs
    held in memory are written first: the layout links and reads files."""
    layout = _Layout()
    root_links: list[tuple[MountedInput, str]] = []
    mounts: dict[str, Path] = {}
    for mounted in write_held(request.inputs):
        target = guest_path(mounted.target)
        if _under(target, WORKSPACE):
            layout.workspace_files.update(_read_tree(mounted.host_path, target))
        elif mounted.read_write and mounted.host_path.is_dir() and target != "/":
            mounts[target] = mounted.host_path.resolve()
        else:
            root_links.append((mounted, target))
    for result in request.results:
        target = guest_path(result.path)
        result.host_dir.mkdir(parents=True, exist_ok=True)
        if _under(target, WORKSPACE):
            layout.workspace_results.append((target, result.host_dir))
        elif target == "/":
            raise ExecutorError(
                f"ResultPath {result.name} is the guest root: set its Path to a directory "
                "such as /outputs"
            )
        else:
            mounts[target] = result.host_dir.resolve()
    if not mounts and all(t == module_target for _, t in root_links):
        return layout  # only the module itself: the cached in-memory package runs it
    layout.package_dir = package_dir
    root = package_dir / "root"
    root.mkdir()
    for mounted, target in root_links:
        dest = root / target.lstrip("/")
        if mounted.host_path.is_dir():
            _link_tree(mounted.host_path, dest)
        elif mounted.host_path.exists():
            _link_or_copy(mounted.host_path, dest)
    if module is not None:
        module_path = package_dir / "module.wasm"
        module_path.write_bytes(module)
    fs_lines = [f"{_toml_string('/')} = {_toml_string(str(root))}"]
    for target, host in sorted(mounts.items()):
        fs_lines.append(f"{_toml_string(target)} = {_toml_string(str(host))}")
    (package_dir / "wasmer.toml").write_text(
        "[package]\n"
        'name = "bacedge/task"\n'
        'version = "0.1.0"\n'
        'entrypoint = "main"\n\n'
        "[fs]\n" + "\n".join(fs_lines) + "\n\n"
        "[[module]]\n"
        'name = "main"\n'
        f"source = {_toml_string(str(module_path.resolve()))}\n"
        'abi = "wasi"\n\n'
        "[[command]]\n"
        'name = "main"\n'
        'module = "main"\n'
    )
    return layout


# -- the executor ------------------------------------------------------------------------


def default_cache_dir() -> Path:
    """Where wasmer keeps compiled modules between runs (it would use ./.wasmer otherwise)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "bacedge" / "wasmer"


class WasmExecutor:
    """Engine "wasm": Bacalhau's wasm Params (EntryModule, Entrypoint, Parameters)."""

    name = "wasm"
    holds_inline = True

    def __init__(self, cache_dir: Path | None = None, package_cache_size: int = 16) -> None:
        self.cache_dir = cache_dir or default_cache_dir()
        self._wasmer: wasmer_sdk.Wasmer | None = None
        self._packages: LRU[str, wasmer_sdk.Package] = LRU(package_cache_size)

    def problems(self, task: Task) -> list[str]:
        try:
            spec = parse_spec(task)
        except ExecutorError as exc:
            return [str(exc)]
        if spec.legacy_input is None and not any(
            _matches_source(spec, s) for s in task.InputSources
        ):
            return [
                f"wasm EntryModule {spec.entry_alias} matches no input source: add an "
                f"InputSource whose Target is {spec.entry_module}"
            ]
        return []

    def _client(self) -> wasmer_sdk.Wasmer:
        if self._wasmer is None:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            self._wasmer = wasmer_sdk.Wasmer(cache_root=self.cache_dir)
        return self._wasmer

    async def _package(self, data: bytes, spec: WasmSpec) -> tuple[wasmer_sdk.Package, str]:
        """The module loaded (parsed and validated) once per content, LRU-cached."""
        digest = hashlib.sha256(data).hexdigest()
        package = self._packages.get(digest)
        if package is not None:
            return package, digest
        try:
            package = await self._client().packages.load(data)
        except wasmer_sdk.WasmerError as exc:
            if "_start" in str(exc) and spec.entrypoint == DEFAULT_ENTRYPOINT:
                raise ExecutorError(_no_entrypoint(spec, data)) from None
            raise ExecutorError(
                f"wasm EntryModule {spec.entry_alias} is not a valid WASI module "
                f"({_one_line(str(exc))}): {_FIX_MODULE}"
            ) from None
        self._packages.put(digest, package)
        return package, digest

    async def run(self, request: ExecutionRequest, sink: LogSink) -> ExecutionResult:
        spec = parse_spec(request.task)
        module_path, module_target, original = _resolve_module(spec, request)
        if original is None:
            try:
                original = module_path.read_bytes()
            except OSError as exc:
                raise ExecutorError(
                    f"wasm EntryModule {spec.entry_alias} cannot be read ({exc.strerror}): "
                    "check the input source that provides it"
                ) from None
        data = _prepare_module(original, spec)
        package, digest = await self._package(data, spec)
        if not request.results and all(
            guest_path(m.target) == module_target for m in request.inputs
        ):  # nothing to mount: the cached package runs as is
            return await self._run(request, sink, spec, package, _Layout(), digest)
        request.workdir.mkdir(parents=True, exist_ok=True)
        package_dir = Path(tempfile.mkdtemp(prefix=".wasm-", dir=request.workdir)).resolve()
        build = asyncio.ensure_future(
            asyncio.to_thread(
                _build_layout,
                request,
                module_target,
                None if data is original else data,
                module_path,
                package_dir,
            )
        )
        try:
            layout = await asyncio.shield(build)
            return await self._run(request, sink, spec, package, layout, digest)
        finally:
            if not build.done():  # cancelled meanwhile: let the thread finish before cleaning
                await asyncio.wait([build])
            await asyncio.to_thread(shutil.rmtree, package_dir, True)

    async def _run(
        self,
        request: ExecutionRequest,
        sink: LogSink,
        spec: WasmSpec,
        package: wasmer_sdk.Package,
        layout: _Layout,
        digest: str,
    ) -> ExecutionResult:
        wasmer = self._client()
        network = (
            wasmer_sdk.NetworkPolicy.HOST
            if request.allow_network
            else wasmer_sdk.NetworkPolicy.DISABLED
        )
        try:
            if layout.package_dir is not None:
                package = await wasmer.packages.load(layout.package_dir)
            sandbox = await wasmer.sandboxes.create(
                packages=[package], files=layout.workspace_files, network=network
            )
        except wasmer_sdk.WasmerError as exc:
            raise ExecutorError(
                f"cannot prepare wasm module {spec.entry_alias}: {_one_line(str(exc))}"
            ) from None
        timeout = request.timeout if request.timeout and request.timeout > 0 else None
        process: wasmer_sdk.Process | None = None
        pumps: list[asyncio.Task[None]] = []
        try:
            for target, _ in layout.workspace_results:
                with contextlib.suppress(wasmer_sdk.WasmerError):  # it may exist already
                    await sandbox.fs.mkdir(target, recursive=True)
            try:
                process = await sandbox.command(package, spec.parameters, env=request.env).spawn(
                    timeout=timeout, output_bytes=request.output_cap
                )
            except wasmer_sdk.WasmerError as exc:
                raise ExecutorError(
                    f"wasm module {spec.entry_alias} cannot start ({_one_line(str(exc))}): "
                    f"{_FIX_MODULE}"
                ) from None
            pumps = [
                asyncio.create_task(_pump(stream, kind, sink))
                for stream, kind in ((process.stdout, STDOUT), (process.stderr, STDERR))
                if stream is not None
            ]
            output = await process.wait()
            process = None
            exited = output.reason is wasmer_sdk.ExitReason.EXITED
            if pumps:
                grace = _DRAIN_AFTER_EXIT if exited else _DRAIN_AFTER_KILL
                await asyncio.wait(pumps, timeout=grace)
            for target, host_dir in layout.workspace_results:
                await _copy_out(sandbox.fs, target, host_dir)
        finally:
            if process is not None:  # cancelled (or failed) while the guest ran
                with contextlib.suppress(Exception):
                    await process.kill()
            for pump in pumps:
                pump.cancel()
            with contextlib.suppress(Exception):
                await sandbox.close()
        return ExecutionResult(
            exit_code=output.exit_code,
            stdout=output.stdout.bytes.decode("utf-8", "replace"),
            stdout_truncated=output.stdout.truncated,
            stderr=output.stderr.bytes.decode("utf-8", "replace"),
            stderr_truncated=output.stderr.truncated,
            error=_exit_error(output.reason, timeout),
            details={"module_sha256": digest},
        )

    async def close(self) -> None:
        self._packages.clear()
        wasmer, self._wasmer = self._wasmer, None
        if wasmer is not None:
            await wasmer.close()


def _exit_error(reason: wasmer_sdk.ExitReason, timeout: float | None) -> str:
    if reason is wasmer_sdk.ExitReason.EXITED:
        return ""
    if reason is wasmer_sdk.ExitReason.TIMEOUT:
        return f"execution timed out after {timeout or 0:g}s"
    if reason is wasmer_sdk.ExitReason.TERMINATED:
        return "execution was terminated"
    return "execution ended for an unknown reason"


async def _pump(stream: wasmer_sdk.ReadableBytes, kind: int, sink: LogSink) -> None:
    """Forwards a live stream; keeps reading if the sink fails, since an unread pipe
    would stall the guest."""
    failed = False
    async for chunk in stream:
        if failed:
            continue
        try:
            sink(kind, chunk)
        except Exception:
            log.exception("log sink failed; dropping the rest of this stream")
            failed = True


async def _copy_out(fs: wasmer_sdk.SandboxFileSystem, source: str, dest: Path) -> None:
    """Copies a /workspace directory of the sandbox to the host, recursively."""
    dest.mkdir(parents=True, exist_ok=True)
    for entry in await fs.read_dir(source):
        if entry.name in (".", ".."):
            continue
        guest = posixpath.join(source, entry.name)
        if entry.kind == "directory":
            await _copy_out(fs, guest, dest / entry.name)
        else:
            data = await fs.read(guest)
            await asyncio.to_thread((dest / entry.name).write_bytes, data)
