"""The Starlette application: routes call the framework-free core; errors become RFC responses here."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.staticfiles import StaticFiles

from ..app.bootstrap import BootstrapReport, bootstrap, load_secret_key
from ..app.provider import Provider, open_provider
from ..config import Settings, load_settings
from ..server.requests import EndpointRequest, parse_form
from .account import account_routes
from .context import provider_of
from .cors import CorsMiddleware, name_client
from .demo import demo_routes
from .email_account import email_account_routes
from .errors import HTTP_ERROR_HANDLERS, ErrorMiddleware, json_response, parse_json_body
from .federation import federation_routes
from .federation_account import federation_account_routes
from .fhir_mount import FhirMount
from .home import home_routes
from .kinds import api_route, mount
from .limits import RequestLimitsMiddleware
from .pages import page_routes
from .passkeys import passkey_routes
from .password_reset import password_reset_routes
from .portal import portal_routes
from .proxies import TrustedProxies, TrustedProxyMiddleware
from .security_headers import SecurityHeadersMiddleware, hsts_value
from .session_routes import session_routes
from .smart_routes import smart_routes

__all__ = ["create_app", "make_app"]

log = logging.getLogger("ostiary")
PURGE_INTERVAL = 600.0
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


async def endpoint_request(request: Request, url: str, repeatable: frozenset[str] = frozenset()) -> EndpointRequest:
    body = await request.body()
    form, repeated = parse_form(body, request.headers.get("content-type"), repeatable=repeatable)
    req = EndpointRequest(endpoint_url=url, form=form, repeated=repeated,
                          authorization=request.headers.get("authorization"),
                          client_address=request.client.host if request.client else "")
    name_client(request.scope, req)  # CORS: the actual response is for this client's origins only
    return req


_RESOURCE = frozenset({"resource"})


async def token(request: Request) -> Response:
    p = provider_of(request)
    req = await endpoint_request(request, p.url("token_endpoint"), _RESOURCE)
    return json_response(await p.token_endpoint.handle(req), headers=NO_STORE)


async def introspect(request: Request) -> Response:
    p = provider_of(request)
    req = await endpoint_request(request, p.url("introspection_endpoint"))
    return json_response(await p.introspection.handle(req), headers=NO_STORE)


async def revoke(request: Request) -> Response:
    p = provider_of(request)
    req = await endpoint_request(request, p.url("revocation_endpoint"))
    await p.revocation.handle(req)
    return Response(status_code=200, headers=NO_STORE)


async def metadata(request: Request) -> Response:
    return json_response(provider_of(request).metadata, headers={"Cache-Control": "public, max-age=300"})


async def jwks(request: Request) -> Response:
    body = await provider_of(request).keyring.jwks_json()
    return Response(body, media_type="application/json", headers={"Cache-Control": "public, max-age=60"})


async def register(request: Request) -> Response:
    p = provider_of(request)
    body = await p.registration.register(request.headers.get("authorization"), await parse_json_body(request),
                                         request.client.host if request.client else "")
    return json_response(body, status=201, headers=NO_STORE)


async def client_configuration(request: Request) -> Response:
    p = provider_of(request)
    client_id = request.path_params["client_id"]
    auth = request.headers.get("authorization")
    if request.method == "GET":
        return json_response(await p.registration.read(client_id, auth), headers=NO_STORE)
    if request.method == "PUT":
        body = await p.registration.update(client_id, auth, await parse_json_body(request))
        await p.signal_change()  # RFC 7592 §2.2: the new metadata applies at once, on every node
        return json_response(body, headers=NO_STORE)
    await p.registration.delete(client_id, auth)
    await p.signal_change()
    return Response(status_code=204, headers=NO_STORE)


async def health(request: Request) -> Response:
    if not await provider_of(request).database.ping():
        return json_response({"status": "unavailable"}, status=503)
    return json_response({"status": "ok"})


def routes() -> list[BaseRoute]:
    return [
        api_route("/token", token, methods=["POST"]),
        api_route("/introspect", introspect, methods=["POST"]),
        api_route("/revoke", revoke, methods=["POST"]),
        api_route("/.well-known/oauth-authorization-server", metadata, methods=["GET"]),
        api_route("/.well-known/openid-configuration", metadata, methods=["GET"]),
        api_route("/jwks", jwks, methods=["GET"]),
        api_route("/register", register, methods=["POST"]),
        api_route("/register/{client_id}", client_configuration, methods=["GET", "PUT", "DELETE"]),
        api_route("/healthz", health, methods=["GET"]),
    ]


async def _purge_forever(provider: Provider) -> None:
    while True:
        await asyncio.sleep(PURGE_INTERVAL)
        try:
            await provider.tokens.purge_expired(int(time.time()))
            if provider.mail is not None:
                await provider.mail.links.store.purge_expired(int(time.time()))
        except Exception:  # a failed purge is retried next round; never kill the server for it
            log.exception("purging expired records failed")


def make_app(settings: Settings, *, run_bootstrap: bool = True,
             on_bootstrap: Callable[[BootstrapReport], None] | None = None) -> Starlette:
    """The ASGI app. With run_bootstrap, startup migrates and creates keys (one node at a time), then
    hands what it did to `on_bootstrap` (the serve banner, when storage lives in this process)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        provider = await open_provider(settings)
        if run_bootstrap:
            app.state.bootstrap_report = await bootstrap(provider)
            if on_bootstrap is not None:
                on_bootstrap(app.state.bootstrap_report)
        else:
            load_secret_key(provider)
            await provider.keyring.refresh(force=True)
        app.state.provider = provider
        await provider.watcher.poll()  # the first read: revoked users known before the first request
        purge = asyncio.create_task(_purge_forever(provider))
        watch = asyncio.create_task(provider.watcher.run())
        try:
            yield
        finally:
            purge.cancel()
            watch.cancel()
            await provider.aclose()

    demo = demo_routes() if settings.demo_enabled else []
    smart: list[BaseRoute] = []
    if settings.smart.enabled:
        smart = [*smart_routes(settings.smart.fhir_path), mount(settings.smart.fhir_path, FhirMount(), kind="fhir")]
    portal = portal_routes() if settings.portal.gateway_config else []
    static = mount("/static", StaticFiles(packages=[("ostiary.web", "static")]), kind="static", name="static")
    all_routes = [*home_routes(), *routes(), *page_routes(), *session_routes(), *account_routes(),
                  *passkey_routes(), *federation_routes(), *federation_account_routes(),
                  *demo, *smart, *portal, static,
                  *password_reset_routes(), *email_account_routes()]
    app = Starlette(routes=all_routes, lifespan=lifespan, exception_handlers=HTTP_ERROR_HANDLERS)
    app.add_middleware(RequestLimitsMiddleware, max_bytes=settings.http.max_body_bytes)
    app.add_middleware(ErrorMiddleware)
    app.add_middleware(CorsMiddleware, ttl=settings.cache_ttl,
                       fhir_path=settings.smart.fhir_path if settings.smart.enabled else "",
                       configured=settings.cors_origins)
    app.add_middleware(SecurityHeadersMiddleware, hsts=hsts_value(settings))
    if settings.trusted_proxies:
        app.add_middleware(TrustedProxyMiddleware, proxies=TrustedProxies(settings.trusted_proxies,
                                                                         settings.forwarded_header))
    app.state.settings = settings
    return app


def create_app() -> Starlette:
    """Factory for `uvicorn --factory` worker processes: settings from the environment."""
    run_bootstrap = os.environ.get("OSTIARY_BOOTSTRAP", "1") != "0"
    return make_app(load_settings(), run_bootstrap=run_bootstrap)
