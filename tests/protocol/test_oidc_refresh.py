"""Refresh tokens for user grants: RFC 6749 §6, OIDC Core §11-12, RFC 9700 §4.14.2 rotation and reuse detection."""

from __future__ import annotations

import asyncio

from ostiary.config import OidcSettings

from ._oidc_flow import app_for, basic, browser, decode_jwt, exchange, make_rp, make_user, run_flow, sqlite_only


async def _tokens(running, b, user, **kwargs):
    meta = kwargs.pop("meta", {})
    cid, secret = await make_rp(running, **meta)
    flow = await run_flow(b, cid, secret, user, **kwargs)
    form_extra = {} if secret else {"client_id": cid}
    r = await exchange(b, flow, **form_extra)
    assert r.status_code == 200, r.text
    return cid, secret, r.json()


async def _refresh(b, cid, secret, refresh_token, **extra):
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token, **extra}
    if secret is None:
        return await b.post("/token", data={**form, "client_id": cid})
    return await b.post("/token", data=form, headers=basic(cid, secret))


async def _active(running, token: str) -> bool:
    """Whether the server still takes the token as active (what introspection tells entitled callers)."""
    found = await running.provider.inspector.find(token)
    return found is not None and found.active


def _invalid_grant(r) -> None:
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text


async def test_oidc_core_11_refresh_token_with_openid_needs_offline_access(running):
    user = await make_user(running)
    async with browser(running) as b:
        _, _, body = await _tokens(running, b, user, scope="openid profile")
        assert "refresh_token" not in body
        _, _, body = await _tokens(running, b, user, scope="openid offline_access")
        assert "refresh_token" in body


async def test_rfc6749_6_refresh_token_without_openid_needs_no_offline_access(running):
    user = await make_user(running)
    async with browser(running) as b:
        _, _, body = await _tokens(running, b, user, scope="api:read", meta={"scope": "api:read"})
        assert "refresh_token" in body and "id_token" not in body


async def test_rfc6749_6_offline_access_needs_the_refresh_token_grant(running):
    from ._oidc_flow import REDIRECT, pkce, query_of

    cid, _ = await make_rp(running, grant_types=["authorization_code"])
    r = await running.http.get("/authorize", params={
        "client_id": cid, "redirect_uri": REDIRECT, "response_type": "code", "scope": "openid offline_access",
        "code_challenge": pkce()[1], "code_challenge_method": "S256"})
    assert query_of(r.headers["location"])["error"] == "invalid_scope"


async def test_rfc9700_4_14_2_refresh_rotates_and_reuse_revokes_the_family(running):
    user = await make_user(running)
    async with browser(running) as b:
        cid, secret, first = await _tokens(running, b, user)
        r = await _refresh(b, cid, secret, first["refresh_token"])
        assert r.status_code == 200, r.text
        second = r.json()
        assert second["refresh_token"] != first["refresh_token"]
        assert second["access_token"] != first["access_token"]
        third = (await _refresh(b, cid, secret, second["refresh_token"])).json()
        assert await _active(running, third["refresh_token"])
        _invalid_grant(await _refresh(b, cid, secret, first["refresh_token"]))  # reuse: theft assumed
        _invalid_grant(await _refresh(b, cid, secret, third["refresh_token"]))
        for token in (first["access_token"], second["access_token"], third["access_token"], third["refresh_token"]):
            assert not await _active(running, token)
        r = await b.get("/userinfo", headers={"Authorization": "Bearer " + third["access_token"]})
        assert r.status_code == 401


async def test_rfc9700_4_14_2_public_client_refresh_tokens_rotate(running):
    user = await make_user(running)
    async with browser(running) as b:
        cid, _, body = await _tokens(running, b, user, meta={"token_endpoint_auth_method": "none"})
        r = await _refresh(b, cid, None, body["refresh_token"])
        assert r.status_code == 200 and r.json()["refresh_token"] != body["refresh_token"]
        _invalid_grant(await _refresh(b, cid, None, body["refresh_token"]))
        _invalid_grant(await _refresh(b, cid, None, r.json()["refresh_token"]))


async def test_oidc_core_12_2_refresh_returns_a_new_id_token(running):
    user = await make_user(running)
    async with browser(running) as b:
        cid, secret, body = await _tokens(running, b, user)
        _, before = await decode_jwt(b, body["id_token"])
        r = (await _refresh(b, cid, secret, body["refresh_token"])).json()
        _, after = await decode_jwt(b, r["id_token"])
        assert after["sub"] == before["sub"] and after["aud"] == before["aud"]
        assert after["auth_time"] == before["auth_time"] and after["iss"] == before["iss"]
        assert "nonce" not in after  # OIDC Core §12.2: SHOULD NOT be present on refresh


async def test_rfc6749_6_scope_may_be_narrowed(running):
    user = await make_user(running)
    async with browser(running) as b:
        cid, secret, body = await _tokens(running, b, user)
        r = await _refresh(b, cid, secret, body["refresh_token"], scope="openid email")
        assert r.status_code == 200, r.text
        narrowed = r.json()
        assert set(narrowed["scope"].split()) == {"openid", "email"}
        info = (await b.get("/userinfo", headers={"Authorization": "Bearer " + narrowed["access_token"]})).json()
        assert "email" in info and "name" not in info
        # Narrowing one refresh does not shrink the grant: the next may ask for the original scope.
        r = await _refresh(b, cid, secret, narrowed["refresh_token"], scope="openid profile")
        assert r.status_code == 200 and set(r.json()["scope"].split()) == {"openid", "profile"}


async def test_rfc6749_6_scope_may_not_be_widened(running):
    user = await make_user(running)
    async with browser(running) as b:
        cid, secret, body = await _tokens(running, b, user, scope="openid offline_access")
        r = await _refresh(b, cid, secret, body["refresh_token"], scope="openid profile")
        assert r.status_code == 400 and r.json()["error"] == "invalid_scope"


async def test_rfc6749_10_4_refresh_token_is_bound_to_its_client(running):
    user = await make_user(running)
    other, other_secret = await make_rp(running)
    async with browser(running) as b:
        _, _, body = await _tokens(running, b, user)
        _invalid_grant(await _refresh(b, other, other_secret, body["refresh_token"]))


async def test_rfc6749_6_access_token_is_not_a_refresh_token(running):
    user = await make_user(running)
    async with browser(running) as b:
        cid, secret, body = await _tokens(running, b, user)
        _invalid_grant(await _refresh(b, cid, secret, body["access_token"]))
        _invalid_grant(await _refresh(b, cid, secret, "garbage"))


async def test_rfc9700_4_14_2_idle_refresh_token_expires(database_url):
    sqlite_only(database_url)
    async with app_for(database_url, oidc=OidcSettings(refresh_token_idle=1)) as r:
        user = await make_user(r)
        async with browser(r) as b:
            cid, secret, body = await _tokens(r, b, user)
            await asyncio.sleep(2.05)
            _invalid_grant(await _refresh(b, cid, secret, body["refresh_token"]))


async def test_rfc9700_4_14_2_absolute_lifetime_bounds_the_grant(database_url):
    sqlite_only(database_url)
    async with app_for(database_url, oidc=OidcSettings(refresh_token_lifetime=2, refresh_token_idle=3600)) as r:
        user = await make_user(r)
        async with browser(r) as b:
            cid, secret, body = await _tokens(r, b, user)
            resp = await _refresh(b, cid, secret, body["refresh_token"])
            assert resp.status_code == 200
            await asyncio.sleep(2.6)
            _invalid_grant(await _refresh(b, cid, secret, resp.json()["refresh_token"]))


async def test_rfc9700_4_14_2_rotation_public_leaves_confidential_refresh_tokens_reusable(database_url):
    async with app_for(database_url, oidc=OidcSettings(refresh_token_rotation="public")) as r:
        user = await make_user(r)
        async with browser(r) as b:
            cid, secret, body = await _tokens(r, b, user)
            for _ in range(3):
                resp = await _refresh(b, cid, secret, body["refresh_token"])
                assert resp.status_code == 200, resp.text
                assert resp.json().get("refresh_token") in (None, body["refresh_token"])
            pub, _, pbody = await _tokens(r, b, user, meta={"token_endpoint_auth_method": "none"})
            resp = await _refresh(b, pub, None, pbody["refresh_token"])
            assert resp.status_code == 200 and resp.json()["refresh_token"] != pbody["refresh_token"]
            _invalid_grant(await _refresh(b, pub, None, pbody["refresh_token"]))


async def _aud(running, token: str) -> set[str]:
    found = await running.provider.inspector.find(token)
    assert found is not None and found.active
    aud = found.claims["aud"]
    return {aud} if isinstance(aud, str) else set(aud)


async def test_rfc8707_2_2_refresh_resource_is_limited_to_the_original_grant(running):
    """Attack: a refresh token of a grant made for one API is refreshed with `resource` naming another
    audience the client has, and its access token then works there. Legitimate: narrowing to one of
    the grant's resources, and a refresh without `resource`, which keeps the grant's audiences."""
    user = await make_user(running)
    a, b_api, c = "https://a.example/api", "https://b.example/api", "https://c.example/api"
    async with browser(running) as b:
        cid, secret = await make_rp(running, audiences=[a, b_api, c])
        flow = await run_flow(b, cid, secret, user)
        r = await b.post("/token", data=flow.token_form(resource=[a, b_api]), headers=basic(cid, secret))
        assert r.status_code == 200, r.text
        refresh = r.json()["refresh_token"]
        r = await _refresh(b, cid, secret, refresh, resource=c)
        assert r.status_code == 400 and r.json()["error"] == "invalid_target", r.text
        r = await _refresh(b, cid, secret, refresh, resource=b_api)  # not burned by the refusal; narrowing works
        assert r.status_code == 200, r.text
        assert await _aud(running, r.json()["access_token"]) == {b_api}
        r = await _refresh(b, cid, secret, r.json().get("refresh_token", refresh))
        assert r.status_code == 200, r.text
        assert await _aud(running, r.json()["access_token"]) == {a, b_api}
        # A grant redeemed without `resource` covers the client's default audience only.
        flow = await run_flow(b, cid, secret, user)
        refresh = (await exchange(b, flow)).json()["refresh_token"]
        r = await _refresh(b, cid, secret, refresh, resource=c)
        assert r.status_code == 400 and r.json()["error"] == "invalid_target", r.text
        r = await _refresh(b, cid, secret, refresh, resource=a)
        assert r.status_code == 200, r.text
