"""Regenerates docs/cli.md from the commands' own help, so the reference never drifts.

Run: .venv/bin/python scripts/gen_cli_docs.py
"""

from __future__ import annotations

from pathlib import Path

import click

from edge.cli.main import cli

INTRO = """# Command reference

Generated from `bacedge --help` by `scripts/gen_cli_docs.py`; do not edit by hand.

Every client command takes `--api URL` (env `BACEDGE_API`, default
`http://127.0.0.1:1234`) and, where it prints data, `--output table|json|yaml`. Errors are
one line on stderr (`Error: ...`) with exit code 1; `job run` and `wasm run` exit with the
task's exit code when it failed.
"""


def walk(
    command: click.Command, path: list[str], out: list[str], parent: click.Context | None = None
) -> None:
    # Children inherit the root's settings (-h, width), as when run from a shell.
    ctx = click.Context(
        command,
        info_name=path[-1],
        parent=parent,
        terminal_width=100,
        **(command.context_settings if parent is None else {}),
    )
    if len(path) > 1:
        out.append(f"\n## `{' '.join(path)}`\n\n```text\n{command.get_help(ctx)}\n```")
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None:
                walk(sub, [*path, name], out, ctx)


def render() -> str:
    out = [INTRO]
    walk(cli, ["bacedge"], out)
    return "\n".join(out) + "\n"


TARGET = Path(__file__).resolve().parents[1] / "docs" / "cli.md"


def main() -> None:
    TARGET.write_text(render())
    print(f"wrote {TARGET}")


if __name__ == "__main__":
    main()
