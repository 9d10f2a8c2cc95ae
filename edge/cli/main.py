"""The `bacedge` command: one entry point for every role, one module per command group."""

from __future__ import annotations

import importlib
import importlib.util

import click

from edge import __version__

# Every command group as (module, attribute); the attribute is also the command's name.
# Each is imported only when used, so `bacedge --version` loads nothing but click and
# `bacedge job list` on a small board does not load the orchestrator, Textual or Wasmer.
COMMANDS: list[tuple[str, str]] = [
    ("edge.cli.job", "job"),
    ("edge.cli.node", "node"),
    ("edge.cli.agent", "agent"),
    ("edge.cli.auth", "auth"),
    ("edge.cli.wasm", "wasm"),
    ("edge.cli.docker", "docker"),
    ("edge.cli.docker", "podman"),
    ("edge.cli.image", "image"),
    ("edge.cli.setup", "setup"),
    ("edge.cli.serve", "serve"),
    ("edge.cli.config", "config"),
    ("edge.cli.tui", "tui"),
    ("edge.cli.devstack", "devstack"),
    ("edge.cli.store", "store"),
]


def _module_exists(module_name: str) -> bool:
    try:
        return importlib.util.find_spec(module_name) is not None
    except ModuleNotFoundError:
        return False


def load_optional_command(name: str) -> click.Command | None:
    """The optional command called `name`, or None if its module is not there."""
    for module_name, attribute in COMMANDS:
        if attribute != name:
            continue
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise  # the module exists but something it needs is missing: a real error
            return None
        command = getattr(module, attribute)
        return command if isinstance(command, click.Command) else None
    return None


class RootGroup(click.Group):
    """The top-level group: every command group, loaded on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        names = set(super().list_commands(ctx))
        names.update(attr for module, attr in COMMANDS if _module_exists(module))
        return sorted(names)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None:
            command = load_optional_command(cmd_name)
            if command is not None:
                self.add_command(command, cmd_name)
        return command


@click.group(cls=RootGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-V", prog_name="bacedge")
def cli() -> None:
    """bacedge: Bacalhau-compatible compute for fleets of edge devices."""


def main() -> None:
    """Console-script entry point (`bacedge = edge.cli.main:main`)."""
    cli(prog_name="bacedge")


if __name__ == "__main__":
    main()
