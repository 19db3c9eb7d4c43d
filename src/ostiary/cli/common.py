"""Helpers shared by the management commands: settings, a provider for one command, output."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click
import orjson

from ..errors import OAuthError

if TYPE_CHECKING:
    from ..app.provider import Provider
    from ..config import Settings

T = TypeVar("T")

config_option = click.option(
    "--config", "config_file", type=click.Path(dir_okay=False), envvar="OSTIARY_CONFIG",
    help="TOML settings file (env: OSTIARY_CONFIG).",
)
database_option = click.option(
    "--database-url", envvar="OSTIARY_DATABASE_URL",
    help='sqlite:///PATH, postgresql://USER@HOST:PORT/DB or "memory:" (serve only) (env: OSTIARY_DATABASE_URL).',
)
json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON output.")


def load(config_file: str | None, **overrides: Any) -> Settings:
    from ..config import ConfigError, load_settings

    try:
        return load_settings(config_file=config_file, **overrides)
    except ConfigError as exc:
        raise click.ClickException(f"configuration: {exc}") from None


def with_provider(settings: Settings, action: Callable[[Provider], Awaitable[T]], *, changes: bool = True) -> T:
    """Run `action` against the database (migrated first), then close everything.

    With `changes` (the default: every command that may write), running servers are told through the
    change signal, so the change takes effect on every node within a second.
    """
    from ..app.bootstrap import client_upgrade, load_secret_key
    from ..app.provider import open_provider
    from ..config import MEMORY_DATABASE_URL

    if settings.database_url == MEMORY_DATABASE_URL:  # a command's own process would change nothing that lasts
        raise click.ClickException('database_url "memory:" lives inside the one server process: management '
                                   "commands cannot reach it (use a SQL database, or the server's HTTP APIs)")

    async def run() -> T:
        provider = await open_provider(settings)
        try:
            load_secret_key(provider)
            for line in await provider.database.migrate(client_upgrade(provider)):
                click.echo(f"upgrade report: {line}", err=True)  # what the policy removed (docs/security.md)
            result = await action(provider)
            if changes:
                await provider.changes.bump()
            return result
        finally:
            await provider.aclose()

    from ..config import ConfigError

    try:
        return asyncio.run(run())
    except ConfigError as exc:
        raise click.ClickException(f"configuration: {exc}") from None
    except OAuthError as exc:
        raise click.ClickException(f"{exc.error}: {exc.description or ''}".rstrip(": ")) from None
    except OSError as exc:
        raise click.ClickException(f"cannot reach the database: {exc}") from None
    except Exception as exc:
        raise database_error(exc) from None


def database_error(exc: Exception) -> Exception:
    """A clean message for a database the URL names but we cannot use (bad URL, login, missing database)."""
    from sqlalchemy.exc import ArgumentError, SQLAlchemyError

    if isinstance(exc, ArgumentError):
        return click.ClickException(f"configuration: database_url: {exc}")
    if isinstance(exc, SQLAlchemyError):
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        return click.ClickException(f"cannot use the database: {reason}")
    return exc


def emit_json(data: Any) -> None:
    sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")
