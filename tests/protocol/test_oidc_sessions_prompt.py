"""SSO sessions and the prompt / max_age / login_hint / id_token_hint parameters (OIDC Core §3.1.2.1)."""

from __future__ import annotations

import asyncio

from ._oidc_flow import (
    ISSUER,
    PASSWORD,
    REDIRECT,
    browser,
    csrf_of,
    decode_jwt,
    exchange,
    make_rp,
    make_user,
    pkce,
    query_of,
    run_flow,
)


def _params(cid: str, **extra: str) -> dict[str, str]:
    _, challenge = pkce()
    return {"client_id": cid, "redirect_uri": REDIRECT, "response_type": "code", "scope": "openid profile",
            "state": "s2", "code_challenge": challenge, "code_challenge_method": "S256", **extra}


async def _id_token(b, flow) -> dict:
    r = await exchange(b, flow)
    assert r.status_code == 200, r.text
    return (await decode_jwt(b, r.json()["id_token"]))[1]


async def test_oidc_core_3_1_2_3_live_session_skips_login(running):
    user = await make_user(running)
    cid, secret = await make_rp(running)
    other, other_secret = await make_rp(running)
    async with browser(running) as b:
        first = await run_flow(b, cid, secret, user)
        assert first.pages == ["login", "consent"]
        second = await run_flow(b, other, other_secret, user)
        assert second.pages == ["consent"]
        a, c = await _id_token(b, first), await _id_token(b, second)
        assert a["sub"] == c["sub"] == user.id and a["sid"] == c["sid"]


async def test_oidc_core_3_1_2_1_prompt_none_without_session_is_login_required(running):
    cid, _ = await make_rp(running)
    async with browser(running) as b:
        r = await b.get("/authorize", params=_params(cid, prompt="none"))
        assert r.status_code == 303
        q = query_of(r.headers["location"])
        assert r.headers["location"].startswith(REDIRECT + "?")
        assert q["error"] == "login_required" and q["state"] == "s2" and q["iss"] == ISSUER


async def test_oidc_core_3_1_2_1_prompt_none_with_session_without_consent_is_consent_required(running):
    user = await make_user(running)
    cid, secret = await make_rp(running)
    other, _ = await make_rp(running)
    async with browser(running) as b:
        await run_flow(b, cid, secret, user)
        r = await b.get("/authorize", params=_params(other, prompt="none"))
        assert r.status_code == 303
        q = query_of(r.headers["location"])
        assert q["error"] == "consent_required" and q["iss"] == ISSUER and q["state"] == "s2"


async def test_oidc_core_3_1_2_1_prompt_none_with_session_and_consent_gives_code_without_a_page(running):
    user = await make_user(running)
    cid, secret = await make_rp(running)
    async with browser(running) as b:
        await run_flow(b, cid, secret, user)
        flow = await run_flow(b, cid, secret, user, prompt="none")
        assert flow.pages == [] and "code" in flow.params
        assert (await exchange(b, flow)).status_code == 200


async def test_oidc_core_3_1_2_1_prompt_login_forces_the_login_page(running):
    user = await make_user(running)
    cid, secret = await make_rp(running)
    async with browser(running) as b:
        first = await run_flow(b, cid, secret, user)
        before = await _id_token(b, first)
        await asyncio.sleep(1.05)
        again = await run_flow(b, cid, secret, user, prompt="login")
        assert again.pages == ["login"]
        after = await _id_token(b, again)
        assert after["auth_time"] > before["auth_time"]


async def test_oidc_core_3_1_2_1_prompt_consent_forces_the_consent_page(running):
    user = await make_user(running)
    cid, secret = await make_rp(running)
    async with browser(running) as b:
        await run_flow(b, cid, secret, user)
        assert (await run_flow(b, cid, secret, user, prompt="consent")).pages == ["consent"]


async def test_oidc_core_3_1_2_1_prompt_select_account_shows_the_chooser(running):
    alice, bob = await make_user(running), await make_user(running)
    cid, secret = await make_rp(running)
    async with browser(running) as b:
        await run_flow(b, cid, secret, alice)
        cont = await run_flow(b, cid, secret, alice, prompt="select_account")
        assert cont.pages == ["select_account"]
        assert (await _id_token(b, cont))["sub"] == alice.id
        # "Use another account": the login page, then the new user's consent.
        r = await b.get("/authorize", params=_params(cid, prompt="select_account"))
        path = r.headers["location"]
        page = await b.get(path)
        assert alice.username in page.text and 'value="switch"' in page.text
        r = await b.post(path + "/select", data={"csrf_token": csrf_of(page.text), "choice": "switch"})
        page = await b.get(r.headers["location"])
        assert 'name="password"' in page.text
        r = await b.post(path + "/login", data={"csrf_token": csrf_of(page.text), "username": bob.username,
                                                "password": PASSWORD})
        page = await b.get(r.headers["location"])
        assert 'value="approve"' in page.text and bob.username in page.text
        r = await b.post(path + "/consent", data={"csrf_token": csrf_of(page.text), "decision": "approve"})
        r = await b.get(r.headers["location"])
        assert "code" in query_of(r.headers["location"])


async def test_oidc_core_3_1_2_1_select_account_without_session_shows_login(running):
    user = await make_user(running)
    cid, secret = await make_rp(running)
    async with browser(running) as b:
        flow = await run_flow(b, cid, secret, user, prompt="select_account")
        assert flow.pages[0] == "login" and "select_account" not in flow.pages


async def test_oidc_core_3_1_2_1_max_age_exceeded_forces_login_and_id_token_has_auth_time(running):
    user = await make_user(running)
    cid, secret = await make_rp(running)
    async with browser(running) as b:
        first = await run_flow(b, cid, secret, user)
        before = await _id_token(b, first)
        assert (await run_flow(b, cid, secret, user, max_age="3600")).pages == []
        await asyncio.sleep(1.05)
        again = await run_flow(b, cid, secret, user, max_age="0")
        assert again.pages == ["login"]
        claims = await _id_token(b, again)
        assert isinstance(claims["auth_time"], int) and claims["auth_time"] > before["auth_time"]


async def test_oidc_core_3_1_2_1_malformed_max_age_is_invalid_request(running):
    cid, _ = await make_rp(running)
    for value in ("-1", "abc", "1.5"):
        r = await running.http.get("/authorize", params=_params(cid, max_age=value))
        assert query_of(r.headers["location"])["error"] == "invalid_request", value


async def test_oidc_core_3_1_2_1_login_hint_prefills_the_username(running):
    cid, _ = await make_rp(running)
    async with browser(running) as b:
        r = await b.get("/authorize", params=_params(cid, login_hint='bob"<x>'))
        page = await b.get(r.headers["location"])
        assert 'value="bob&#34;&lt;x&gt;"' in page.text or 'value="bob&quot;&lt;x&gt;"' in page.text


async def test_oidc_core_3_1_2_1_id_token_hint_for_another_user_forces_login(running):
    alice, bob = await make_user(running), await make_user(running)
    cid, secret = await make_rp(running)
    async with browser(running) as bb:
        bob_id_token = (await exchange(bb, await run_flow(bb, cid, secret, bob))).json()["id_token"]
    async with browser(running) as b:
        mine = (await exchange(b, await run_flow(b, cid, secret, alice))).json()["id_token"]
        # The hint of the session's own user: nothing to ask.
        assert (await run_flow(b, cid, secret, alice, id_token_hint=mine, prompt="none")).pages == []
        r = await b.get("/authorize", params=_params(cid, id_token_hint=bob_id_token, prompt="none"))
        assert query_of(r.headers["location"])["error"] == "login_required"
        flow = await run_flow(b, cid, secret, bob, id_token_hint=bob_id_token)
        assert flow.pages[0] == "login"
        assert (await _id_token(b, flow))["sub"] == bob.id


async def test_oidc_core_3_1_2_1_id_token_hint_not_from_this_server_is_invalid_request(running):
    cid, _ = await make_rp(running)
    forged = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJ4In0."
    r = await running.http.get("/authorize", params=_params(cid, id_token_hint=forged))
    assert query_of(r.headers["location"])["error"] == "invalid_request"


async def test_rfc9700_4_4_session_fixation_session_cookie_changes_at_login(running):
    user = await make_user(running)
    cid, secret = await make_rp(running)
    async with browser(running) as b:
        b.cookies.set("ostiary_session", "attacker-chosen-value", domain="127.0.0.1", path="/")
        await run_flow(b, cid, secret, user)
        first = b.cookie("ostiary_session")
        assert first and first != "attacker-chosen-value"
        await run_flow(b, cid, secret, user, prompt="login")
        second = b.cookie("ostiary_session")
        assert second and second not in (first, "attacker-chosen-value")
        # The old session is gone: it no longer logs anyone in.
    async with browser(running) as thief:
        thief.cookies.set("ostiary_session", first, domain="127.0.0.1", path="/")
        r = await thief.get("/authorize", params=_params(cid, prompt="none"))
        assert query_of(r.headers["location"])["error"] == "login_required"
