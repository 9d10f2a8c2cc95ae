"""Job specs from YAML/JSON to a valid Job, or every problem with its field path.

Used by the API (400 with paths), `bacedge job validate` and the CLI; the same rules
everywhere because they live here once.
"""

from __future__ import annotations

import json
import posixpath
from typing import Any

import yaml
from pydantic import ValidationError

from edge.models import (
    Job,
    JobType,
    ResourceError,
    SpecConfig,
    Task,
    new_job_id,
)

ENGINES = ("docker", "podman", "wasm", "noop")
INPUT_TYPES = ("local", "localdirectory", "urldownload", "url", "s3", "inline", "ipfs")
PUBLISHER_TYPES = ("", "noop", "local", "s3", "s3managed", "ipfs")
CONSTRAINT_OPERATORS = ("=", "==", "!=", "in", "notin", "exists", "!", "gt", "lt")


class SpecError(Exception):
    """A job spec with problems; `problems` holds one `Path: message` string each."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


def parse_spec_text(text: str, source: str = "job spec") -> dict[str, Any]:
    """YAML or JSON text (JSON is YAML) to a dict, with the line of a syntax error."""
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


def load_job(data: dict[str, Any]) -> Job:
    """Validate and normalise: raises SpecError listing every problem found."""
    try:
        job = Job.model_validate(data)
    except ValidationError as exc:
        raise SpecError(_pydantic_problems(exc)) from None
    problems = job_problems(job)
    if problems:
        raise SpecError(problems)
    return normalise(job)


def validate_job_spec(data: dict[str, Any]) -> list[str]:
    """Every problem of a spec as `Field.Path: message`; empty when it is valid."""
    try:
        load_job(unwrap_job(data))
    except SpecError as exc:
        return exc.problems
    return []


def job_problems(job: Job) -> list[str]:
    problems: list[str] = []
    if job.Count < 0:
        problems.append("Count: must be 0 or more")
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
        problems.extend(task_problems(task, f"Tasks[{i}]"))
    return problems


def task_problems(task: Task, where: str) -> list[str]:
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
    for field in ("CPU", "Memory", "Disk", "GPU"):
        try:
            getattr(task.Resources.parse(), field)
        except ResourceError as exc:
            problems.append(f"{where}.Resources: {exc}")
            break
    for field in ("ExecutionTimeout", "QueueTimeout", "TotalTimeout"):
        if getattr(task.Timeouts, field) < 0:
            problems.append(f"{where}.Timeouts.{field}: must be 0 or more seconds")
    return problems


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
            from edge.models import InputSource

            legacy = InputSource.model_validate(entry)
        except ValidationError as exc:
            problems.extend(_pydantic_problems(exc, f"{at}.EntryModule"))
        else:
            problems.extend(_input_problems(legacy.Source, legacy.Target, f"{at}.EntryModule"))
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


def _input_problems(source: SpecConfig, target: str, at: str) -> list[str]:
    problems = []
    kind = source.Type
    if not kind:
        problems.append(f"{at}.Source.Type: required (one of {', '.join(INPUT_TYPES)})")
        return problems
    if kind not in INPUT_TYPES:
        problems.append(
            f"{at}.Source.Type: unknown input source type {kind!r}: "
            f"use one of local, urlDownload, s3, inline, ipfs"
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
        "inline": "URL",
        "ipfs": "CID",
    }[kind]
    value = source.param(required)
    if not value:
        problems.append(f"{at}.Source.Params.{required}: required")
    elif kind in ("urldownload", "url") and not str(value).startswith(("http://", "https://")):
        problems.append(f"{at}.Source.Params.URL: must be an http:// or https:// URL")
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
