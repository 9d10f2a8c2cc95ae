"""`bacedge auth ...`: password hashes for `[[api.auth.users]]`, and who a key is."""

from __future__ import annotations

import sys

import click

from edge.cli.common import BacedgeGroup, api_options, echo_data, handle_errors, output_option
from edge.client import ApiClient


@click.group(cls=BacedgeGroup)
def auth() -> None:
    """API users: hash their passwords, check what credentials may do."""


@auth.command("hash-password")
def hash_password() -> None:
    """Print the hash to store as a user's `password` in `[[api.auth.users]]`.

    On a terminal it asks twice, without echo; otherwise it reads one line from stdin
    (`printf '%s\\n' "$PW" | bacedge auth hash-password`). Only the hash is printed.
    """
    from edge.auth import hash_password as make_hash

    if sys.stdin.isatty():
        password = click.prompt(
            "Password", hide_input=True, confirmation_prompt="Repeat it", err=True
        )
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise click.ClickException("empty password: type one, or send one line on stdin")
    click.echo(make_hash(password))


@auth.command("whoami")
@handle_errors
@api_options
@output_option
def whoami(client: ApiClient, output: str) -> None:
    """Who the orchestrator takes these credentials for, and the actions they allow."""
    answer = client.agent_capabilities()
    if output != "table":
        echo_data(answer, output)
        return
    if not answer.get("AuthRequired", True):
        click.echo("User:    (the API asks for no credentials)")
    else:
        click.echo(f"User:    {answer.get('Alias') or '?'}")
    click.echo(f"Actions: {', '.join(answer.get('Actions') or []) or 'none'}")
