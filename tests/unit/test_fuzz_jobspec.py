"""Property-based: whatever a client sends as a job spec, loading it either gives a Job or
raises SpecError with field paths; nothing else ever escapes (no TypeError, no
RecursionError, no pydantic internals)."""

from __future__ import annotations

import json
import os
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.jobspec import SpecError, load_job, parse_spec_text, unwrap_job

KEYS = [
    "Name", "name", "Type", "type", "Count", "count", "Priority", "Namespace", "Labels", "Meta",
    "Constraints", "Tasks", "tasks", "Engine", "Params", "Publisher", "InputSources", "Source",
    "Target", "Alias", "ResultPaths", "Path", "Resources", "CPU", "Memory", "Disk", "GPU",
    "Network", "Domains", "Timeouts", "ExecutionTimeout", "QueueTimeout", "TotalTimeout",
    "Image", "Entrypoint", "Parameters", "EntryModule", "Key", "Operator", "Values", "Env",
    "Bucket", "URL", "SourcePath", "ID", "State", "Version", "Job",
]  # fmt: skip
WORDS = [
    "batch", "ops", "daemon", "service", "docker", "wasm", "noop", "podman", "s3", "local",
    "urlDownload", "inline", "ipfs", "s3PreSigned", "s3managed", "Full", "none", "HTTP",
    "1Gb", "500m", "-1", "1e400", "NaN", "/in", "../x", "", "main", "in", "=", "data:,x",
]  # fmt: skip

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70) | st.sampled_from([0, 1, -1, 2**31, 10**8]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(WORDS),
    st.text(max_size=12),
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(st.sampled_from(KEYS), children, max_size=4),
    ),
    max_leaves=10,
)
# Specs shaped roughly like jobs, so generation reaches deep validation, not only the top.
engine = st.fixed_dictionaries(
    {"Type": st.sampled_from(WORDS) | scalars},
    optional={"Params": st.dictionaries(st.sampled_from(KEYS), values, max_size=5)},
)
source = st.fixed_dictionaries(
    {
        "Source": st.fixed_dictionaries(
            {"Type": st.sampled_from(WORDS)}, optional={"Params": values}
        )
    },
    optional={"Target": st.sampled_from(WORDS) | scalars, "Alias": scalars},
)
task = st.fixed_dictionaries(
    {"Engine": engine},
    optional={
        "Name": scalars,
        "Publisher": engine,
        "InputSources": st.lists(source, max_size=3) | values,
        "ResultPaths": st.lists(st.dictionaries(st.sampled_from(["Name", "Path"]), scalars))
        | values,
        "Resources": st.dictionaries(st.sampled_from(["CPU", "Memory", "Disk", "GPU"]), scalars),
        "Network": st.dictionaries(st.sampled_from(["Type", "Domains"]), values),
        "Timeouts": st.dictionaries(
            st.sampled_from(["ExecutionTimeout", "QueueTimeout", "TotalTimeout"]), scalars
        ),
        "Env": values,
    },
)
jobs = st.fixed_dictionaries(
    {"Tasks": st.lists(task, max_size=2) | values},
    optional={
        "Type": st.sampled_from(WORDS) | scalars,
        "Count": scalars,
        "Priority": scalars,
        "Name": scalars,
        "Labels": values,
        "Constraints": st.lists(
            st.dictionaries(st.sampled_from(["Key", "Operator", "Values"]), values), max_size=3
        )
        | values,
    },
)
any_spec = jobs | st.dictionaries(st.sampled_from(KEYS), values, max_size=6)


def _load(data: Any) -> None:
    try:
        load_job(unwrap_job(data) if isinstance(data, dict) else {"Tasks": data})
    except SpecError as exc:
        assert exc.problems, "a SpecError must say what is wrong"
        for problem in exc.problems:
            assert isinstance(problem, str) and problem.strip()
            assert ":" in problem, f"no field path in {problem!r}"


@settings(
    max_examples=int(os.environ.get("BACEDGE_FUZZ_EXAMPLES", "10000")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,
)
@given(any_spec)
def test_only_spec_errors_escape_from_generated_specs(data: dict[str, Any]) -> None:
    _load(data)


@settings(max_examples=500, deadline=None, derandomize=True)
@given(st.text(max_size=300))
def test_spec_text_of_any_shape_fails_cleanly(text: str) -> None:
    try:
        data = parse_spec_text(text)
    except SpecError:
        return
    _load(data)


def test_deeply_nested_spec_is_refused_not_crashed() -> None:
    nested: Any = "x"
    for _ in range(5_000):
        nested = {"Tasks": [nested]}
    try:
        load_job(nested)
    except SpecError as exc:
        assert exc.problems
    deep_json = '{"a":' * 100_000 + "1" + "}" * 100_000
    try:
        parse_spec_text(deep_json)
    except SpecError as exc:
        assert "nest" in str(exc).lower() or exc.problems
    json.dumps({"ok": True})
