"""The `ostiary` command. Server commands import the server lazily: `ostiary jwt` needs no database."""

from __future__ import annotations

import click

from .. import __version__
from ..fhir.cli import fhir_gateway, fhir_group
from ..jwt_cli import jwt_group
from .access import access_command
from .clients import client_group
from .db import db_group
from .federation import links_command
from .gateway import gateway_group
from .keys import keys_group
from .mfa import mfa_group
from .serve import serve
from .token import token
from .users import user_group

__all__ = ["main"]

# Installed by `pip install ostiary[server]`; `pip install ostiary` alone has the guard, the client
# toolkit, `ostiary jwt` and `ostiary token`.
SERVER_PACKAGES = frozenset({"sqlalchemy", "starlette", "uvicorn", "alembic", "argon2", "jinja2", "aiosqlite",
                             "asyncpg", "redis", "fhir", "ada_url", "h11", "webauthn"})


class _Main(click.Group):
    """Server commands without the server packages end in one line saying what to install."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except ModuleNotFoundError as exc:
            missing = (exc.name or "").split(".")[0]
            if missing not in SERVER_PACKAGES:
                raise
            command = ctx.invoked_subcommand or "this command"
            raise click.ClickException(
                f"`ostiary {command}` needs the server packages: pip install 'ostiary[server]' "
                f"(missing: {missing})") from None


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="ostiary")
def main() -> None:
    """Ostiary: OAuth 2.1 / OpenID Connect authorization server, guard, client toolkit and JWT tools."""


main.add_command(serve)
main.add_command(db_group, "db")
main.add_command(client_group, "client")
main.add_command(keys_group, "keys")
main.add_command(token)
main.add_command(user_group, "user")
user_group.add_command(access_command)
user_group.add_command(mfa_group)
user_group.add_command(links_command)
main.add_command(jwt_group, "jwt")
main.add_command(fhir_group, "fhir")
main.add_command(fhir_gateway)
main.add_command(gateway_group, "gateway")
