"""Builds the test modules in tests/wasm/*.wat with wabt's `wat2wasm` (Debian package wabt).

Outputs are cached by source hash, so a session compiles each module once.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

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


def wasm_job_spec(
    module: bytes,
    args: list[str],
    inputs: list[dict[str, Any]] | None = None,
    publisher: dict[str, Any] | None = None,
    results: bool = True,
) -> dict[str, Any]:
    """A batch job running `module` (shipped inline at /app/main.wasm) with more inputs, an
    `outputs` ResultPath and a publisher: the shape data tests and benchmarks submit."""
    uri = "data:application/wasm;base64," + base64.b64encode(module).decode()
    task: dict[str, Any] = {
        "Name": "main",
        "Engine": {"Type": "wasm", "Params": {"EntryModule": "/app/main.wasm", "Parameters": args}},
        "InputSources": [
            {"Source": {"Type": "inline", "Params": {"URL": uri}}, "Target": "/app/main.wasm"},
            *(inputs or []),
        ],
    }
    if results:
        task["ResultPaths"] = [{"Name": "outputs", "Path": "/outputs"}]
    if publisher is not None:
        task["Publisher"] = publisher
    return {"Type": "batch", "Count": 1, "Tasks": [task]}


def s3_source(bucket: str, key: str, target: str = "/inputs", **params: str) -> dict[str, Any]:
    """An `s3` InputSource (`Endpoint`, `Filter` ... as keyword params)."""
    return {
        "Source": {"Type": "s3", "Params": {"Bucket": bucket, "Key": key, **params}},
        "Target": target,
    }
