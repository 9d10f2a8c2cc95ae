"""Modules loaded on first use (edge/lazy.py) and engine libraries tried in a child."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from edge.executors import library_loads
from edge.lazy import lazy_module, optional_extras_hidden


def test_a_lazy_module_loads_on_first_attribute_read() -> None:
    sys.modules.pop("zipapp", None)
    module = lazy_module("zipapp")
    assert isinstance(module, importlib.util._LazyModule)  # nothing executed yet
    assert callable(module.create_archive)
    assert not isinstance(module, importlib.util._LazyModule)
    assert lazy_module("zipapp") is module


def test_a_missing_module_fails_at_once() -> None:
    with pytest.raises(ImportError, match="no_such_module_here"):
        lazy_module("no_such_module_here")


def test_a_library_is_tried_in_a_child_process() -> None:
    assert library_loads("json") is None
    problem = library_loads("no_such_module_here")
    assert problem is not None and "No module named 'no_such_module_here'" in problem


def test_an_idle_wasm_engine_holds_no_wasmer() -> None:
    """Building the wasm engine must not load wasmer-sdk into the agent."""
    if importlib.util.find_spec("wasmer_sdk") is None:
        pytest.skip("wasmer-sdk is not installed")
    code = (
        "import sys, edge.executors as e\n"
        "engines = e.build_executors(['wasm'])\n"
        "import importlib.util\n"
        "lazy = isinstance(sys.modules.get('wasmer_sdk'), importlib.util._LazyModule)\n"
        "print(sorted(engines), lazy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["['wasm']", "True"], out.stdout + out.stderr


def test_hidden_extras_fail_to_import_inside_the_block_only() -> None:
    sys.modules.pop("zipapp", None)
    with optional_extras_hidden("zipapp", "json"):  # json is loaded already: left alone
        with pytest.raises(ImportError):
            import zipapp  # noqa: F401
        import json  # noqa: F401
    assert lazy_module("zipapp").create_archive  # importable again after the block


def test_a_compute_node_loads_no_extra_it_does_not_use() -> None:
    """The agent's modules (with Podman and the local publisher) must not bring in aiohttp
    (nats-py's WebSocket transport, the results server before its first archive), rich
    (httpx's CLI, podman-py's progress bars), PyYAML or Textual: each is memory an idle
    edge node would hold for nothing."""
    code = (
        "import sys, edge.runtime, edge.compute.agent, edge.executors.podman, httpx\n"
        "import edge.publishers as p\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'aiohttp', 'rich', 'yaml', 'textual', 'pygments'}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
