"""Login and consent pages: CSRF, browser binding, no enumeration, throttling, consent memory, page headers."""

from __future__ import annotations

import re

from ostiary.config import OidcSettings

from ._oidc_flow import (
    ISSUER,
    PASSWORD,
    REDIRECT,
    app_for,
    basic,
    browser,
    csrf_of,
    exchange,
    is_page,
    make_rp,
    make_user,
    pkce,
    query_of,
    run_flow,
    sqlite_only,
)

HTTPS_ISSUER = "https://127.0.0.1:8443"


async def start(b, cid: str, **extra: str) -> str:
    """Begin an authorization; returns the interaction page path."""
    _, challenge = pkce()
    params = {"client_id": cid, "redirect_uri": REDIRECT, "response_type": "code", "scope": "openid profile",
              "state": "s1", "code_challenge": challenge, "code_challenge_method": "S256", **extra}
    r = await b.get("/authorize", params=params)
    assert r.status_code == 303 and r.headers["location"].startswith("/interaction/"), r.text
    return r.headers["location"]


async def test_oidc_core_3_1_2_3_login_page_has_username_and_password_fields(running):
    cid, _ = await make_rp(running, client_name="Example <App>")
    async with browser(running) as b:
        r = await b.get(await start(b, cid))
        assert r.status_code == 200
        assert 'name="username"' in r.text and 'name="password"' in r.text and 'type="password"' in r.text
        assert 'name="csrf_token"' in r.text
        assert "Example &lt;App&gt;" in r.text and "<App>" not in r.text  # autoescaped


async def test_rfc9700_4_4_1_8_login_post_without_or_with_wrong_csrf_token_is_refused(running):
    user = await make_user(running)
    cid, _ = await make_rp(running)
    async with browser(running) as b:
        path = await start(b, cid)
        r = await b.get(path)
        good = csrf_of(r.text)
        for form in ({}, {"csrf_token": "wrong"}, {"csrf_token": good[:-1]}):
            r = await b.post(path + "/login", data={**form, "username": user.username, "password": PASSWORD})
            assert is_page(r, 403), r.text
            assert b.cookie("ostiary_session") is None
        r = await b.post(path + "/login", data={"csrf_token": good, "username": user.username, "password": PASSWORD})
        assert r.status_code == 303 and b.cookie("ostiary_session")


async def test_rfc9700_4_4_1_8_consent_post_without_csrf_token_is_refused(running):
    user = await make_user(running)
    cid, _ = await make_rp(running)
    async with browser(running) as b:
        path = await start(b, cid)
        csrf = csrf_of((await b.get(path)).text)
        await b.post(path + "/login", data={"csrf_token": csrf, "username": user.username, "password": PASSWORD})
        assert 'value="approve"' in (await b.get(path)).text
        assert is_page(await b.post(path + "/consent", data={"decision": "approve"}), 403)
        assert is_page(await b.post(path + "/consent", data={"decision": "approve", "csrf_token": "x"}), 403)
        assert await running.provider.consents.get(user.id, cid) == frozenset()


async def test_oidc_core_3_1_2_3_interaction_from_another_browser_is_refused(running):
    user = await make_user(running)
    cid, _ = await make_rp(running)
    async with browser(running) as victim, browser(running) as attacker:
        path = await start(victim, cid)
        csrf = csrf_of((await victim.get(path)).text)
        assert is_page(await attacker.get(path))
        r = await attacker.post(path + "/login", data={"csrf_token": csrf, "username": user.username,
                                                       "password": PASSWORD})
        assert is_page(r) and attacker.cookie("ostiary_session") is None
        # An interaction id that does not exist at all is the same page.
        assert is_page(await victim.get("/interaction/" + "A" * 32))


async def test_owasp_no_user_enumeration_wrong_password_and_unknown_user_look_the_same(running):
    user = await make_user(running)
    cid, _ = await make_rp(running)
    async with browser(running) as b:
        path = await start(b, cid)
        csrf = csrf_of((await b.get(path)).text)
        wrong = await b.post(path + "/login", data={"csrf_token": csrf, "username": user.username,
                                                    "password": "nope-nope"})
        unknown = await b.post(path + "/login", data={"csrf_token": csrf, "username": "nobody-here",
                                                      "password": "nope-nope"})
        assert wrong.status_code == unknown.status_code == 400
        message = re.compile(r'id="login-error">([^<]+)<')
        assert message.search(wrong.text).group(1) == message.search(unknown.text).group(1)
        assert "Wrong username or password." in wrong.text
        assert b.cookie("ostiary_session") is None


async def test_rfc9700_login_throttling_locks_even_the_right_password(database_url):
    async with app_for(database_url, oidc=OidcSettings(login_attempts=3)) as r:
        user = await make_user(r)
        cid, _ = await make_rp(r)
        async with browser(r) as b:
            path = await start(b, cid)
            csrf = csrf_of((await b.get(path)).text)
            for _ in range(3):
                resp = await b.post(path + "/login", data={"csrf_token": csrf, "username": user.username,
                                                           "password": "wrong-password"})
                assert resp.status_code == 400
            resp = await b.post(path + "/login", data={"csrf_token": csrf, "username": user.username,
                                                       "password": PASSWORD})
            assert resp.status_code == 429, resp.text
            found = re.search(r"Try again in (\d+) seconds", resp.text)
            assert found and int(found.group(1)) > 0
            assert b.cookie("ostiary_session") is None


async def test_oidc_core_3_1_2_4_consent_approve_gives_code(running):
    user = await make_user(running)
    cid, secret = await make_rp(running)
    async with browser(running) as b:
        flow = await run_flow(b, cid, secret, user)
        assert flow.pages == ["login", "consent"]
        assert (await exchange(b, flow)).status_code == 200
        assert set(await running.provider.consents.get(user.id, cid)) >= {"openid", "profile"}


async def test_rfc6749_4_1_2_1_consent_deny_is_access_denied(running):
    user = await make_user(running)
    cid, _ = await make_rp(running)
    async with browser(running) as b:
        path = await start(b, cid, state="deny-me")
        csrf = csrf_of((await b.get(path)).text)
        await b.post(path + "/login", data={"csrf_token": csrf, "username": user.username, "password": PASSWORD})
        r = await b.post(path + "/consent", data={"csrf_token": csrf, "decision": "deny"})
        assert r.status_code == 303
        q = query_of(r.headers["location"])
        assert r.headers["location"].startswith(REDIRECT + "?")
        assert q["error"] == "access_denied" and q["state"] == "deny-me" and q["iss"] == ISSUER
        assert "code" not in q
        assert is_page(await b.get(path))  # the interaction is over


async def test_rfc6749_4_1_2_1_cancel_on_login_page_is_access_denied(running):
    cid, _ = await make_rp(running)
    async with browser(running) as b:
        path = await start(b, cid)
        csrf = csrf_of((await b.get(path)).text)
        r = await b.post(path + "/abort", data={"csrf_token": csrf})
        assert r.status_code == 303
        assert query_of(r.headers["location"])["error"] == "access_denied"


async def test_oidc_core_3_1_2_4_consent_is_remembered_per_user_and_client(running):
    user = await make_user(running)
    cid, secret = await make_rp(running)
    other, other_secret = await make_rp(running)
    async with browser(running) as b:
        assert (await run_flow(b, cid, secret, user)).pages == ["login", "consent"]
        assert (await run_flow(b, cid, secret, user)).pages == []
        assert (await run_flow(b, other, other_secret, user)).pages == ["consent"]  # another client asks
    async with browser(running) as b2:
        assert (await run_flow(b2, cid, secret, user)).pages == ["login"]  # remembered, not tied to the browser
    second = await make_user(running)
    async with browser(running) as b3:
        assert (await run_flow(b3, cid, secret, second)).pages == ["login", "consent"]  # another user asks


async def test_oidc_core_3_1_2_4_wider_scopes_ask_for_consent_again(running):
    user = await make_user(running)
    cid, secret = await make_rp(running)
    async with browser(running) as b:
        await run_flow(b, cid, secret, user, scope="openid profile")
        assert (await run_flow(b, cid, secret, user, scope="openid")).pages == []
        assert (await run_flow(b, cid, secret, user, scope="openid profile phone")).pages == ["consent"]


async def test_oidc_core_3_1_2_4_revoked_consent_is_asked_again_and_refresh_tokens_stop(running):
    user = await make_user(running)
    cid, secret = await make_rp(running)
    async with browser(running) as b:
        flow = await run_flow(b, cid, secret, user)
        tokens = (await exchange(b, flow)).json()
        account = await b.get("/account")
        assert account.status_code == 200 and cid in account.text
        csrf = csrf_of(account.text)
        assert is_page(await b.post("/account", data={"client_id": cid}), 403)  # CSRF protected
        assert is_page(await b.post("/account", data={"client_id": cid, "csrf_token": "forged"}), 403)
        r = await b.post("/account", data={"client_id": cid, "csrf_token": csrf})
        assert r.status_code == 303
        assert await running.provider.consents.get(user.id, cid) == frozenset()
        r = await b.post("/token", data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
                         headers=basic(cid, secret))
        assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
        r = await b.get("/userinfo", headers={"Authorization": "Bearer " + tokens["access_token"]})
        assert r.status_code == 401
        assert (await run_flow(b, cid, secret, user)).pages == ["consent"]


def _cookies(r) -> dict[str, str]:
    return {h.split("=", 1)[0]: h for h in r.headers.get_list("set-cookie")}


def _assert_page_headers(r) -> None:
    csp = r.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["cache-control"] == "no-store"


async def test_rfc9700_4_16_pages_forbid_framing_and_cookies_are_httponly_lax(running):
    user = await make_user(running)
    cid, _ = await make_rp(running)
    async with browser(running) as b:
        r = await b.get("/authorize", params={"client_id": cid, "redirect_uri": REDIRECT, "response_type": "code",
                                              "scope": "openid", "code_challenge": pkce()[1],
                                              "code_challenge_method": "S256"})
        interaction = _cookies(r)["ostiary_interaction"].lower()
        assert "httponly" in interaction and "samesite=lax" in interaction and "secure" not in interaction
        path = r.headers["location"]
        page = await b.get(path)
        _assert_page_headers(page)
        _assert_page_headers(await b.get("/authorize", params={"client_id": "unknown"}))
        _assert_page_headers(await b.get("/interaction/unknown"))
        r = await b.post(path + "/login", data={"csrf_token": csrf_of(page.text), "username": user.username,
                                                "password": PASSWORD})
        session = _cookies(r)["ostiary_session"].lower()
        assert "httponly" in session and "samesite=lax" in session and "path=/" in session
        consent = await b.get(path)
        assert 'value="approve"' in consent.text
        _assert_page_headers(consent)


async def test_rfc6265_4_1_2_5_cookies_are_secure_when_the_issuer_is_https(database_url):
    sqlite_only(database_url)
    async with app_for(database_url, issuer=HTTPS_ISSUER) as r:
        user = await make_user(r)
        cid, secret = await make_rp(r)
        async with browser(r, base_url=HTTPS_ISSUER) as b:
            flow = await run_flow(b, cid, secret, user)
            assert flow.params["iss"] == HTTPS_ISSUER
            token = await exchange(b, flow)
            assert token.status_code == 200
            path = await start(b, cid, prompt="login")
            page = await b.get(path)
            cookies = _cookies(await b.post(path + "/login", data={
                "csrf_token": csrf_of(page.text), "username": user.username, "password": PASSWORD}))
            assert "secure" in cookies["__Host-ostiary_session"].lower()
        async with browser(r, base_url=HTTPS_ISSUER) as b2:
            resp = await b2.get("/authorize", params={"client_id": cid, "redirect_uri": REDIRECT,
                                                      "response_type": "code", "scope": "openid",
                                                      "code_challenge": pkce()[1], "code_challenge_method": "S256"})
            assert "secure" in _cookies(resp)["__Host-ostiary_interaction"].lower()
