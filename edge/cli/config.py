"""`bacedge config`: show the effective configuration, validate a file."""

from __future__ import annotations

import json
from pathlib import Path

import click
import yaml

from edge.config import ConfigError, default_config_path, load_config


@click.group()
def config() -> None:
    """Inspect configuration (TOML file < BACEDGE_* env < flags)."""


@config.command()
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="TOML config file.",
)
@click.option(
    "--output", type=click.Choice(["yaml", "json", "toml"]), default="yaml", show_default=True
)
def show(config_file: Path | None, output: str) -> None:
    """Print the effective config with secrets masked."""
    try:
        cfg = load_config(config_file)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    data = cfg.masked()
    data["node"]["data_dir"] = str(cfg.data_dir)
    if output == "json":
        click.echo(json.dumps(data, indent=2))
    elif output == "toml":
        click.echo(_toml(data))
    else:
        click.echo(yaml.safe_dump(data, sort_keys=False).rstrip())
    source = config_file or default_config_path()
    click.echo(f"# file: {source}{'' if Path(source).exists() else ' (absent)'}", err=True)


@config.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def validate(file: Path) -> None:
    """Check a config file: unknown keys and bad values are reported with their key."""
    try:
        load_config(file, environ={})
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{file}: valid")


def _toml(data: dict[str, object]) -> str:
    """The masked config as TOML: sections, nested tables and arrays of tables
    (`[[api.auth.users]]`) as a file would write them; unset values left out."""
    lines: list[str] = []

    def is_tables(value: object) -> bool:
        return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)

    def table(path: list[str], fields: dict[str, object], array: bool = False) -> None:
        header = ".".join(_toml_key(p) for p in path)
        lines.append(f"[[{header}]]" if array else f"[{header}]")
        for key, value in fields.items():
            if value is not None and not isinstance(value, dict) and not is_tables(value):
                lines.append(f"{_toml_key(key)} = {json.dumps(value)}")
        lines.append("")
        for key, value in fields.items():
            if isinstance(value, dict):
                table([*path, key], value)
            elif is_tables(value):
                for item in value:  # type: ignore[attr-defined]
                    table([*path, key], item, array=True)

    for section, fields in data.items():
        if isinstance(fields, dict):
            table([section], fields)
    return "\n".join(lines).rstrip()


def _toml_key(key: str) -> str:
    return key if key and all(c.isalnum() or c in "_-" for c in key) else json.dumps(key)
