"""Throttling that cannot be turned against users (docs/security.md, throttling): invalid_client
per client and address answered 429 with Retry-After, never delaying credentials that verify; the
client address taken from X-Forwarded-For only when a trusted proxy sends it; logins answered 429
when the password-hashing queue is full."""

from __future__ import annotations

import secrets

import httpx
from sqlalchemy import select

from ostiary.config import ThrottleSettings
from ostiary.server.credentials import digest
from ostiary.server.hashing import HashingBusy
from ostiary.store.sql.schema import login_failures
from tests.conftest import REDIS_URL, needs_redis

from ._oidc_flow import PASSWORD, app_for, basic, csrf_of, make_rp, make_user, pkce, sqlite_only

FAILURES = 3


def _client_from(running, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=running.app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url=str(running.http.base_url))


async def _token(http: httpx.AsyncClient, cid: str, secret: str, **headers: str) -> httpx.Response:
    return await http.post("/token", data={"grant_type": "client_credentials"},
                           headers={**basic(cid, secret), **headers})


def _throttled(r: httpx.Response) -> int:
    assert r.status_code == 429 and r.json()["error"] == "invalid_client", r.text
    assert r.headers["cache-control"] == "no-store"
    return int(r.headers["retry-after"])


async def test_rfc6749_5_2_repeated_invalid_client_is_429_but_verified_credentials_never_wait(database_url):
    async with app_for(database_url, throttle=ThrottleSettings(client_auth_failures=FAILURES)) as r:
        cid, secret = await r.add_client(scope="api:read")
        assert secret is not None
        async with _client_from(r, "198.51.100.7") as guesser, _client_from(r, "198.51.100.8") as other:
            for _ in range(FAILURES):
                assert (await _token(guesser, cid, "wrong")).status_code == 401
            assert _throttled(await _token(guesser, cid, "wrong")) >= 1
            for path in ("/introspect", "/revoke"):  # the same key at the other client-auth endpoints
                resp = await guesser.post(path, data={"token": "x"}, headers=basic(cid, "wrong"))
                _throttled(resp)
            # the right secret from the very same address goes through at once
            assert (await _token(guesser, cid, secret)).status_code == 200
            # another address is not affected by the guesses
            assert (await _token(other, cid, "wrong")).status_code == 401


async def test_x_forwarded_for_counts_only_from_a_trusted_proxy(database_url):
    settings = {"throttle": ThrottleSettings(client_auth_failures=FAILURES), "trusted_proxies": ("10.0.0.0/8",)}
    async with app_for(database_url, **settings) as r:
        cid, _ = await r.add_client(scope="api:read")
        async with _client_from(r, "10.0.0.2") as proxy, _client_from(r, "198.51.100.9") as direct:
            for _ in range(FAILURES):
                await _token(proxy, cid, "wrong", **{"X-Forwarded-For": "203.0.113.1"})
            _throttled(await _token(proxy, cid, "wrong", **{"X-Forwarded-For": "203.0.113.1"}))
            # behind the proxy, another client is another address
            resp = await _token(proxy, cid, "wrong", **{"X-Forwarded-For": "203.0.113.2"})
            assert resp.status_code == 401
            # not through the proxy, the header is ignored: a fresh spoofed value escapes nothing
            for n in range(FAILURES):
                await _token(direct, cid, "wrong", **{"X-Forwarded-For": f"203.0.113.{100 + n}"})
            _throttled(await _token(direct, cid, "wrong", **{"X-Forwarded-For": "203.0.113.200"}))


async def test_rfc7239_forwarded_header_passed_through_a_proxy_that_sets_x_forwarded_for_is_ignored(database_url):
    """Attack: nginx, Caddy and Traefik append to X-Forwarded-For but pass a client's own `Forwarded`
    header through untouched; reading it first let every guess claim a fresh address and never be
    throttled. Only the header the proxies are configured to set is read (X-Forwarded-For by default)."""
    settings = {"throttle": ThrottleSettings(client_auth_failures=FAILURES), "trusted_proxies": ("10.0.0.0/8",)}
    # (the header the proxy sets, its real client value; the other header: the client's own, new each time)
    for header, real, spoofed, value in (("x-forwarded-for", "198.51.100.7", "Forwarded", "for=203.0.113.{}"),
                                         ("forwarded", "for=198.51.100.8", "X-Forwarded-For", "203.0.113.{}")):
        async with app_for(database_url, **settings, forwarded_header=header) as r:
            cid, _ = await r.add_client(scope="api:read")
            async with _client_from(r, "10.0.0.2") as proxy:
                for n in range(FAILURES):
                    await _token(proxy, cid, "wrong", **{header: real, spoofed: value.format(n)})
                _throttled(await _token(proxy, cid, "wrong", **{header: real, spoofed: value.format(99)}))


async def test_login_is_answered_429_when_the_password_hashing_queue_is_full(database_url, monkeypatch):
    async with app_for(database_url) as r:
        user = await make_user(r)
        cid, _ = await make_rp(r)

        async def busy(*args: object, **kwargs: object) -> object:
            raise HashingBusy

        async with _client_from(r, "198.51.100.20") as b:
            path, csrf = await _login_form(b, cid)
            form = {"csrf_token": csrf, "username": user.username, "password": PASSWORD}
            with monkeypatch.context() as patch:
                patch.setattr(r.provider.user_service._limits.hashing, "run", busy)
                resp = await b.post(path + "/login", data=form)
            assert resp.status_code == 429, resp.text
            resp = await b.post(path + "/login", data=form)  # the queue drained: the same login works
            assert resp.status_code == 303, resp.text


async def _login_form(b: httpx.AsyncClient, cid: str) -> tuple[str, str]:
    params = {"client_id": cid, "redirect_uri": "https://rp.example/cb", "response_type": "code",
              "scope": "openid", "state": secrets.token_hex(4), "code_challenge": pkce()[1],
              "code_challenge_method": "S256"}
    path = (await b.get("/authorize", params=params)).headers["location"]
    return path, csrf_of((await b.get(path)).text)


async def test_rfc9700_guessing_from_one_address_does_not_lock_the_owner_out_elsewhere(database_url):
    async with app_for(database_url) as r:
        victim = await make_user(r)
        cid, _ = await make_rp(r)
        attempts = r.settings.oidc.login_attempts
        async with _client_from(r, "203.0.113.66") as attacker, _client_from(r, "198.51.100.30") as owner:
            path, csrf = await _login_form(attacker, cid)
            guess = {"csrf_token": csrf, "username": victim.username, "password": "guess"}
            statuses = [(await attacker.post(path + "/login", data=guess)).status_code for _ in range(attempts + 3)]
            assert statuses == [400] * attempts + [429] * 3
            path, csrf = await _login_form(owner, cid)
            resp = await owner.post(path + "/login", data={"csrf_token": csrf, "username": victim.username,
                                                           "password": PASSWORD})
            assert resp.status_code == 303, resp.text  # the owner, elsewhere, is not delayed


@needs_redis
async def test_invalid_client_throttle_lives_in_redis_when_configured(database_url):
    sqlite_only(database_url)
    settings = {"throttle": ThrottleSettings(client_auth_failures=FAILURES), "redis_url": REDIS_URL}
    async with app_for(database_url, **settings) as r:
        cid, secret = await r.add_client(scope="api:read")
        assert secret is not None
        async with _client_from(r, "198.51.100.40") as guesser:
            for _ in range(FAILURES):
                assert (await _token(guesser, cid, "wrong")).status_code == 401
            _throttled(await _token(guesser, cid, "wrong"))
            assert (await _token(guesser, cid, secret)).status_code == 200
        key = "client:" + digest(f"{cid}\n198.51.100.40")
        async with r.provider.engine.connect() as conn:  # nothing was counted in the database
            row = (await conn.execute(select(login_failures.c.key).where(login_failures.c.key == key))).first()
        assert row is None
