"""Drives the browser side of the OpenID Connect flow in-process: authorize, login, consent, code, tokens.

A `Browser` is one httpx client with its own cookie jar (one person's browser); several may share an app.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import itertools
import re
import secrets
import warnings
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import orjson
import pytest
from argon2 import PasswordHasher
from joserfc import jwt as jose_jwt
from joserfc.jwk import KeySet

from tests.conftest import ISSUER, RunningApp, basic, settings_for, start_app

__all__ = [
    "ISSUER",
    "PASSWORD",
    "REDIRECT",
    "Browser",
    "Flow",
    "app_for",
    "audit_events",
    "basic",
    "browser",
    "csrf_of",
    "decode_jwt",
    "exchange",
    "form_fields",
    "id_token_at",
    "is_page",
    "json_of",
    "jwks_of",
    "make_rp",
    "make_user",
    "password_step",
    "pkce",
    "query_of",
    "run_flow",
    "sign_in_locally",
    "sqlite_only",
    "start_authorization",
    "tokens_for",
]

REDIRECT = "https://rp.example/cb"
PASSWORD = "correct horse battery"
_users = itertools.count(1)
_addresses = itertools.count(2)


def pkce() -> tuple[str, str]:
    """(code_verifier, S256 code_challenge) per RFC 7636 §4.1-4.2."""
    verifier = secrets.token_urlsafe(40)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html[:2000]
    return found.group(1)


def form_fields(html: str) -> dict[str, str]:
    """Hidden inputs of a page (form_post response, logout confirmation)."""
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', html))


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


class Browser(httpx.AsyncClient):
    """An httpx client on the app with a cookie jar of its own and its own client address."""

    def cookie(self, name: str) -> str | None:
        for c in self.cookies.jar:
            if c.name == name:
                return c.value
        return None


def browser(running: RunningApp, *, base_url: str = ISSUER) -> Browser:
    # A distinct address per browser so login throttling by address never couples tests.
    address = f"10.{next(_addresses) // 250 % 250}.{next(_addresses) % 250}.7"
    transport = httpx.ASGITransport(app=running.app, client=(address, 40000))
    return Browser(transport=transport, base_url=base_url)


_FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


async def make_user(running: RunningApp, **claims: Any) -> Any:
    # Cheap argon2 parameters for this app only (the defaults cost ~0.3 s per hash and per login).
    running.provider.user_service._hasher = _FAST_HASHER
    claims.setdefault("name", "Alice Example")
    claims.setdefault("email", "alice@example.com")
    claims.setdefault("email_verified", True)
    return await running.provider.user_service.create(f"user{next(_users)}-{secrets.token_hex(3)}", PASSWORD,
                                                      claims)


async def make_rp(running: RunningApp, **metadata: Any) -> tuple[str, str | None]:
    """A relying party: authorization_code + refresh_token, redirect REDIRECT."""
    metadata.setdefault("grant_types", ["authorization_code", "refresh_token"])
    metadata.setdefault("redirect_uris", [REDIRECT])
    metadata.setdefault("client_name", "Relying Party")
    return await running.add_client(**metadata)


@dataclass
class Flow:
    """What one authorization produced."""

    client_id: str
    secret: str | None
    verifier: str | None
    response: httpx.Response  # the final response towards the client (303 or form_post page)
    params: dict[str, str]  # the authorization response parameters
    pages: list[str] = field(default_factory=list)  # interaction steps shown: login, consent, select_account

    @property
    def code(self) -> str:
        return self.params["code"]

    def token_form(self, **extra: str) -> dict[str, str]:
        form = {"grant_type": "authorization_code", "code": self.code, "redirect_uri": REDIRECT}
        if self.verifier:
            form["code_verifier"] = self.verifier
        form.update(extra)
        return form

    def auth(self) -> dict[str, str]:
        return basic(self.client_id, self.secret) if self.secret else {}


def _step_of(html: str) -> str:
    if 'name="password"' in html:
        return "login"
    if 'name="choice"' in html:
        return "select_account"
    if 'name="decision" value="approve"' in html:
        return "consent"
    return "other"


async def run_flow(
    b: Browser, client_id: str, secret: str | None, user: Any, *, method: str = "GET", approve: bool = True,
    use_pkce: bool = True, redirect_uri: str = REDIRECT, scope: str = "openid profile email offline_access",
    consent_claims: tuple[str, ...] = (), **params: str,
) -> Flow:
    """Authorize, then answer every page (log in as `user`, consent, continue) until the client is answered.

    On the consent page, the claims in `consent_claims` are ticked (claims asked for one by one).
    """
    verifier = None
    query: dict[str, str] = {"client_id": client_id, "redirect_uri": redirect_uri, "response_type": "code",
                             "scope": scope, "state": secrets.token_urlsafe(8), "nonce": secrets.token_urlsafe(8)}
    if use_pkce:
        verifier, challenge = pkce()
        query.update(code_challenge=challenge, code_challenge_method="S256")
    query.update(params)
    query = {k: v for k, v in query.items() if v is not None}
    if method == "POST":
        r = await b.post("/authorize", data=query)
    else:
        r = await b.get("/authorize", params=query)
    pages: list[str] = []
    for _ in range(10):
        if r.status_code == 303 and r.headers["location"].startswith("/interaction/"):
            r = await b.get(r.headers["location"])
            continue
        if r.status_code != 200 or "/interaction/" not in str(r.url) or 'id="response"' in r.text:
            break
        step = _step_of(r.text)
        pages.append(step)
        base = str(r.url.path)
        csrf = csrf_of(r.text)
        if step == "login":
            r = await b.post(base + "/login", data={"csrf_token": csrf, "username": user.username,
                                                    "password": PASSWORD})
        elif step == "consent":
            r = await b.post(base + "/consent", data={"csrf_token": csrf,
                                                      "decision": "approve" if approve else "deny",
                                                      **{f"claim.{c}": "yes" for c in consent_claims}})
        elif step == "select_account":
            r = await b.post(base + "/select", data={"csrf_token": csrf, "choice": "continue"})
        else:
            raise AssertionError(r.text[:2000])
    if r.status_code == 303:
        out = query_of(r.headers["location"])
    elif r.status_code == 200 and 'id="response"' in r.text:
        out = form_fields(r.text)
    else:
        raise AssertionError(f"{r.status_code} {r.headers} {r.text[:2000]}")
    return Flow(client_id, secret, verifier, r, out, pages)


async def start_authorization(b: httpx.AsyncClient, client_id: str, *, scope: str = "openid",
                              **extra: str) -> tuple[str, str]:
    """GET /authorize with PKCE: (the location it answers with, the code_verifier)."""
    verifier, challenge = pkce()
    params = {"client_id": client_id, "redirect_uri": REDIRECT, "response_type": "code", "scope": scope,
              "state": "s1", "code_challenge": challenge, "code_challenge_method": "S256", **extra}
    r = await b.get("/authorize", params=params)
    assert r.status_code == 303, r.text[:500]
    return r.headers["location"], verifier


async def password_step(b: httpx.AsyncClient, path: str, username: str) -> str:
    """Sign in with the password on the interaction's login page; the next location."""
    page = await b.get(path)
    assert 'name="password"' in page.text, page.text[:500]
    r = await b.post(path + "/login", data={"csrf_token": csrf_of(page.text), "username": username,
                                            "password": PASSWORD})
    assert r.status_code == 303, r.text[:500]
    return r.headers["location"]


async def id_token_at(b: httpx.AsyncClient, path: str, client_id: str, secret: str, verifier: str) -> dict[str, Any]:
    """Follow the interaction at `path` to the code (no page left to answer), redeem it: the ID token's claims."""
    r = await b.get(path)
    assert r.status_code == 303 and r.headers["location"].startswith(REDIRECT), r.text[:800]
    code = query_of(r.headers["location"])["code"]
    r = await b.post("/token", data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
                                     "code_verifier": verifier}, auth=(client_id, secret))
    assert r.status_code == 200, r.text
    return (await decode_jwt(b, r.json()["id_token"]))[1]


async def sign_in_locally(b: httpx.AsyncClient, username: str, return_to: str = "/account",
                          **extra: str) -> tuple[str, httpx.Response]:
    """The local sign-in (GET /signin) with the password: (interaction path, what its page answers next)."""
    r = await b.get("/signin", params={"return_to": return_to, **extra})
    assert r.status_code == 303 and r.headers["location"].startswith("/interaction/"), r.text[:500]
    path = r.headers["location"]
    await password_step(b, path, username)
    return path, await b.get(path)


async def exchange(b: httpx.AsyncClient, flow: Flow, **extra: str) -> httpx.Response:
    return await b.post("/token", data=flow.token_form(**extra), headers=flow.auth())


async def tokens_for(running: RunningApp, b: Browser, user: Any, **params: str) -> tuple[Flow, dict[str, Any]]:
    """A fresh confidential RP, a flow, and its token response (asserted 200)."""
    cid, secret = await make_rp(running, scope=params.pop("client_scope", ""))
    flow = await run_flow(b, cid, secret, user, **params)
    r = await exchange(b, flow)
    assert r.status_code == 200, r.text
    return flow, dict(r.json())


async def jwks_of(b: httpx.AsyncClient) -> KeySet:
    r = await b.get("/jwks")
    assert r.status_code == 200
    return KeySet.import_key_set(r.json())


async def decode_jwt(b: httpx.AsyncClient, token: str, alg: str | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Verify `token` against the server's /jwks with joserfc; returns (header, claims)."""
    header = orjson.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    keys = await jwks_of(b)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # joserfc flags "EdDSA" as deprecated by RFC 9864; OIDC still uses it
        decoded = jose_jwt.decode(token, keys, algorithms=[alg or header["alg"]])
    return dict(decoded.header), dict(decoded.claims)


@contextlib.asynccontextmanager
async def app_for(database_url: str, **overrides: Any) -> AsyncIterator[RunningApp]:
    """A second app on the module's database with other settings."""
    gen = start_app(settings_for(database_url, **overrides))
    running = await gen.__anext__()
    try:
        yield running
    finally:
        with contextlib.suppress(StopAsyncIteration):
            await gen.__anext__()


def audit_events(caplog: pytest.LogCaptureFixture, event: str) -> list[dict[str, Any]]:
    """The audit records named `event` captured so far (set caplog to INFO on ostiary.audit first)."""
    records = [orjson.loads(r.getMessage()) for r in caplog.records if r.name == "ostiary.audit"]
    return [e for e in records if e["event"] == event]


def sqlite_only(database_url: str) -> None:
    """Sleep-based or second-app tests run once, on SQLite, to keep the suite fast (same SQL on both)."""
    if not database_url.startswith("sqlite"):
        pytest.skip("timing test: run on SQLite only")


def is_page(r: httpx.Response, status: int = 400) -> bool:
    """An HTML error page, never a redirect."""
    return r.status_code == status and "location" not in r.headers and r.headers["content-type"].startswith(
        "text/html")


def json_of(r: httpx.Response) -> Mapping[str, Any]:
    return dict(r.json())
