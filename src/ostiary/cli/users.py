"""`ostiary user`: end-users who log in through the browser (argon2id passwords, profile claims)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click
import orjson

from .common import config_option, database_option, emit_json, json_option, load, with_provider

if TYPE_CHECKING:
    from ..app.provider import Provider
    from ..store.identity import User


def _claims(name: str | None, email: str | None, email_verified: bool | None,
            pairs: tuple[str, ...]) -> dict[str, Any]:
    """Profile claims only: fhirUser is an access fact (`ostiary user access`)."""
    claims: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise click.UsageError(f"--claim takes NAME=VALUE, not {pair!r}")
        try:
            claims[key] = orjson.loads(value)  # JSON values (true, {"street_address": ...}) or plain text
        except orjson.JSONDecodeError:
            claims[key] = value
    if name is not None:
        claims["name"] = name
    if email is not None:
        claims["email"] = email
    if email_verified is not None:
        claims["email_verified"] = email_verified
    return claims


def _password(password: str | None, password_stdin: bool) -> str | None:
    if password_stdin:
        if password is not None:
            raise click.UsageError("give --password or --password-stdin, not both")
        read = sys.stdin.readline().rstrip("\r\n")
        if not read:
            raise click.UsageError("--password-stdin read an empty password: pipe it in, e.g. "
                                   "echo 'a long password' | ostiary user ... --password-stdin")
        return read
    return password


def _show(user: User, as_json: bool) -> None:
    data = {"sub": user.id, "username": user.username, "disabled": user.disabled, "claims": dict(user.claims)}
    if as_json:
        emit_json(data)
    else:
        click.echo(f"{user.username}  sub={user.id}{'  (disabled)' if user.disabled else ''}")
        for key, value in user.claims.items():
            click.echo(f"  {key}: {value}")


claim_options = [
    click.option("--name", help="Full name (the `name` claim)."),
    click.option("--email", help="Email address (a changed one is unverified unless --email-verified is given)."),
    click.option("--email-verified/--email-unverified", default=None, help="Whether the email is verified."),
    click.option("--claim", "pairs", multiple=True, help="Another claim, NAME=VALUE (JSON values allowed)."),
]


def with_claim_options(fn: Any) -> Any:
    for opt in reversed(claim_options):
        fn = opt(fn)
    return fn


@click.group()
def user_group() -> None:
    """Manage end-users."""


@user_group.command("create")
@click.argument("username")
@click.option("--password", help="The password (prefer --password-stdin: arguments end up in shell history).")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
@with_claim_options
@config_option
@database_option
@json_option
def user_create(username: str, password: str | None, password_stdin: bool, name: str | None, email: str | None,
                email_verified: bool | None, pairs: tuple[str, ...], config_file: str | None,
                database_url: str | None, as_json: bool) -> None:
    """Create a user who can log in (their clinical access is set with `ostiary user access`)."""
    from ..store.identity import UserExists

    secret = _password(password, password_stdin)
    if not secret:
        raise click.UsageError("give --password or --password-stdin")
    settings = load(config_file, database_url=database_url)

    async def action(p: Provider) -> User:
        try:
            claims = _claims(name, email, email_verified, pairs)
            return await p.user_service.create(username, secret, claims)
        except UserExists:
            raise click.ClickException(f"a user {username!r} already exists") from None

    _show(with_provider(settings, action), as_json)


@user_group.command("list")
@config_option
@database_option
@json_option
def user_list(config_file: str | None, database_url: str | None, as_json: bool) -> None:
    """List users."""
    settings = load(config_file, database_url=database_url)

    async def action(p: Provider) -> list[User]:
        return list(await p.users.list())

    users = with_provider(settings, action, changes=False)
    if as_json:
        emit_json([{"sub": u.id, "username": u.username, "disabled": u.disabled} for u in users])
        return
    for u in users:
        click.echo(f"{u.username:24} {u.id:20} {'disabled' if u.disabled else ''}")


def _user_action(username: str, settings: Any, what: Any) -> User:
    async def action(p: Provider) -> User:
        return await what(p)  # type: ignore[no-any-return]

    return with_provider(settings, action)


@user_group.command("show")
@click.argument("username")
@config_option
@database_option
@json_option
def user_show(username: str, config_file: str | None, database_url: str | None, as_json: bool) -> None:
    """Show a user and their claims."""
    settings = load(config_file, database_url=database_url)

    async def action(p: Provider) -> User | None:
        return await p.users.by_username(username)

    user = with_provider(settings, action, changes=False)
    if user is None:
        raise click.ClickException(f"no user {username!r}")
    _show(user, as_json)


@user_group.command("update")
@click.argument("username")
@with_claim_options
@config_option
@database_option
@json_option
def user_update(username: str, name: str | None, email: str | None, email_verified: bool | None,
                pairs: tuple[str, ...], config_file: str | None, database_url: str | None,
                as_json: bool) -> None:
    """Change profile claims (a claim set to null is removed)."""
    settings = load(config_file, database_url=database_url)
    claims = _claims(name, email, email_verified, pairs)
    _show(_user_action(username, settings, lambda p: p.user_service.update_claims(username, claims)), as_json)


@user_group.command("set-password")
@click.argument("username")
@click.option("--password")
@click.option("--password-stdin", is_flag=True)
@config_option
@database_option
def user_set_password(username: str, password: str | None, password_stdin: bool, config_file: str | None,
                      database_url: str | None) -> None:
    """Set a new password; the user's pending password-reset links stop working."""
    secret = _password(password, password_stdin)
    if not secret:
        raise click.UsageError("give --password or --password-stdin")
    settings = load(config_file, database_url=database_url)
    _user_action(username, settings, lambda p: p.user_service.set_password(username, secret))
    click.echo(f"password of {username} changed; pending password-reset links no longer work")


async def _end_access(p: Provider, user_id: str, reason: str) -> None:
    """Sessions, grants and tokens end on every node within a second (docs/security.md: Users: lifecycle)."""
    from ..server.lifecycle import end_user_access

    await end_user_access(user_id, reason, sessions=p.sessions, tokens=p.tokens, changes=p.changes)


@user_group.command("disable")
@click.argument("username")
@config_option
@database_option
def user_disable(username: str, config_file: str | None, database_url: str | None) -> None:
    """Stop a user from logging in; their sessions, grants and tokens end on every node."""
    settings = load(config_file, database_url=database_url)

    async def action(p: Provider) -> User:
        user = await p.user_service.set_disabled(username, True)
        await _end_access(p, user.id, "disabled")
        return user

    _user_action(username, settings, action)
    click.echo(f"{username} disabled")


@user_group.command("enable")
@click.argument("username")
@config_option
@database_option
def user_enable(username: str, config_file: str | None, database_url: str | None) -> None:
    """Allow a disabled user to log in again."""
    settings = load(config_file, database_url=database_url)
    _user_action(username, settings, lambda p: p.user_service.set_disabled(username, False))
    click.echo(f"{username} enabled")


@user_group.command("delete")
@click.argument("username")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@config_option
@database_option
def user_delete(username: str, yes: bool, config_file: str | None, database_url: str | None) -> None:
    """Delete a user with their sessions and consents; their grants and tokens end on every node."""
    if not yes:
        click.confirm(f"Delete user {username}?", abort=True)
    settings = load(config_file, database_url=database_url)

    async def action(p: Provider) -> bool:
        user = await p.users.by_username(username)
        if user is None or not await p.users.delete(user.id):
            return False
        await _end_access(p, user.id, "deleted")
        return True

    if not with_provider(settings, action):
        raise click.ClickException(f"no user {username!r}")
    click.echo(f"deleted {username}")


@user_group.command("consents")
@click.argument("username")
@click.option("--revoke", "revoke_client", metavar="CLIENT_ID", help="Withdraw consent for this client.")
@config_option
@database_option
def user_consents(username: str, revoke_client: str | None, config_file: str | None, database_url: str | None) -> None:
    """List (or withdraw) what a user has allowed each client; withdrawing ends the client's tokens."""
    settings = load(config_file, database_url=database_url)

    async def action(p: Provider) -> dict[str, frozenset[str]]:
        user = await p.users.by_username(username)
        if user is None:
            raise click.ClickException(f"no user {username!r}")
        if revoke_client:
            await p.consents.revoke(user.id, revoke_client)
            await p.revoke_user_grants(user.id, revoke_client)
        return dict(await p.consents.list_for_user(user.id))

    for client_id, scopes in sorted(with_provider(settings, action).items()):
        click.echo(f"{client_id:24} {' '.join(sorted(scopes))}")
