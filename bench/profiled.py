"""Run a `bacedge` command under cProfile; the profile is written when it exits (SIGTERM
stops `serve` cleanly). `bench_scale.py --profile DIR` runs the orchestrator this way.

Run: .venv/bin/python bench/profiled.py OUT.prof serve --orchestrator ...
Read: .venv/bin/python -m pstats OUT.prof  (then `sort tottime`, `stats 30`)
"""

from __future__ import annotations

import cProfile
import sys


def main() -> None:
    out, args = sys.argv[1], sys.argv[2:]
    from edge.cli.main import cli

    profile = cProfile.Profile()
    profile.enable()
    try:
        cli(args, prog_name="bacedge")
    finally:
        profile.disable()
        profile.dump_stats(out)


if __name__ == "__main__":
    main()
