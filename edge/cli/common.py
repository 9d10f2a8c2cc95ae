"""Options and behaviour every API command shares: where the API is, output format, errors."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from click.core import ParameterSource
from pydantic import ValidationError

from edge.cli.output import OUTPUT_FORMATS, dump, printable_lines
from edge.client import DEFAULT_API, ApiClient, ApiError, ClientError
from edge.jobspec import SpecError, parse_spec_text

if TYPE_CHECKING:
    from edge.config import Config

F = TypeVar("F", bound=Callable[..., Any])

API_ENV = "BACEDGE_API"
API_KEY_ENV = "BACEDGE_API_KEY"


# --------------------------------------------------------------------------- errors


def describe_error(exc: BaseException) -> str:
    """The one line (plus any field problems the server listed) a user sees for a failure."""
    if isinstance(exc, ApiError):
        return exc.describe("set --api-key or BACEDGE_API_KEY")
    if isinstance(exc, ValidationError):
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": str(exc)}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return f"invalid data{' at ' + where if where else ''}: {first.get('msg')}"
    return str(exc) or exc.__class__.__name__


def handle_errors(func: F) -> F:
    """Turns client and data errors into `Error: ...` on stderr and exit code 1, no traceback.

    Tracebacks stay for bugs: only errors a user can cause (server unreachable, refused
    request, unreadable spec) are converted.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (ClientError, ValidationError) as exc:
            raise click.ClickException(printable_lines(describe_error(exc))) from None

    return wrapper  # type: ignore[return-value]


# --------------------------------------------------------------------------- options


@dataclass(frozen=True)
class Connection:
    """Where and how to reach the orchestrator, after flags, environment and profile."""

    api: str = DEFAULT_API
    api_key: str | None = None
    username: str | None = None
    password: str | None = None
    cacert: str | None = None
    insecure: bool = False
    profile: str | None = None  # the [profiles.NAME] it came from, if any

    @property
    def verify(self) -> bool | str:
        return False if self.insecure else (self.cacert or True)

    def client(self) -> ApiClient:
        return ApiClient(
            self.api,
            api_key=self.api_key,
            username=self.username,
            password=self.password,
            verify=self.verify,
        )


def read_config(path: Path | str | None = None) -> Config:
    """The config (`path`, else the default file), a bad one as a usage error. Loaded on
    demand: a command given `--api` never reads it, nor pays for the config models."""
    from edge.config import ConfigError, load_config

    try:
        return load_config(path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def _secret(value: Any) -> str | None:
    return value.get_secret_value() if value is not None else None


def resolve_connection(
    ctx: click.Context,
    api: str,
    api_key: str | None,
    api_user: str | None,
    cacert: str | None,
    insecure: bool,
    profile: str | None,
    config: Config | None = None,
) -> Connection:
    """The connection a command uses. First match wins for the base:

    `--profile NAME`; `--api` (flag or BACEDGE_API); `[client] profile` (file or
    BACEDGE_CLIENT_PROFILE); `[client] api`/`api_key` from the file; the default. Then any
    --api/--api-key/--api-user/--cacert/--insecure given on the command line or in the
    environment override the base's value, so a profile can be pointed elsewhere for once.
    The config file is only read when it can matter.
    """

    def given(name: str) -> bool:
        source = ctx.get_parameter_source(name)
        return source in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)

    base = Connection()
    if profile or not given("api"):
        if config is None:
            config = read_config()
        name = profile or (None if given("api") else config.client.profile or None)
        if name:
            from edge.config import ConfigError

            try:
                section = config.profile(name)
            except ConfigError as exc:
                raise click.ClickException(str(exc)) from None
            base = Connection(
                api=section.api,
                api_key=_secret(section.api_key),
                username=section.username or None,
                password=_secret(section.password),
                cacert=section.cacert or None,
                insecure=section.insecure,
                profile=name,
            )
        else:
            base = Connection(
                api=config.client.api,
                api_key=_secret(config.client.api_key),
                cacert=config.client.cacert or None,
            )
    username = password = None
    if api_user:
        username, _, password = api_user.partition(":")
    return Connection(
        api=api if given("api") else base.api,
        api_key=api_key if given("api_key") else base.api_key,
        username=username if given("api_user") else base.username,
        password=password if given("api_user") else base.password,
        cacert=cacert if given("cacert") else base.cacert,
        insecure=insecure if given("insecure") else base.insecure,
        profile=base.profile,
    )


def connection_options(func: F) -> F:
    """Adds --api, --api-key, --api-user, --cacert, --insecure, --profile; passes `connection`."""

    @click.option(
        "--api",
        envvar=API_ENV,
        default=DEFAULT_API,
        show_default=True,
        show_envvar=True,
        metavar="URL",
        help="Orchestrator API address.",
    )
    @click.option(
        "--api-key",
        envvar=API_KEY_ENV,
        show_envvar=True,
        metavar="KEY",
        help="API key, sent as a Bearer token.",
    )
    @click.option(
        "--api-user",
        envvar="BACEDGE_API_USER",
        show_envvar=True,
        metavar="USER:PASSWORD",
        help="Basic-auth credentials instead of an API key.",
    )
    @click.option(
        "--cacert",
        envvar=["BACEDGE_CACERT", "BACEDGE_API_CACERT"],
        show_envvar=True,
        type=click.Path(exists=True, dir_okay=False),
        help="CA bundle to verify an https:// orchestrator.",
    )
    @click.option(
        "--insecure",
        envvar="BACEDGE_API_INSECURE",
        is_flag=True,
        help="Do not verify the orchestrator's TLS certificate.",
    )
    @click.option(
        "--profile",
        metavar="NAME",
        help="Cluster profile from the config file ([profiles.NAME]).",
    )
    @functools.wraps(func)
    def wrapper(
        *args: Any,
        api: str,
        api_key: str | None,
        api_user: str | None,
        cacert: str | None,
        insecure: bool,
        profile: str | None,
        **kwargs: Any,
    ) -> Any:
        ctx = click.get_current_context()
        config = None
        if kwargs.get("config_file") is not None:  # a command with its own --config option
            config = read_config(kwargs["config_file"])
        connection = resolve_connection(
            ctx, api, api_key, api_user, cacert, insecure, profile, config
        )
        return func(*args, connection=connection, **kwargs)

    return wrapper  # type: ignore[return-value]


def api_options(func: F) -> F:
    """Adds the connection options (see `connection_options`) and passes `client`."""

    @connection_options
    @functools.wraps(func)
    def wrapper(*args: Any, connection: Connection, **kwargs: Any) -> Any:
        with connection.client() as client:
            return func(*args, client=client, **kwargs)

    return wrapper  # type: ignore[return-value]


def output_option(func: F) -> F:
    """Adds `--output table|json|yaml` (table by default) and passes `output`."""
    return click.option(
        "--output",
        type=click.Choice(OUTPUT_FORMATS, case_sensitive=False),
        default="table",
        show_default=True,
        help="Output format.",
    )(func)


def wide_option(func: F) -> F:
    return click.option("--wide", is_flag=True, help="Show full IDs and untruncated columns.")(func)


def echo_data(value: Any, fmt: str) -> None:
    """JSON/YAML of models or plain data on stdout."""
    click.echo(dump(value, fmt.lower()))


# --------------------------------------------------------------------------- Go-style booleans


class BacedgeCommand(click.Command):
    """Accepts `--flag=false` / `--flag=true` for boolean flags, as Bacalhau's Go flags do.

    A flag stays a flag (`--wait spec.yaml` does not eat the file name); only the `=value`
    spelling is rewritten, and nothing after `--` is touched (task arguments).
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        flags: dict[str, tuple[str, str | None]] = {}
        for param in self.params:
            if isinstance(param, click.Option) and param.is_flag and param.is_bool_flag:
                off = param.secondary_opts[0] if param.secondary_opts else None
                for opt in param.opts:
                    flags[opt] = (opt, off)
        rewritten: list[str] = []
        for i, arg in enumerate(args):
            if arg == "--":
                rewritten.extend(args[i:])
                break
            name, eq, value = arg.partition("=")
            if eq and name in flags:
                on, off = flags[name]
                try:
                    truth = click.BOOL.convert(value, None, ctx)
                except click.BadParameter:
                    raise click.BadParameter(
                        f"{value!r} is not a boolean (use true or false)", ctx, param_hint=name
                    ) from None
                if truth:
                    rewritten.append(on)
                elif off is not None:
                    rewritten.append(off)
                continue  # `--flag=false` with no `--no-flag`: false is the default
            rewritten.append(arg)
        return super().parse_args(ctx, rewritten)


class BacedgeGroup(click.Group):
    """A group whose commands and subgroups accept Go-style booleans."""

    command_class = BacedgeCommand


BacedgeGroup.group_class = BacedgeGroup


# --------------------------------------------------------------------------- spec files


def read_spec(path: str) -> dict[str, Any]:
    """A job spec from a YAML or JSON file (`-` for stdin), with a one-line error if not.

    Only parsing happens here; what the spec means is checked by the server (or by
    `job validate`).
    """
    where = "stdin" if path == "-" else path
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise click.ClickException(f"{where}: no such file") from None
    except IsADirectoryError:
        raise click.ClickException(f"{where}: is a directory, not a job spec file") from None
    except UnicodeDecodeError:
        raise click.ClickException(f"{where}: not a text file (expected YAML or JSON)") from None
    except OSError as exc:
        raise click.ClickException(f"{where}: {exc.strerror or exc}") from None
    try:
        return parse_spec_text(text, where)
    except SpecError as exc:
        raise click.ClickException(str(exc)) from None
