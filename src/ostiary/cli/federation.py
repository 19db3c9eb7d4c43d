"""`ostiary user links NAME`: a user's identities at upstream providers (federation), and removing one."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import click

from .common import config_option, database_option, emit_json, json_option, load, with_provider

if TYPE_CHECKING:
    from ..app.provider import Provider

__all__ = ["links_command"]


@click.command("links")
@click.argument("username")
@click.option("--remove", "remove", metavar="PROVIDER:SUBJECT",
              help="Remove this link (the upstream account no longer signs in as the user).")
@config_option
@database_option
@json_option
def links_command(username: str, remove: str | None, config_file: str | None, database_url: str | None,
                  as_json: bool) -> None:
    """List a user's linked identities at upstream providers (docs/sign-in.md, federation), or remove one.

    An administrator may remove the last one (a compromised upstream account): the user then signs in
    only with a password, if they have one."""
    settings = load(config_file, database_url=database_url)

    async def action(p: Provider) -> list[dict[str, Any]]:
        from ..server.audit import audit

        user = await p.users.by_username(username)
        if user is None:
            raise click.ClickException(f"no user {username!r}")
        if remove is not None:
            provider, _, subject = remove.partition(":")
            if not await p.federated_accounts.links.remove(user.id, provider, subject):
                raise click.ClickException(f"{username} has no link {remove!r}")
            audit("federation_unlinked", sub=user.id, provider=provider, by="administrator")
        return [{"provider": link.provider, "subject": link.subject, "label": link.label,
                 "created_at": link.created_at, "last_used": link.last_used}
                for link in await p.federated_accounts.of_user(user.id)]

    links = with_provider(settings, action, changes=remove is not None)
    if as_json:
        emit_json(links)
        return
    if not links:
        click.echo(f"{username}: no linked identities")
    for link in links:
        used = dt.datetime.fromtimestamp(link["last_used"], dt.UTC)
        click.echo(f"{link['provider']}:{link['subject']}  {link['label']}  last used {used:%Y-%m-%d %H:%M} UTC")
