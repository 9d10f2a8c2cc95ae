"""Builds the test modules in tests/wasm/*.wat with wabt's `wat2wasm` (Debian package wabt).

Outputs are cached by source hash, so a session compiles each module once.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

WAT_DIR = Path(__file__).parent / "wasm"
CACHE_DIR = Path(tempfile.gettempdir()) / "bacedge-test-wasm"


def build_wasm(name: str) -> Path:
    """The compiled tests/wasm/NAME.wat."""
    source = WAT_DIR / f"{name}.wat"
    text = source.read_bytes()
    out = CACHE_DIR / f"{name}-{hashlib.sha256(text).hexdigest()[:16]}.wasm"
    if out.exists():
        return out
    tool = shutil.which("wat2wasm")
    if tool is None:
        raise RuntimeError("wat2wasm not found: install it with `apt-get install -y wabt`")
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    partial = out.with_suffix(f".{os.getpid()}.tmp")
    subprocess.run([tool, str(source), "-o", str(partial)], check=True)
    partial.replace(out)  # atomic, so parallel test runs never see half a module
    return out
