"""`ostiary fhir load-sample` and `ostiary fhir-gateway`. Heavy imports happen inside the commands."""

from __future__ import annotations

import asyncio

import click

from ..cli.common import config_option, database_error, database_option, load

__all__ = ["fhir_gateway", "fhir_group"]


@click.group()
def fhir_group() -> None:
    """The built-in FHIR API's data."""


@fhir_group.command("load-sample")
@config_option
@database_option
@click.option("--seed", type=int, default=7, show_default=True, help="Seed of the synthetic data.")
def load_sample_command(config_file: str | None, database_url: str | None, seed: int) -> None:
    """Load synthetic sample patients and their records (idempotent: existing resources are kept)."""
    from ..store.sql.engine import make_engine, upgrade
    from .sample import load_sample
    from .store import FhirStore

    settings = load(config_file, database_url=database_url)

    async def run() -> int:
        engine = make_engine(settings.database_url)
        try:
            await upgrade(engine)
            return await load_sample(FhirStore(engine), seed)
        finally:
            await engine.dispose()

    try:
        added = asyncio.run(run())
    except OSError as exc:
        raise click.ClickException(f"cannot reach the database: {exc}") from None
    except Exception as exc:
        raise database_error(exc) from None
    click.echo(f"loaded {added} sample FHIR resources" if added else "the sample data is already loaded")


@click.command("fhir-gateway")
@click.option("--upstream", required=True, help="Base URL of the FHIR server to protect.")
@click.option("--issuer", required=True, help="Issuer whose access tokens are accepted (keys found by discovery).")
@click.option("--audience", help="Audience the tokens must carry (default: the gateway's public URL).")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8090, show_default=True)
@click.option("--upstream-token", envvar="OSTIARY_UPSTREAM_TOKEN",
              help="Bearer token sent to the upstream instead of none (env: OSTIARY_UPSTREAM_TOKEN).")
@click.option("--max-response-bytes", type=click.IntRange(1024), default=8 * 1024 * 1024, show_default=True,
              help="Upstream answers are checked resource by resource up to this size; larger ones are refused.")
@click.option("--introspection-client-id", envvar="OSTIARY_INTROSPECTION_CLIENT_ID",
              help="Introspect opaque tokens as this client (env: OSTIARY_INTROSPECTION_CLIENT_ID).")
@click.option("--introspection-client-secret", envvar="OSTIARY_INTROSPECTION_CLIENT_SECRET",
              help="Its secret (env: OSTIARY_INTROSPECTION_CLIENT_SECRET).")
@click.option("--introspection-without-aud", is_flag=True,
              help="Accept introspection answers that name no aud (only for an issuer that never sends it).")
@click.option("--cors-origin", "cors_origins", multiple=True,
              help="Origin of a browser app allowed CORS (repeatable), e.g. https://app.example.com.")
@click.option("--public-url", help="The gateway's own base URL, as apps see it (default: http://HOST:PORT). "
                                   "Register it with the issuer (smart.fhir_bases) so apps may use it as aud.")
def fhir_gateway(upstream: str, issuer: str, audience: str | None, host: str, port: int, upstream_token: str | None,
                 max_response_bytes: int, introspection_client_id: str | None, introspection_client_secret: str | None,
                 introspection_without_aud: bool, cors_origins: tuple[str, ...], public_url: str | None) -> None:
    """SMART on FHIR enforcement in front of any FHIR server."""
    import uvicorn

    from ..client.auth_methods import ClientSecretBasic
    from ..client.secret import Secret
    from ..resource.introspection import Introspection
    from ..resource.verifier import TokenVerifier
    from .gateway import make_gateway_app, verifier_authorizer

    introspection = None
    if introspection_client_id:
        if not introspection_client_secret:
            raise click.UsageError("--introspection-client-secret is needed with --introspection-client-id")
        introspection = Introspection(ClientSecretBasic(introspection_client_id, Secret(introspection_client_secret)),
                                      require_audience=not introspection_without_aud)
    public = (public_url or f"http://{host}:{port}").rstrip("/")
    verifier = TokenVerifier(issuer, audience or public, introspection=introspection)
    app = make_gateway_app(upstream, verifier_authorizer(verifier), upstream_token=upstream_token,
                           realm=public, max_response_bytes=max_response_bytes, cors_origins=cors_origins,
                           issuer=issuer, public_url=public)
    click.echo(f"Ostiary FHIR gateway on http://{host}:{port} -> {upstream} (tokens from {issuer})")
    from ..cli.http_protocol import GuardedHttpToolsProtocol  # a header-read deadline against slow clients

    uvicorn.run(app, host=host, port=port, log_level="info", proxy_headers=False, http=GuardedHttpToolsProtocol)
