"""`ostiary client`: register and manage clients (the same validation as RFC 7591 registration)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
import orjson

from .common import config_option, database_option, emit_json, json_option, load, with_provider

if TYPE_CHECKING:
    from ..app.provider import Provider
    from ..store import Client


F = TypeVar("F", bound=Callable[..., Any])


def _metadata_options(create: bool) -> Callable[[F], F]:
    """The options that set client metadata; on update, an option left out keeps its value."""

    def decorate(fn: F) -> F:
        opts = [
            click.option("--name", "client_name", help="Human-readable client name."),
            click.option("--grant-type", "grant_types", multiple=True,
                         help="Grant type (repeatable), e.g. client_credentials, authorization_code."),
            click.option("--scope", help="Space-separated scopes the client may be granted."),
            click.option("--redirect-uri", "redirect_uris", multiple=True, help="Redirect URI (repeatable)."),
            click.option("--post-logout-redirect-uri", "post_logout_redirect_uris", multiple=True,
                         help="Post-logout redirect URI (repeatable)."),
            click.option("--auth-method", "token_endpoint_auth_method",
                         type=click.Choice(["client_secret_basic", "client_secret_post", "client_secret_jwt",
                                            "private_key_jwt", "none"]),
                         help="token_endpoint_auth_method (default client_secret_basic)."),
            click.option("--signing-alg", "token_endpoint_auth_signing_alg",
                         help="Required JWS alg for client assertions (RS256, ES256, HS256, ...)."),
            click.option("--token-format", "access_token_format", type=click.Choice(["jwt", "opaque"]),
                         help="Access-token format for this client (default: the server's)."),
            click.option("--token-lifetime", "access_token_lifetime", type=int,
                         help="Access-token lifetime in seconds (default: the server's)."),
            click.option("--audience", "audiences", multiple=True,
                         help="Resource (RFC 8707) the client may ask for; the first is the default aud. "
                              "With --resource-server: an audience the API serves."),
            click.option("--resource-server/--no-resource-server", "resource_server", default=None,
                         help="The client is an API: it may introspect access tokens whose aud is one of "
                              "its --audience values (RFC 7662 §2.1)."),
            click.option("--trust-level", type=click.Choice(["admin", "registrant", "open", "portal"]),
                         help="Which scope rules apply (docs/security.md); default admin, or as registered."),
            click.option("--skip-consent/--no-skip-consent", "skip_consent", default=None,
                         help="First-party app: users are not asked for consent."),
            click.option("--system-scopes-with-secret/--no-system-scopes-with-secret", "system_scopes_with_secret",
                         default=None, help="Allow system/ scopes with a secret (default: private_key_jwt only)."),
            click.option("--openid-on-client-credentials", type=click.Choice(["accept", "ignore", "reject", "default"]),
                         help="What scope=openid does on client_credentials for this client: keep it, drop it "
                              "or refuse it (invalid_scope); 'default' follows the server setting."),
            click.option("--minimum-acr", "minimum_acr",
                         help="The sign-in level (acr) this app's users need at least: urn:ostiary:acr:mfa, "
                              "phr, ... (docs/sign-in.md)."),
            click.option("--subject-type", type=click.Choice(["public", "pairwise"]),
                         help="The sub this client sees: the user's id, or its own per sector (OIDC Core §8)."),
            click.option("--sector-identifier-uri",
                         help="https URL of a JSON array listing the client's redirect URIs (its pairwise sector)."),
            click.option("--jwks-file", type=click.Path(exists=True, dir_okay=False),
                         help="JWKS file with the client's public keys (private_key_jwt)."),
            click.option("--jwks-uri", help="URL of the client's JWKS (private_key_jwt)."),
        ]
        if create:
            opts.append(click.option("--client-id", help="Choose the client_id (default: generated)."))
            opts.append(click.option(
                "--client-secret", envvar="OSTIARY_NEW_CLIENT_SECRET",
                help="Import an existing secret instead of generating one (migrations only)."))
        for opt in reversed(opts):
            fn = opt(fn)
        return fn

    return decorate


_LIST_FIELDS = ("grant_types", "redirect_uris", "post_logout_redirect_uris", "audiences")


def _collect(options: dict[str, Any]) -> dict[str, Any]:
    """Metadata from the options actually given (empty tuples and None mean 'not given')."""
    out: dict[str, Any] = {}
    for name, value in options.items():
        if name in _LIST_FIELDS:
            if value:
                out[name] = list(value)
        elif value is not None:
            out[name] = value
    jwks_file = out.pop("jwks_file", None)
    if jwks_file:
        try:
            out["jwks"] = orjson.loads(Path(jwks_file).read_bytes())
        except orjson.JSONDecodeError:
            raise click.ClickException(f"{jwks_file} is not JSON") from None
    return out


def _server_defaults(metadata: dict[str, Any]) -> dict[str, Any]:
    """`metadata` without the per-client choices set to 'default' (they then follow the server setting)."""
    return {k: v for k, v in metadata.items() if not (k == "openid_on_client_credentials" and v == "default")}


def _show(client: Client, secret: str | None, as_json: bool) -> None:
    from ..server.registration import describe

    data = describe(client)
    if secret:
        data["client_secret"] = secret
    if as_json:
        emit_json(data)
        return
    for key, value in data.items():
        shown = " ".join(value) if isinstance(value, list) else value
        click.echo(f"{key:28} {shown}")
    if secret:
        click.secho("\nThe client secret is shown only now: store it safely.", fg="yellow", err=True)


@click.group()
def client_group() -> None:
    """Register and manage OAuth clients."""


@client_group.command("create")
@click.argument("name", required=False)
@_metadata_options(create=True)
@config_option
@database_option
@json_option
def client_create(name: str | None, config_file: str | None, database_url: str | None, as_json: bool,
                  client_id: str | None, client_secret: str | None, **options: Any) -> None:
    """Register a client named NAME. The secret (server-generated, 256-bit) is printed once."""
    settings = load(config_file, database_url=database_url)
    metadata = _server_defaults(_collect(options))
    if name:
        metadata.setdefault("client_name", name)
    metadata.setdefault("grant_types", ["client_credentials"])

    async def action(p: Provider) -> tuple[Client, str | None]:
        from ..store import ClientExists

        try:
            client, issued = await p.registry.create(metadata, client_id=client_id, client_secret=client_secret)
        except ClientExists:
            raise click.ClickException(f"a client {client_id!r} already exists") from None
        return client, issued.client_secret

    client, secret = with_provider(settings, action)
    _show(client, secret, as_json)


@client_group.command("list")
@config_option
@database_option
@json_option
def client_list(config_file: str | None, database_url: str | None, as_json: bool) -> None:
    """List clients."""
    settings = load(config_file, database_url=database_url)

    async def action(p: Provider) -> list[Client]:
        return list(await p.clients.list())

    clients = with_provider(settings, action, changes=False)
    if as_json:
        from ..server.registration import describe

        emit_json([describe(c) for c in clients])
        return
    for c in clients:
        click.echo(f"{c.client_id:24} {c.token_endpoint_auth_method:20} {','.join(c.grant_types):40} "
                   f"{c.client_name}")


def _get(settings: Any, client_id: str) -> Client:
    async def action(p: Provider) -> Client | None:
        return await p.clients.get(client_id)

    client = with_provider(settings, action, changes=False)
    if client is None:
        raise click.ClickException(f"no client {client_id!r}")
    return client


@client_group.command("show")
@click.argument("client_id")
@config_option
@database_option
@json_option
def client_show(client_id: str, config_file: str | None, database_url: str | None, as_json: bool) -> None:
    """Show one client's metadata."""
    _show(_get(load(config_file, database_url=database_url), client_id), None, as_json)


@client_group.command("update")
@click.argument("client_id")
@_metadata_options(create=False)
@config_option
@database_option
@json_option
def client_update(client_id: str, config_file: str | None, database_url: str | None, as_json: bool,
                  **options: Any) -> None:
    """Change a client's metadata; options not given keep their values."""
    from ..server.registration import describe

    settings = load(config_file, database_url=database_url)
    changes = _collect(options)

    async def action(p: Provider) -> tuple[Client, str | None]:
        current = await p.clients.get(client_id)
        if current is None:
            raise click.ClickException(f"no client {client_id!r}")
        metadata = _server_defaults({**describe(current), **changes})
        client, issued = await p.registry.update(client_id, metadata)
        return client, issued.client_secret

    client, secret = with_provider(settings, action)
    _show(client, secret, as_json)


@client_group.command("delete")
@click.argument("client_id")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@config_option
@database_option
def client_delete(client_id: str, yes: bool, config_file: str | None, database_url: str | None) -> None:
    """Delete a client; its tokens stop being active."""
    settings = load(config_file, database_url=database_url)
    if not yes:
        click.confirm(f"Delete client {client_id}?", abort=True)

    async def action(p: Provider) -> bool:
        return await p.registry.delete(client_id)

    if not with_provider(settings, action):
        raise click.ClickException(f"no client {client_id!r}")
    click.echo(f"deleted {client_id}")


@client_group.command("rotate-secret")
@click.argument("client_id")
@config_option
@database_option
@json_option
def client_rotate_secret(client_id: str, config_file: str | None, database_url: str | None, as_json: bool) -> None:
    """Issue a new client secret; the old one stops working (within the cache time of running nodes)."""
    settings = load(config_file, database_url=database_url)

    async def action(p: Provider) -> tuple[Client, str]:
        return await p.registry.rotate_secret(client_id)

    client, secret = with_provider(settings, action)
    if as_json:
        emit_json({"client_id": client.client_id, "client_secret": secret})
    else:
        click.echo(f"client_id      {client.client_id}\nclient_secret  {secret}")
