"""Modules loaded on first use (edge/lazy.py) and engine libraries tried in a child."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from edge.executors import library_loads
from edge.lazy import lazy_module


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
