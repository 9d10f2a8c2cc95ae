"""`bacedge config`: show the effective configuration, validate a file."""

from __future__ import annotations

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
        import json

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


def _toml(data: dict[str, dict[str, object]]) -> str:
    import json

    out = []
    for section, fields in data.items():
        out.append(f"[{section}]")
        for key, value in fields.items():
            if value is None:
                continue
            out.append(f"{key} = {json.dumps(value)}")
        out.append("")
    return "\n".join(out).rstrip()
