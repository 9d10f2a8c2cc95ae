"""Local store figures: `bacedge serve --store` start time and idle RSS (SeaweedFS).

Run: .venv/bin/python bench/bench_store.py [--idle SECONDS]
Starts the store in a fresh data dir (first start: credentials generated, volumes laid
out) and again in the same dir (a restart), measures the time until a signed ListBuckets
answers, then the resident memory of bacedge and its server child after an idle spell.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import suppress
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import BACEDGE, free_port
from edge.config import load_config
from edge.s3 import CREDENTIALS_FILE, local_store


def start(data_dir: Path, port: int) -> tuple[subprocess.Popen[bytes], float]:
    """The store process, and seconds from exec to a signed ListBuckets answering."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACEDGE_")}
    env["BACEDGE_LOG_FORMAT"] = "text"
    began = time.perf_counter()
    proc = subprocess.Popen(
        [*BACEDGE, "serve", "--store", "--data-dir", str(data_dir), "--store-port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    config = load_config(None, {"node.data_dir": data_dir}, environ={})
    deadline = began + 120
    while time.perf_counter() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"bacedge serve --store exited with {proc.returncode}")
        endpoint = local_store(config)
        if endpoint is not None and endpoint.url.endswith(f":{port}"):
            with suppress(Exception):
                endpoint.client().list_buckets()
                return proc, time.perf_counter() - began
        time.sleep(0.05)
    raise SystemExit("the store did not answer within 120 s")


def rss(pid: int) -> tuple[float, float]:
    """(bacedge, its children) resident MiB."""
    parent = psutil.Process(pid)
    children = 0
    for child in parent.children(recursive=True):
        with suppress(psutil.NoSuchProcess):
            children += child.memory_info().rss
    return parent.memory_info().rss / 2**20, children / 2**20


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle", type=float, default=10.0, help="seconds idle before RSS")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:
        data = Path(tmp)
        port = free_port()
        proc, first = start(data, port)
        stop(proc)
        proc, again = start(data, port)
        try:
            time.sleep(args.idle)
            own, children = rss(proc.pid)
            backend = json.loads((data / "store" / CREDENTIALS_FILE).read_text())["backend"]
        finally:
            stop(proc)
    print(f"store start -> S3 answering: first {first:5.2f} s, restart {again:5.2f} s")
    print(
        f"store RSS idle ({args.idle:.0f} s): {own + children:6.1f} MiB total = "
        f"bacedge {own:5.1f} MiB + server {children:6.1f} MiB ({backend})"
    )


if __name__ == "__main__":
    main()
