"""Docs stay true: every config key and every command is documented."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import click
from pydantic import BaseModel

from edge.cli.main import cli
from edge.config import Config, ProfileSection

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_every_config_key_is_documented() -> None:
    text = (DOCS / "config.md").read_text()
    for section, field in Config.model_fields.items():
        if section == "profiles":
            section, model = "profiles.NAME", ProfileSection
        else:
            model = field.annotation  # type: ignore[assignment]
        assert f"## [{section}]" in text, section
        for key in _keys(model, section):
            assert f"`{key.rpartition('.')[2]}`" in text, f"{key} is not in docs/config.md"
    assert "### [[api.auth.users]]" in text


def _keys(model: type[BaseModel], prefix: str) -> list[str]:
    """Every key of a section, and those of the tables inside it (`[[api.auth.users]]`)."""
    out = []
    for name, field in model.model_fields.items():
        out.append(f"{prefix}.{name}")
        for inner in (field.annotation, *get_args(field.annotation)):
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                out += _keys(inner, f"{prefix}.{name}")
    return out


def _commands(group: click.Group, prefix: str = "") -> list[str]:
    ctx = click.Context(group)
    out = []
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None
        full = f"{prefix}{name}"
        out.append(full)
        if isinstance(command, click.Group):
            out.extend(_commands(command, full + " "))
    return out


def test_every_command_is_documented() -> None:
    text = (DOCS / "cli.md").read_text()
    for command in _commands(cli):
        assert f"bacedge {command}" in text, f"`bacedge {command}` is not in docs/cli.md"


def test_cli_reference_is_regenerated() -> None:
    import importlib.util

    path = DOCS.parent / "scripts" / "gen_cli_docs.py"
    spec = importlib.util.spec_from_file_location("gen_cli_docs", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert (DOCS / "cli.md").read_text() == module.render(), (
        "docs/cli.md is stale: run .venv/bin/python scripts/gen_cli_docs.py"
    )
