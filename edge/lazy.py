"""Modules loaded on first use, with the standard library's own recipe (LazyLoader)."""

from __future__ import annotations

import contextlib
import importlib.util
import sys
from collections.abc import Iterator
from types import ModuleType


def lazy_module(name: str) -> ModuleType:
    """`name`, imported when one of its attributes is first read: a process that never
    uses it never holds it. ImportError at once if it is not installed at all."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ImportError(f"No module named {name!r}")
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    return module


@contextlib.contextmanager
def optional_extras_hidden(*names: str) -> Iterator[None]:
    """Inside the block, importing any of `names` fails as if it were not installed.

    For libraries that load an optional extra bacedge never uses the moment they are
    imported (nats-py loads aiohttp for its WebSocket transport, podman-py loads rich for
    pull progress bars): hiding the extra while the library is imported keeps a compute
    node from holding ~25 MiB it never runs. Each library catches that ImportError by
    design. An extra already imported is left as it is: hiding it would save nothing.
    """
    hidden = [n for n in names if n not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]  # None: "import fails"
    try:
        yield
    finally:
        for name in hidden:
            if sys.modules.get(name, 0) is None:
                del sys.modules[name]
