"""A node serving `job logs` of a chatty task: its event loop and its memory meanwhile.

A stored log at its cap ([compute] max_log_bytes, 64 MiB) of short lines is sent the way a
node sends it (edge/compute/logs.py `send_lines`: frames read by a worker thread, each
encoded as the LogFrame a node publishes), in a fresh process, with a ticker measuring how
late the event loop wakes it every millisecond (what heartbeats, offers and updates see).
Baseline, in the same run: the whole file parsed on the event loop first, then framed (what
a node did before frames were read from the file), with `tail` or not.

Run: .venv/bin/python bench/bench_logs.py [--mib 64] [--line 40]
It only prints: no figure makes it fail.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from edge.compute.logs import FRAME_LINES, Line, send_lines
from edge.transport.messages import LogFrame, encode


def _write(path: Path, mib: int, width: int) -> int:
    line = json.dumps([1, "x" * width]) + "\n"
    count = (mib << 20) // len(line)
    with path.open("w") as handle:
        for _ in range(count // 10_000):
            handle.write(line * 10_000)
        handle.write(line * (count % 10_000))
    return count


def _whole_then_framed(path: Path, tail: int) -> list[bytes]:
    """Before: every line parsed into memory on the event loop, then cut into frames."""
    with path.open(encoding="utf-8") as handle:
        lines = [tuple(json.loads(raw)) for raw in handle if raw.strip()]
    kept = lines[-tail:] if tail else lines
    return [
        encode(LogFrame(Lines=kept[i : i + FRAME_LINES])) for i in range(0, len(kept), FRAME_LINES)
    ]


async def _measure(path: Path, way: str, tail: int) -> dict[str, float]:
    lags: list[float] = []
    running = True

    async def ticker() -> None:
        loop = asyncio.get_running_loop()
        while running:
            due = loop.time() + 0.001
            await asyncio.sleep(0.001)
            lags.append(max(0.0, loop.time() - due))

    frames = 0

    async def send(lines: list[Line], eof: bool) -> None:
        nonlocal frames
        encode(LogFrame(Lines=lines, EOF=eof))
        frames += 1

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tick = asyncio.create_task(ticker())
    await asyncio.sleep(0.05)
    started = time.perf_counter()
    if way == "frames":
        await send_lines(path, tail, send)
    else:
        for _ in _whole_then_framed(path, tail):
            frames += 1
            await asyncio.sleep(0)
    took = time.perf_counter() - started
    running = False
    await tick
    lags.sort()
    return {
        "seconds": took,
        "frames": frames,
        "lag_p50_ms": lags[len(lags) // 2] * 1e3,
        "lag_p99_ms": lags[int(len(lags) * 0.99)] * 1e3,
        "lag_max_ms": lags[-1] * 1e3,
        "rss_growth_mib": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=64)
    parser.add_argument("--line", type=int, default=40, help="characters per line")
    parser.add_argument("--child", nargs=3, metavar=("PATH", "WAY", "TAIL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        path, way, tail = args.child
        print(json.dumps(asyncio.run(_measure(Path(path), way, int(tail)))))
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "output.jsonl"
        count = _write(path, args.mib, args.line)
        print(f"log: {args.mib} MiB, {count:,} lines of {args.line} characters")
        print(
            f"{'way':<28} {'tail':>6} {'s':>6} {'frames':>7} {'lag p50':>8} {'p99':>8} "
            f"{'max ms':>8} {'RSS +MiB':>9}"
        )
        results: dict[tuple[str, int], dict[str, float]] = {}
        for tail in (0, 10):
            for way in ("whole-then-framed", "frames"):
                out = subprocess.run(
                    [sys.executable, __file__, "--child", str(path), way, str(tail)],
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
                r = results[(way, tail)] = json.loads(out)
                print(
                    f"{way:<28} {tail:>6} {r['seconds']:>6.2f} {r['frames']:>7.0f} "
                    f"{r['lag_p50_ms']:>8.2f} {r['lag_p99_ms']:>8.2f} {r['lag_max_ms']:>8.1f} "
                    f"{r['rss_growth_mib']:>9.1f}"
                )
        for tail in (0, 10):
            old, new = results[("whole-then-framed", tail)], results[("frames", tail)]
            print(
                f"tail {tail}: longest event-loop stall {old['lag_max_ms']:.0f} -> "
                f"{new['lag_max_ms']:.0f} ms; RSS growth {old['rss_growth_mib']:.0f} -> "
                f"{new['rss_growth_mib']:.0f} MiB"
            )


if __name__ == "__main__":
    main()
