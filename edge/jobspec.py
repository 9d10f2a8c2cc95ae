"""Job specs from YAML/JSON to a valid Job, or every problem with its field path.

Used by the API (400 with paths), `bacedge job validate` and the CLI; the same rules
everywhere because they live here once.
"""

from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from edge.models import (
    InputSource,
    Job,
    JobType,
    ResourceError,
    SpecConfig,
    Task,
    new_job_id,
)

ENGINES = ("docker", "podman", "wasm", "noop")
INPUT_TYPES = (
    "local",
    "localdirectory",
    "urldownload",
    "url",
    "s3",
    "s3presigned",
    "inline",
    "ipfs",
)
PUBLISHER_TYPES = ("", "noop", "local", "s3", "s3managed", "ipfs")
CONSTRAINT_OPERATORS = ("=", "==", "!=", "in", "notin", "exists", "!", "gt", "lt")

# Bounds every spec meets, whatever the orchestrator's config: beyond them a number is a
# mistake (or an attack), and taking it would overflow the store or wedge the scheduler.
MAX_INT = 2**31 - 1  # Count, Priority, timeouts (seconds: 68 years)
MAX_CPU = 100_000.0  # cores
MAX_BYTES = 2**60  # memory and disk: 1 EiB
MAX_GPU = 1024


@dataclass(frozen=True)
class SpecLimits:
    """The orchestrator's own bounds (`[orchestrator] max_count`, `max_timeout`); specs
    checked without an orchestrator (`bacedge job validate`) only meet the fixed ones."""

    max_count: int = MAX_INT
    max_timeout: int = MAX_INT
    source: str = ""  # how the limit is set, for the message ("[orchestrator] max_count")


class SpecError(Exception):
    """A job spec with problems; `problems` holds one `Path: message` string each."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


def parse_spec_text(text: str, source: str = "job spec") -> dict[str, Any]:
    """YAML or JSON text (JSON is YAML) to a dict, with the line of a syntax error."""
    import yaml  # here: a CLI command that reads no spec does not pay for loading PyYAML

    try:
        data = json.loads(text) if text.lstrip().startswith("{") else yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise SpecError(
            [f"{source}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"]
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError([f"{source}: invalid YAML{where}: {problem}"]) from None
    except RecursionError:
        raise SpecError([f"{source}: nested too deeply to be a job spec"]) from None
    if data is None:
        raise SpecError([f"{source}: empty, expected a job spec"])
    if not isinstance(data, dict):
        raise SpecError(
            [
                f"{source}: expected a job spec (a mapping with Name, Type, Tasks...), "
                f"found a {type(data).__name__}"
            ]
        )
    return unwrap_job(data)


def unwrap_job(data: dict[str, Any]) -> dict[str, Any]:
    """Accept `{Job: {...}}` (an API body or `bacalhau job describe` output) as well."""
    for key, value in data.items():
        if isinstance(key, str) and key.lower() == "job" and isinstance(value, dict):
            return value
    return data


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _pydantic_problems(exc: ValidationError, prefix: str = "") -> list[str]:
    problems = []
    for error in exc.errors():
        loc = tuple(p for p in error["loc"] if not str(p).startswith("function-"))
        where = _path(loc)
        if prefix:
            where = f"{prefix}.{where}" if where else prefix
        problems.append(f"{where or 'job'}: {error['msg']}")
    return problems


def load_job(data: dict[str, Any], limits: SpecLimits | None = None) -> Job:
    """Validate and normalise: raises SpecError listing every problem found."""
    try:
        job = Job.model_validate(data)
    except ValidationError as exc:
        raise SpecError(_pydantic_problems(exc)) from None
    for task in job.Tasks:
        upgrade_legacy_wasm(task)
    problems = job_problems(job, limits or SpecLimits())
    if problems:
        raise SpecError(problems)
    return normalise(job)


def validate_job_spec(data: dict[str, Any], limits: SpecLimits | None = None) -> list[str]:
    """Every problem of a spec as `Field.Path: message`; empty when it is valid."""
    try:
        load_job(unwrap_job(data), limits)
    except SpecError as exc:
        return exc.problems
    return []


def _num(value: float) -> str:
    if abs(value) < 1e15 and float(value).is_integer():
        return str(int(value))
    return f"{value:g}"


def _bound(
    where: str, value: float, low: float, high: float, unit: str = "", how: str = ""
) -> str | None:
    """`where: V is more than the limit of H unit (how)` when value is out of [low, high]."""
    unit = f" {unit}" if unit else ""
    if value < low:
        return f"{where}: must be {_num(low)}{unit} or more (got {_num(value)})"
    if value > high:
        limit = f"the limit of {_num(high)}{unit}" + (f" ({how})" if how else "")
        return f"{where}: {_num(value)} is more than {limit}"
    return None


def job_problems(job: Job, limits: SpecLimits | None = None) -> list[str]:
    limits = limits or SpecLimits()
    problems: list[str] = []
    how = f"{limits.source} max_count" if limits.source else ""
    bounds = [
        _bound("Count", job.Count, 0, limits.max_count, how=how),
        _bound("Priority", job.Priority, 0, MAX_INT),
    ]
    problems.extend(p for p in bounds if p)
    if job.Type in (JobType.OPS, JobType.DAEMON) and job.Count > 1:
        problems.append(
            f"Count: {job.Count} makes no sense for a{'n' if job.Type == JobType.OPS else ''} "
            f"{job.Type.value} job, which runs once on every matching node: "
            "leave Count out or set it to 1 (use Constraints to choose the nodes)"
        )
    if len(job.Tasks) != 1:
        problems.append(f"Tasks: a job has exactly one task (got {len(job.Tasks)})")
    for i, constraint in enumerate(job.Constraints):
        where = f"Constraints[{i}]"
        if not constraint.Key:
            problems.append(f"{where}.Key: required")
        if constraint.Operator.lower() not in CONSTRAINT_OPERATORS:
            problems.append(
                f"{where}.Operator: unknown operator {constraint.Operator!r}: "
                f"use one of {', '.join(CONSTRAINT_OPERATORS)}"
            )
    for i, task in enumerate(job.Tasks):
        problems.extend(task_problems(task, f"Tasks[{i}]", limits))
    return problems


def task_problems(task: Task, where: str, limits: SpecLimits | None = None) -> list[str]:
    limits = limits or SpecLimits()
    problems: list[str] = []
    engine = task.Engine.Type
    if not engine:
        problems.append(f"{where}.Engine.Type: required (one of {', '.join(ENGINES)})")
    elif engine not in ENGINES:
        problems.append(
            f"{where}.Engine.Type: unknown engine {engine!r}: use one of {', '.join(ENGINES)}"
        )
    elif engine in ("docker", "podman"):
        problems.extend(_docker_problems(task.Engine, f"{where}.Engine.Params"))
    elif engine == "wasm":
        problems.extend(_wasm_problems(task, f"{where}.Engine.Params"))
    if task.Publisher.Type not in PUBLISHER_TYPES:
        problems.append(
            f"{where}.Publisher.Type: unknown publisher {task.Publisher.Type!r}: "
            f"use one of {', '.join(t for t in PUBLISHER_TYPES if t)}"
        )
    problems.extend(_publisher_problems(task.Publisher, f"{where}.Publisher"))
    for j, source in enumerate(task.InputSources):
        problems.extend(_input_problems(source.Source, source.Target, f"{where}.InputSources[{j}]"))
    names: set[str] = set()
    for j, result in enumerate(task.ResultPaths):
        at = f"{where}.ResultPaths[{j}]"
        if not result.Name:
            problems.append(f"{at}.Name: required")
        elif result.Name in names:
            problems.append(f"{at}.Name: duplicate result name {result.Name!r}")
        names.add(result.Name)
        if not result.Path:
            problems.append(f"{at}.Path: required")
        elif not posixpath.isabs(result.Path):
            problems.append(f"{at}.Path: must be an absolute path (got {result.Path!r})")
    problems.extend(_resource_problems(task, where))
    how = f"{limits.source} max_timeout" if limits.source else ""
    for field in ("ExecutionTimeout", "QueueTimeout", "TotalTimeout"):
        value = getattr(task.Timeouts, field)
        if problem := _bound(
            f"{where}.Timeouts.{field}", value, 0, limits.max_timeout, "seconds", how
        ):
            problems.append(problem)
    return problems


def _resource_problems(task: Task, where: str) -> list[str]:
    try:
        need = task.Resources.parse()
    except ResourceError as exc:
        return [f"{where}.Resources: {exc}"]
    bounds = [
        _bound(f"{where}.Resources.CPU", need.CPU, 0, MAX_CPU, "cores"),
        _bound(f"{where}.Resources.Memory", need.Memory, 0, MAX_BYTES, "bytes (1 EiB)"),
        _bound(f"{where}.Resources.Disk", need.Disk, 0, MAX_BYTES, "bytes (1 EiB)"),
        _bound(f"{where}.Resources.GPU", need.GPU, 0, MAX_GPU),
    ]
    return [p for p in bounds if p]


def _string_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, (str, int, float)) for v in value)


def _docker_problems(engine: SpecConfig, at: str) -> list[str]:
    problems = []
    image = engine.param("Image")
    if not image or not isinstance(image, str):
        problems.append(f"{at}.Image: required (e.g. localhost/busybox:latest)")
    for name in ("Entrypoint", "Parameters", "EnvironmentVariables"):
        value = engine.param(name)
        if value is not None and not _string_list(value):
            problems.append(f"{at}.{name}: must be a list of strings")
    return problems


def _wasm_problems(task: Task, at: str) -> list[str]:
    problems = []
    entry = task.Engine.param("EntryModule")
    if entry is None or entry == "":
        problems.append(f"{at}.EntryModule: required (the module's path, e.g. main.wasm)")
    elif isinstance(entry, dict):
        try:
            legacy = InputSource.model_validate(entry)
        except ValidationError as exc:
            problems.extend(_pydantic_problems(exc, f"{at}.EntryModule"))
        else:
            target = legacy.Target or "/main.wasm"  # optional in the legacy form
            problems.extend(_input_problems(legacy.Source, target, f"{at}.EntryModule"))
    elif not isinstance(entry, str):
        problems.append(f"{at}.EntryModule: must be a path string or an input source")
    elif wasm_entry_input(task) is None:
        problems.append(
            f"{at}.EntryModule: no input source provides {entry!r}: add an InputSource "
            f"whose Target is '/{entry.lstrip('/')}'"
        )
    params = task.Engine.param("Parameters")
    if params is not None and not _string_list(params):
        problems.append(f"{at}.Parameters: must be a list of strings")
    return problems


def upgrade_legacy_wasm(task: Task) -> None:
    """Bacalhau's legacy wasm form gives EntryModule as an input-source object; Bacalhau
    rewrites it at submission, and so does this: the object joins the task's InputSources
    (Target defaults to /<Alias or main.wasm>) and EntryModule becomes its path. An object
    that is not a usable input source is left as it is, for `_wasm_problems` to report."""
    if task.Engine.Type != "wasm":
        return
    key = next((k for k in task.Engine.Params if k.lower() == "entrymodule"), None)
    raw = task.Engine.Params.get(key) if key is not None else None
    if key is None or not isinstance(raw, dict):
        return
    try:
        source = InputSource.model_validate(raw)
    except ValidationError:
        return
    target = source.Target or _free_target(task, source.Alias or "main.wasm")
    if _input_problems(source.Source, target, "EntryModule"):
        return
    task.InputSources.append(source.model_copy(update={"Target": target}))
    task.Engine.Params[key] = target


def _free_target(task: Task, name: str) -> str:
    used = {"/" + s.Target.strip("/") for s in task.InputSources}
    target, n = "/" + name.strip("/"), 1
    while target in used:
        target, n = f"/entry-module-{n}/{name.strip('/')}", n + 1
    return target


def wasm_entry_input(task: Task) -> int | None:
    """The index of the input source that holds the wasm EntryModule, if any."""
    entry = task.Engine.param("EntryModule")
    if not isinstance(entry, str) or not entry:
        return None
    wanted = "/" + entry.lstrip("/")
    for i, source in enumerate(task.InputSources):
        target = "/" + source.Target.lstrip("/") if source.Target else ""
        if target == wanted or (source.Alias and source.Alias == entry):
            return i
    for i, source in enumerate(task.InputSources):  # a directory that contains the module
        target = source.Target.rstrip("/")
        if target and wanted.startswith(target + "/"):
            return i
    return None


def _publisher_problems(publisher: SpecConfig, at: str) -> list[str]:
    """Bacalhau's s3 publisher needs a Bucket; Encoding is gzip or plain."""
    if publisher.Type != "s3":
        return []
    problems = []
    if not str(publisher.param("Bucket") or "").strip():
        problems.append(f"{at}.Params.Bucket: required for the s3 publisher")
    encoding = publisher.param("Encoding")
    if encoding is not None and str(encoding).strip().lower() not in ("gzip", "plain"):
        problems.append(f"{at}.Params.Encoding: {encoding!r} is not gzip or plain")
    return problems


def _input_problems(source: SpecConfig, target: str, at: str) -> list[str]:
    problems = []
    kind = source.Type
    if not kind:
        problems.append(f"{at}.Source.Type: required (one of {', '.join(INPUT_TYPES)})")
        return problems
    if kind not in INPUT_TYPES:
        problems.append(
            f"{at}.Source.Type: unknown input source type {kind!r}: "
            f"use one of local, urlDownload, s3, s3PreSigned, inline, ipfs"
        )
        return problems
    if not target:
        problems.append(f"{at}.Target: required (where the task sees the input, e.g. /inputs)")
    elif not posixpath.isabs(target):
        problems.append(f"{at}.Target: must be an absolute path (got {target!r})")
    required = {
        "local": "SourcePath",
        "localdirectory": "SourcePath",
        "urldownload": "URL",
        "url": "URL",
        "s3": "Bucket",
        "s3presigned": "PreSignedURL",
        "inline": "URL",
        "ipfs": "CID",
    }[kind]
    value = source.param(required)
    if not value:
        problems.append(f"{at}.Source.Params.{required}: required")
    elif kind in ("urldownload", "url") and not str(value).startswith(("http://", "https://")):
        problems.append(f"{at}.Source.Params.URL: must be an http:// or https:// URL")
    elif kind == "s3presigned" and not str(value).startswith(("http://", "https://")):
        problems.append(f"{at}.Source.Params.PreSignedURL: must be an http:// or https:// URL")
    elif kind == "inline" and not str(value).startswith("data:"):
        problems.append(f"{at}.Source.Params.URL: must be a data: URI")
    return problems


def normalise(job: Job) -> Job:
    """Fill what Bacalhau fills: ID-less jobs keep no ID here (the store assigns it)."""
    if job.Type in (JobType.BATCH, JobType.SERVICE) and job.Count == 0:
        job.Count = 1
    if not job.Namespace:
        job.Namespace = "default"
    for task in job.Tasks:
        if task.Engine.Type == "podman":
            task.Engine.Type = "docker"
        if not task.Name:
            task.Name = "main"
    return job


def assign_identity(job: Job) -> Job:
    if not job.ID:
        job.ID = new_job_id()
    if not job.Name:
        job.Name = job.ID
    return job
