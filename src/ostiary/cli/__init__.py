"""The `ostiary` command. Server commands import the server lazily: `ostiary jwt` needs no database."""

from __future__ import annotations

import click

from .. import __version__
from ..fhir.cli import fhir_gateway, fhir_group
from ..jwt_cli import jwt_group
from .clients import client_group
from .db import db_group
from .gateway import gateway_group
from .keys import keys_group
from .serve import serve
from .token import token
from .users import user_group

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="ostiary")
def main() -> None:
    """Ostiary: OAuth 2.1 / OpenID Connect authorization server, guard, client toolkit and JWT tools."""


main.add_command(serve)
main.add_command(db_group, "db")
main.add_command(client_group, "client")
main.add_command(keys_group, "keys")
main.add_command(token)
main.add_command(user_group, "user")
main.add_command(jwt_group, "jwt")
main.add_command(fhir_group, "fhir")
main.add_command(fhir_gateway)
main.add_command(gateway_group, "gateway")
