"""`ostiary user mfa`: see and reset a user's second factors (authenticator app, recovery codes, passkeys)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import click

from .common import config_option, database_option, emit_json, json_option, load, with_provider

if TYPE_CHECKING:
    from ..app.provider import Provider

__all__ = ["mfa_group"]


async def _user_id(p: Provider, username: str) -> str:
    user = await p.users.by_username(username)
    if user is None:
        raise click.ClickException(f"no user {username!r}")
    return user.id


@click.group("mfa")
def mfa_group() -> None:
    """A user's second factors: authenticator app (TOTP), recovery codes and passkeys."""


@mfa_group.command("status")
@click.argument("username")
@config_option
@database_option
@json_option
def mfa_status(username: str, config_file: str | None, database_url: str | None, as_json: bool) -> None:
    """Show whether the user has an authenticator app and how many recovery codes are left."""
    settings = load(config_file, database_url=database_url)

    async def action(p: Provider) -> dict[str, Any]:
        from ..app.passkeys import passkey_credentials

        user_id = await _user_id(p, username)
        status = await p.mfa.status(user_id)
        passkeys = await passkey_credentials(p.stores).list_for_user(user_id)
        return {"username": username, "totp": status.totp, "totp_activated_at": status.activated_at,
                "recovery_codes_left": status.recovery_codes_left, "passkeys": len(passkeys)}

    data = with_provider(settings, action, changes=False)
    if as_json:
        emit_json(data)
        return
    since = data["totp_activated_at"]
    when = f" since {dt.datetime.fromtimestamp(since, dt.UTC):%Y-%m-%d %H:%M} UTC" if since else ""
    click.echo(f"{username}  authenticator app: {data['totp']}{when}  recovery codes left: "
               f"{data['recovery_codes_left']}  passkeys: {data['passkeys']}")


@mfa_group.command("reset")
@click.argument("username")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@config_option
@database_option
def mfa_reset(username: str, yes: bool, config_file: str | None, database_url: str | None) -> None:
    """Remove the user's authenticator app, recovery codes and passkeys and end their sessions (a lost
    phone or key): the next sign-in needs only the password, then the user sets up a factor again."""
    if not yes:
        click.confirm(f"Remove every second factor of {username}?", abort=True)
    settings = load(config_file, database_url=database_url)

    async def action(p: Provider) -> tuple[bool, int, int, int]:
        from ..app.passkeys import remove_all_passkeys

        user_id = await _user_id(p, username)
        passkeys = await remove_all_passkeys(p.stores, user_id)  # first: no session may start from one after
        return (*await p.mfa.reset(user_id), passkeys)

    removed, codes, ended, passkeys = with_provider(settings, action)
    click.echo(f"{username}: authenticator app {'removed' if removed else 'was not set up'}, "
               f"{codes} recovery code(s) removed, {ended} session(s) ended, {passkeys} passkey(s) removed")
