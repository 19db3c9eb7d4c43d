"""RFC 9700 (OAuth 2.0 Security Best Current Practice) attacks against the OpenID Connect flow."""

from __future__ import annotations

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
)


def _params(cid: str, **extra: str) -> dict[str, str]:
    return {"client_id": cid, "redirect_uri": REDIRECT, "response_type": "code", "scope": "openid",
            "state": "s", "code_challenge": pkce()[1], "code_challenge_method": "S256", **extra}


def _invalid_grant(r) -> None:
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text


async def test_rfc9700_4_5_code_injection_code_of_client_a_redeemed_by_client_b(running):
    user = await make_user(running)
    a, a_secret = await make_rp(running)
    b_id, b_secret = await make_rp(running)
    async with browser(running) as b:
        flow = await run_flow(b, a, a_secret, user)
        _invalid_grant(await b.post("/token", data=flow.token_form(), headers=basic(b_id, b_secret)))
        # Public client B naming itself by client_id fares no better.
        pub, _ = await make_rp(running, token_endpoint_auth_method="none")
        flow = await run_flow(b, a, a_secret, user)
        _invalid_grant(await b.post("/token", data=flow.token_form(client_id=pub)))


async def test_rfc9700_4_5_code_injection_code_bound_to_another_pkce_verifier(running):
    """The attacker's stolen code, injected into the victim's session, meets the victim's verifier."""
    victim_user, attacker_user = await make_user(running), await make_user(running)
    cid, _ = await make_rp(running, token_endpoint_auth_method="none")
    async with browser(running) as attacker, browser(running) as victim:
        stolen = await run_flow(attacker, cid, None, attacker_user)
        own = await run_flow(victim, cid, None, victim_user)
        form = stolen.token_form(client_id=cid, code_verifier=own.verifier)
        _invalid_grant(await victim.post("/token", data=form))


async def test_rfc9700_4_8_pkce_downgrade_is_refused(database_url):
    async with app_for(database_url, oidc=OidcSettings(pkce_required=False)) as r:
        user = await make_user(r)
        cid, secret = await make_rp(r)
        async with browser(r) as b:
            # A verifier for a code requested without a challenge: the challenge was stripped.
            flow = await run_flow(b, cid, secret, user, use_pkce=False)
            _invalid_grant(await exchange(b, flow, code_verifier=pkce()[0]))
            # Downgrade to plain: the verifier itself as challenge.
            verifier, _ = pkce()
            resp = await b.get("/authorize", params=_params(cid, code_challenge=verifier,
                                                             code_challenge_method="plain"))
            assert query_of(resp.headers["location"])["error"] == "invalid_request"


async def test_rfc9700_4_1_open_redirect_through_redirect_uri_is_impossible(running):
    cid, _ = await make_rp(running)
    for uri in ("https://evil.example/cb", REDIRECT + ".evil.example", REDIRECT + "/../evil", REDIRECT + "%2F..",
                "https://rp.example@evil.example/cb", "//evil.example/cb", REDIRECT + "?next=https://evil.example"):
        for extra in ({}, {"response_type": "token"}, {"prompt": "none"}, {"scope": "forbidden"}):
            r = await running.http.get("/authorize", params=_params(cid, redirect_uri=uri, **extra))
            assert is_page(r), (uri, extra, r.headers.get("location"))


async def test_rfc9700_4_1_open_redirect_through_post_logout_redirect_uri_is_impossible(running):
    user = await make_user(running)
    cid, secret = await make_rp(running, post_logout_redirect_uris=["https://rp.example/bye"])
    async with browser(running) as b:
        id_token = (await exchange(b, await run_flow(b, cid, secret, user))).json()["id_token"]
        for uri in ("https://evil.example/", "https://rp.example/bye/../../evil", "https://rp.example/byeX"):
            for params in ({"id_token_hint": id_token}, {"client_id": cid}, {}):
                r = await b.get("/logout", params={**params, "post_logout_redirect_uri": uri})
                assert is_page(r), (uri, params)
        # No session at all: still no redirect anywhere unregistered.
    async with browser(running) as stranger:
        r = await stranger.get("/logout", params={"client_id": cid, "post_logout_redirect_uri": "https://evil.example/"})
        assert is_page(r)


async def test_rfc9700_4_4_2_mix_up_defence_iss_in_every_authorization_response(running):
    meta = (await running.http.get("/.well-known/openid-configuration")).json()
    assert meta["issuer"] == ISSUER and meta["authorization_response_iss_parameter_supported"] is True
    user = await make_user(running)
    cid, secret = await make_rp(running)
    async with browser(running) as b:
        assert (await run_flow(b, cid, secret, user)).params["iss"] == ISSUER
        denied = await b.get("/authorize", params=_params(cid, prompt="consent"))
        page = await b.get(denied.headers["location"])
        r = await b.post(denied.headers["location"] + "/consent", data={"csrf_token": csrf_of(page.text),
                                                                        "decision": "deny"})
        assert query_of(r.headers["location"])["iss"] == ISSUER
        for extra in ({"response_type": "token"}, {"prompt": "bogus"}, {"request": "x"}):
            r = await b.get("/authorize", params=_params(cid, **extra))
            assert query_of(r.headers["location"])["iss"] == ISSUER, extra
    async with browser(running) as fresh:
        r = await fresh.get("/authorize", params=_params(cid, prompt="none"))
        assert query_of(r.headers["location"])["iss"] == ISSUER


async def test_rfc9700_4_4_1_8_csrf_on_login_and_consent_forms(running):
    """A cross-site form post carries the victim's cookies but cannot know the CSRF token."""
    user = await make_user(running)
    cid, _ = await make_rp(running)
    async with browser(running) as victim, browser(running) as attacker:
        r = await victim.get("/authorize", params=_params(cid))
        path = r.headers["location"]
        real = csrf_of((await victim.get(path)).text)
        # The attacker's own valid token, for the attacker's own interaction.
        r = await attacker.get("/authorize", params=_params(cid))
        theirs = csrf_of((await attacker.get(r.headers["location"])).text)
        for token in (None, "", theirs, real.upper() if real.upper() != real else real + "x"):
            form = {"username": user.username, "password": PASSWORD}
            if token is not None:
                form["csrf_token"] = token
            assert is_page(await victim.post(path + "/login", data=form), 403)
        await victim.post(path + "/login", data={"csrf_token": real, "username": user.username, "password": PASSWORD})
        for token in (None, theirs):
            form = {"decision": "approve", **({"csrf_token": token} if token else {})}
            assert is_page(await victim.post(path + "/consent", data=form), 403)
        assert await running.provider.consents.get(user.id, cid) == frozenset()


async def test_rfc9700_4_4_session_fixation_cookie_set_before_login_is_replaced(running):
    user = await make_user(running)
    cid, secret = await make_rp(running)
    async with browser(running) as b:
        b.cookies.set("ostiary_session", "fixed-by-attacker", domain="127.0.0.1", path="/")
        await run_flow(b, cid, secret, user)
        assert b.cookie("ostiary_session") not in (None, "fixed-by-attacker")
    async with browser(running) as attacker:
        attacker.cookies.set("ostiary_session", "fixed-by-attacker", domain="127.0.0.1", path="/")
        r = await attacker.get("/authorize", params=_params(cid, prompt="none"))
        assert query_of(r.headers["location"])["error"] == "login_required"


async def test_rfc9700_4_16_clickjacking_pages_cannot_be_framed(running):
    cid, _ = await make_rp(running)
    async with browser(running) as b:
        r = await b.get("/authorize", params=_params(cid))
        for resp in (await b.get(r.headers["location"]), await b.get("/authorize"), await b.get("/logout")):
            assert "frame-ancestors 'none'" in resp.headers["content-security-policy"]
            assert resp.headers["x-frame-options"] == "DENY"


async def test_rfc9700_4_14_2_refresh_token_replay_revokes_the_family(running):
    user = await make_user(running)
    cid, _ = await make_rp(running, token_endpoint_auth_method="none")
    async with browser(running) as b:
        flow = await run_flow(b, cid, None, user)
        first = (await b.post("/token", data=flow.token_form(client_id=cid))).json()
        form = {"grant_type": "refresh_token", "client_id": cid}
        second = (await b.post("/token", data={**form, "refresh_token": first["refresh_token"]})).json()
        _invalid_grant(await b.post("/token", data={**form, "refresh_token": first["refresh_token"]}))
        _invalid_grant(await b.post("/token", data={**form, "refresh_token": second["refresh_token"]}))


async def test_rfc9700_2_1_authorization_code_replay_revokes_tokens(running):
    user = await make_user(running)
    cid, secret = await make_rp(running)
    async with browser(running) as b:
        flow = await run_flow(b, cid, secret, user)
        body = (await exchange(b, flow)).json()
        _invalid_grant(await exchange(b, flow))
        r = await b.get("/userinfo", headers={"Authorization": "Bearer " + body["access_token"]})
        assert r.status_code == 401
