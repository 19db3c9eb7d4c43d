"""The token endpoint for codes (RFC 6749 §4.1.3, RFC 7636 §4.6, OIDC Core §3.1.3) and ID tokens (§2, §3.1.3.6-7)."""

from __future__ import annotations

import asyncio
import base64
import hashlib

import orjson
import pytest

from ostiary.config import OidcSettings

from ._oidc_flow import (
    ISSUER,
    REDIRECT,
    app_for,
    basic,
    browser,
    decode_jwt,
    exchange,
    make_rp,
    make_user,
    pkce,
    run_flow,
    sqlite_only,
)


def assert_grant_error(r, error: str = "invalid_grant") -> None:
    assert r.status_code in (400, 401), r.text
    assert r.json()["error"] == error, r.text
    assert r.headers["cache-control"] == "no-store"


async def _introspect(running, token: str) -> bool:
    """Whether a resource server for the token's audience is told it is active (RFC 7662 §2.1)."""
    cid, secret = await running.add_client(scope="", resource_server=True, audiences=[ISSUER])
    r = await running.http.post("/introspect", data={"token": token}, headers=basic(cid, secret))
    assert r.status_code == 200
    return bool(r.json()["active"])


async def test_rfc6749_4_1_3_code_gives_tokens_with_no_store(running):
    user = await make_user(running)
    cid, secret = await make_rp(running)
    async with browser(running) as b:
        r = await exchange(b, await run_flow(b, cid, secret, user))
        assert r.status_code == 200
        assert r.headers["cache-control"] == "no-store" and r.headers["pragma"] == "no-cache"
        body = r.json()
        assert body["token_type"] == "Bearer" and body["expires_in"] > 0
        assert {"access_token", "id_token", "refresh_token", "scope"} <= set(body)
        assert set(body["scope"].split()) == {"openid", "profile", "email", "offline_access"}


async def test_rfc6749_4_1_2_code_is_single_use_and_replay_revokes_its_tokens(running):
    user = await make_user(running)
    cid, secret = await make_rp(running)
    async with browser(running) as b:
        flow = await run_flow(b, cid, secret, user)
        body = (await exchange(b, flow)).json()
        assert await _introspect(running, body["access_token"])
        r = await b.get("/userinfo", headers={"Authorization": "Bearer " + body["access_token"]})
        assert r.status_code == 200
        assert_grant_error(await exchange(b, flow))
        assert not await _introspect(running, body["access_token"])
        assert not await _introspect(running, body["refresh_token"])
        r = await b.get("/userinfo", headers={"Authorization": "Bearer " + body["access_token"]})
        assert r.status_code == 401 and 'error="invalid_token"' in r.headers["www-authenticate"]
        r = await b.post("/token", data={"grant_type": "refresh_token", "refresh_token": body["refresh_token"]},
                         headers=basic(cid, secret))
        assert_grant_error(r)


async def test_rfc6749_4_1_3_code_is_bound_to_its_client(running):
    user = await make_user(running)
    cid, secret = await make_rp(running)
    other, other_secret = await make_rp(running)
    async with browser(running) as b:
        flow = await run_flow(b, cid, secret, user)
        assert_grant_error(await b.post("/token", data=flow.token_form(), headers=basic(other, other_secret)))


async def test_rfc6749_4_1_3_redirect_uri_must_match_the_authorization_request(running):
    user = await make_user(running)
    second = "https://rp.example/cb2"
    cid, secret = await make_rp(running, redirect_uris=[REDIRECT, second])
    async with browser(running) as b:
        flow = await run_flow(b, cid, secret, user)
        assert_grant_error(await exchange(b, flow, redirect_uri=second))
        flow = await run_flow(b, cid, secret, user)
        form = flow.token_form()
        del form["redirect_uri"]
        assert_grant_error(await b.post("/token", data=form, headers=flow.auth()))


async def test_rfc7636_4_6_code_verifier_must_match(running):
    user = await make_user(running)
    cid, secret = await make_rp(running)
    async with browser(running) as b:
        flow = await run_flow(b, cid, secret, user)
        assert_grant_error(await exchange(b, flow, code_verifier=pkce()[0]))
        flow = await run_flow(b, cid, secret, user)
        form = flow.token_form()
        del form["code_verifier"]
        assert_grant_error(await b.post("/token", data=form, headers=flow.auth()))
        flow = await run_flow(b, cid, secret, user)
        assert_grant_error(await exchange(b, flow, code_verifier="too-short"))


async def test_rfc9700_4_8_2_code_verifier_without_code_challenge_is_refused(database_url):
    async with app_for(database_url, oidc=OidcSettings(pkce_required=False)) as r:
        user = await make_user(r)
        cid, secret = await make_rp(r)
        async with browser(r) as b:
            flow = await run_flow(b, cid, secret, user, use_pkce=False)
            assert_grant_error(await exchange(b, flow, code_verifier=pkce()[0]))


async def test_rfc6749_4_1_2_expired_code_is_invalid_grant(database_url):
    sqlite_only(database_url)
    async with app_for(database_url, oidc=OidcSettings(code_lifetime=1)) as r:
        user = await make_user(r)
        cid, secret = await make_rp(r)
        async with browser(r) as b:
            flow = await run_flow(b, cid, secret, user)
            await asyncio.sleep(2.05)
            assert_grant_error(await exchange(b, flow))


async def test_rfc6749_4_1_3_unknown_or_missing_code(running):
    cid, secret = await make_rp(running)
    base = {"grant_type": "authorization_code", "redirect_uri": REDIRECT, "code_verifier": pkce()[0]}
    assert_grant_error(await running.http.post("/token", data={**base, "code": "nope"}, headers=basic(cid, secret)))
    assert_grant_error(await running.http.post("/token", data=base, headers=basic(cid, secret)), "invalid_request")


async def test_rfc7636_public_client_with_pkce_needs_no_secret(running):
    user = await make_user(running)
    cid, _ = await make_rp(running, token_endpoint_auth_method="none")
    async with browser(running) as b:
        flow = await run_flow(b, cid, None, user)
        r = await b.post("/token", data=flow.token_form(client_id=cid))
        assert r.status_code == 200, r.text
        assert {"access_token", "id_token", "refresh_token"} <= set(r.json())


async def test_rfc6749_3_2_1_public_client_code_cannot_be_redeemed_without_client_id(running):
    user = await make_user(running)
    cid, _ = await make_rp(running, token_endpoint_auth_method="none")
    async with browser(running) as b:
        flow = await run_flow(b, cid, None, user)
        r = await b.post("/token", data=flow.token_form())
        assert r.status_code in (400, 401) and r.json()["error"] in ("invalid_client", "invalid_request")


def _at_hash(token: str, alg: str) -> str:
    hasher = hashlib.sha512 if alg == "EdDSA" else {"256": hashlib.sha256, "384": hashlib.sha384,
                                                    "512": hashlib.sha512}[alg[-3:]]
    digest = hasher(token.encode()).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode()


async def test_oidc_core_2_id_token_has_required_claims(running):
    user = await make_user(running)
    cid, secret = await make_rp(running)
    async with browser(running) as b:
        flow = await run_flow(b, cid, secret, user, nonce="n-0S6")
        body = (await exchange(b, flow)).json()
        header, claims = await decode_jwt(b, body["id_token"])
        assert header["typ"] == "JWT" and header["alg"] == "RS256"  # OIDC Core §3.1.3.7 default
        assert header["kid"]
        assert claims["iss"] == ISSUER and claims["sub"] == user.id
        assert claims["aud"] == cid or claims["aud"] == [cid]
        assert claims["azp"] == cid and claims["nonce"] == "n-0S6"
        assert claims["iat"] <= claims["exp"] and claims["exp"] > claims["iat"]
        assert isinstance(claims["auth_time"], int) and claims["auth_time"] <= claims["iat"]
        assert claims["sid"] and claims["amr"] == ["pwd"]
        assert claims["at_hash"] == _at_hash(body["access_token"], header["alg"])
        # Without `claims` or a profile scope request for the ID token, profile stays at userinfo.
        assert "email" not in claims


async def test_oidc_core_3_1_3_6_no_nonce_when_none_was_sent(running):
    user = await make_user(running)
    cid, secret = await make_rp(running)
    async with browser(running) as b:
        flow = await run_flow(b, cid, secret, user, nonce=None)
        _, claims = await decode_jwt(b, (await exchange(b, flow)).json()["id_token"])
        assert "nonce" not in claims


@pytest.mark.parametrize("alg", ["ES256", "RS256", "PS256", "EdDSA"])
async def test_oidc_core_3_1_3_7_id_token_signed_with_the_clients_registered_alg(running, alg):
    user = await make_user(running)
    cid, secret = await make_rp(running, id_token_signed_response_alg=alg)
    async with browser(running) as b:
        body = (await exchange(b, await run_flow(b, cid, secret, user))).json()
        header, claims = await decode_jwt(b, body["id_token"], alg)
        assert header["alg"] == alg and header["typ"] == "JWT"
        assert claims["at_hash"] == _at_hash(body["access_token"], alg)
        # ...and it is never an access-token-typed JWT (RFC 9068 §2.1 / RFC 8725 §3.11).
        assert header["typ"].lower() != "at+jwt"


async def test_oidc_core_5_5_claims_parameter_puts_named_claims_in_id_token_and_userinfo(running):
    user = await make_user(running, phone_number="+1 555 0100", locale="fr-FR")
    cid, secret = await make_rp(running)
    request = {"id_token": {"email": {"essential": True}, "name": None},
               "userinfo": {"phone_number": None, "locale": None}}
    async with browser(running) as b:
        flow = await run_flow(b, cid, secret, user, scope="openid", claims=orjson.dumps(request).decode(),
                              consent_claims=("email", "name", "phone_number", "locale"))
        body = (await exchange(b, flow)).json()
        _, claims = await decode_jwt(b, body["id_token"])
        assert claims["email"] == "alice@example.com" and claims["name"] == "Alice Example"
        assert "phone_number" not in claims
        info = (await b.get("/userinfo", headers={"Authorization": "Bearer " + body["access_token"]})).json()
        assert info["phone_number"] == "+1 555 0100" and info["locale"] == "fr-FR"
        assert "email" not in info and info["sub"] == user.id


@pytest.mark.parametrize("claims", ["not json", "[1, 2]", '{"id_token": []}', '{"userinfo": {"email": 1}}'])
async def test_oidc_core_5_5_malformed_claims_parameter_is_invalid_request(running, claims):
    from ._oidc_flow import query_of

    cid, _ = await make_rp(running)
    r = await running.http.get("/authorize", params={
        "client_id": cid, "redirect_uri": REDIRECT, "response_type": "code", "scope": "openid",
        "code_challenge": pkce()[1], "code_challenge_method": "S256", "claims": claims})
    assert query_of(r.headers["location"])["error"] == "invalid_request"


@pytest.mark.parametrize("alg", ["ES384", "RS512", "PS512"])
async def test_oidc_registration_2_id_token_alg_without_a_server_key_is_invalid_client_metadata(running, alg):
    """Attack: a self-registered client naming an ID token alg the server has no key for turned every
    code redemption of that client into a 500 (LookupError). Only advertised algs are accepted."""
    meta = (await running.http.get("/.well-known/openid-configuration")).json()
    assert alg not in meta["id_token_signing_alg_values_supported"]
    r = await running.http.post("/register", json={"redirect_uris": [REDIRECT], "id_token_signed_response_alg": alg},
                                headers={"Authorization": "Bearer initial-token-for-tests"})
    body = r.json()
    assert r.status_code == 400 and body["error"] == "invalid_client_metadata", r.text
    assert "id_token_signed_response_alg" in body["error_description"]
    ok = await running.http.post("/register", json={"redirect_uris": [REDIRECT], "id_token_signed_response_alg":
                                                    meta["id_token_signing_alg_values_supported"][0]},
                                 headers={"Authorization": "Bearer initial-token-for-tests"})
    assert ok.status_code == 201, ok.text


async def test_oidc_core_3_1_3_7_default_rs256_id_token_signs_when_keys_generate_omits_it(tmp_path):
    """keys.generate without RS256 left the OIDC default ID token alg (RS256, advertised) without a key:
    every ID token of a client that registered no alg was a 500. A key for it is always generated."""
    from ostiary.config import KeySettings
    from tests.conftest import settings_for, start_app

    settings = settings_for(f"sqlite:///{tmp_path / 'k.db'}", keys=KeySettings(generate=("ES256",)))
    async for running in start_app(settings):
        user = await make_user(running)
        cid, secret = await make_rp(running)
        async with browser(running) as b:
            r = await exchange(b, await run_flow(b, cid, secret, user))
            assert r.status_code == 200, r.text
            header, _ = await decode_jwt(b, r.json()["id_token"], "RS256")
            assert header["alg"] == "RS256"


async def test_oidc_core_3_1_3_7_stored_client_with_an_alg_without_a_key_gets_an_error_not_a_500(running):
    """A client registered before algs were checked (or after an operator dropped an alg from
    keys.generate) used to turn every code redemption into a 500; it is told what to fix instead."""
    from dataclasses import replace

    user = await make_user(running)
    cid, secret = await make_rp(running)
    stored = await running.provider.clients.get(cid)
    await running.provider.clients.update(replace(stored, extra={**stored.extra,
                                                                 "id_token_signed_response_alg": "ES512"}))
    running.provider.cached_clients.invalidate(cid)
    async with browser(running) as b:
        r = await exchange(b, await run_flow(b, cid, secret, user))
        assert r.status_code == 400 and r.json()["error"] == "unauthorized_client", r.text
        assert "id_token_signed_response_alg" in r.json()["error_description"]
