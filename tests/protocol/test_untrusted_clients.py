"""No open redirector, no enumeration, honest consent (RFC 9700 §4.11.2, RP-Initiated Logout 1.0).

A client no administrator created (registered with an initial access token or openly) is not
trusted to receive errors before the user has interacted or consented to it; its logout redirect
needs an `id_token_hint`; its consent page says it is unverified and where the user goes back to.
"""

from __future__ import annotations

import logging
import time

from joserfc.jwk import ECKey

from ostiary import jwt
from ostiary.server.id_tokens import IdTokenIssuer

from ._oidc_flow import (
    ISSUER,
    REDIRECT,
    audit_events,
    basic,
    browser,
    csrf_of,
    exchange,
    form_fields,
    is_page,
    make_rp,
    make_user,
    pkce,
    query_of,
    run_flow,
)

AFTER = "https://rp.example/logged-out"
SCOPE = "openid profile email offline_access"


async def _self_registered(running, **metadata) -> tuple[str, str | None]:
    """A client registered through RFC 7591 with an initial access token (not by an administrator)."""
    metadata = {"grant_types": ["authorization_code", "refresh_token"], "redirect_uris": [REDIRECT],
                "post_logout_redirect_uris": [AFTER], "client_name": "Self Registered", "scope": SCOPE, **metadata}
    client, issued = await running.provider.registry.create(metadata, registration_token=True, level="registrant")
    assert client.trust_level != "admin"
    return client.client_id, issued.client_secret


def _authorize(cid: str, **extra: str) -> dict[str, str]:
    return {"client_id": cid, "redirect_uri": REDIRECT, "response_type": "code", "scope": "openid profile",
            "state": "st", "code_challenge": pkce()[1], "code_challenge_method": "S256", **extra}


async def test_rfc9700_4_11_2_error_for_a_self_registered_client_is_a_page_until_the_user_interacts(running, caplog):
    caplog.set_level(logging.INFO, logger="ostiary.audit")
    untrusted, _ = await _self_registered(running)
    trusted, _ = await make_rp(running)
    async with browser(running) as b:
        # The attack: a self-registered app as a redirector, via an error the server answers at once.
        r = await b.get("/authorize", params=_authorize(untrusted, scope="openid not-allowed"))
        assert is_page(r) and "invalid_scope" in r.text and "rp.example" not in r.headers.get("location", "")
        r = await b.get("/authorize", params=_authorize(untrusted, prompt="none"))
        assert is_page(r) and "login_required" in r.text
        assert audit_events(caplog, "error_not_redirected")[-1]["client_id"] == untrusted
        # An administrator's client gets its errors as always (RFC 6749 §4.1.2.1).
        r = await b.get("/authorize", params=_authorize(trusted, scope="openid not-allowed"))
        assert r.status_code == 303 and query_of(r.headers["location"])["error"] == "invalid_scope"
        # After the user interacted (cancel on the login page), the error goes back to the app.
        r = await b.get("/authorize", params=_authorize(untrusted))
        page = await b.get(r.headers["location"])
        r = await b.post(r.headers["location"] + "/abort", data={"csrf_token": csrf_of(page.text)})
        assert r.status_code == 303 and r.headers["location"].startswith(REDIRECT)
        q = query_of(r.headers["location"])
        assert q["error"] == "access_denied" and q["state"] == "st" and q["iss"] == ISSUER


async def test_rfc9700_4_11_2_silent_renewal_keeps_working_for_a_consented_self_registered_app(running):
    user = await make_user(running)
    cid, secret = await _self_registered(running)
    async with browser(running) as b:
        first = await run_flow(b, cid, secret, user, scope="openid profile")
        assert first.pages == ["login", "consent"]
        silent = await run_flow(b, cid, secret, user, scope="openid profile", prompt="none")
        assert silent.pages == [] and (await exchange(b, silent)).status_code == 200
        # This user consented before: errors of silent requests go back to the app.
        r = await b.get("/authorize", params=_authorize(cid, scope="openid profile email", prompt="none"))
        assert query_of(r.headers["location"])["error"] == "consent_required"
    async with browser(running) as stranger:
        # No session, so no user whose consent could vouch for the app: a page, not a redirect.
        assert is_page(await stranger.get("/authorize", params=_authorize(cid, prompt="none")))


async def test_rfc9700_4_11_2_consent_denied_is_sent_to_a_self_registered_app(running):
    user = await make_user(running)
    cid, secret = await _self_registered(running)
    async with browser(running) as b:
        denied = await run_flow(b, cid, secret, user, scope="openid profile", approve=False)
        assert denied.params["error"] == "access_denied"


async def test_rp_initiated_logout_2_client_id_alone_cannot_send_to_a_self_registered_apps_uri(running, caplog):
    caplog.set_level(logging.INFO, logger="ostiary.audit")
    user = await make_user(running)
    cid, secret = await _self_registered(running)
    async with browser(running) as b:
        flow = await run_flow(b, cid, secret, user, scope="openid profile")
        id_token = (await exchange(b, flow)).json()["id_token"]
        # The attack: anyone can name the app's client_id; its logout URI becomes a redirector.
        r = await b.get("/logout", params={"client_id": cid, "post_logout_redirect_uri": AFTER})
        assert is_page(r) and "id_token_hint" in r.text
        assert audit_events(caplog, "logout_redirect_refused")[-1]["client_id"] == cid
        # The app itself has the ID token it got: that works.
        r = await b.get("/logout", params={"id_token_hint": id_token, "post_logout_redirect_uri": AFTER,
                                           "state": "s"})
        r = await b.post("/logout/confirm", data={**form_fields(r.text), "decision": "logout"})
        assert r.headers["location"] == AFTER + "?state=s"


async def test_rp_initiated_logout_2_expired_id_token_hint_is_accepted(running):
    user = await make_user(running)
    cid, secret = await _self_registered(running)
    p = running.provider
    expired = await IdTokenIssuer(ISSUER, p.keyring, -3600).issue(
        await p.clients.get(cid), sub=user.id, auth_time=int(time.time()) - 7200, nonce=None, sid=None, acr=None,
        amr=("pwd",), access_token=None, claims={})
    async with browser(running) as b:
        await run_flow(b, cid, secret, user, scope="openid profile")
        r = await b.get("/logout", params={"id_token_hint": expired, "post_logout_redirect_uri": AFTER})
        assert r.status_code == 200 and 'value="logout"' in r.text
        r = await b.post("/logout/confirm", data={**form_fields(r.text), "decision": "logout"})
        assert r.headers["location"] == AFTER


async def test_rp_initiated_logout_2_hint_of_another_issuer_key_or_kind_is_refused(running):
    user = await make_user(running)
    cid, secret = await _self_registered(running)
    p = running.provider
    key = await p.keyring.signing_key("RS256")
    now = int(time.time())
    claims = {"iss": ISSUER, "sub": user.id, "aud": cid, "iat": now, "exp": now + 60}
    other_iss = jwt.sign({**claims, "iss": "https://evil.example"}, key, typ="JWT")
    logout_kind = jwt.sign(claims, key, typ="logout+jwt")
    foreign = jwt.sign(claims, ECKey.generate_key("P-256"), alg="ES256", typ="JWT")
    async with browser(running) as b:
        flow = await run_flow(b, cid, secret, user, scope="openid profile")
        access_token = (await exchange(b, flow)).json()["access_token"]
        for hint in (other_iss, logout_kind, foreign, access_token):
            r = await b.get("/logout", params={"id_token_hint": hint, "post_logout_redirect_uri": AFTER})
            assert is_page(r), hint[:40]


async def test_rfc6749_5_2_invalid_client_has_one_message_whatever_the_cause(running):
    cid, secret = await make_rp(running)
    form = {"grant_type": "client_credentials"}
    answers = []
    for headers, data in (
        (basic("no-such-client", "x"), form),  # unknown client
        (basic(cid, secret + "x"), form),  # wrong secret
        ({}, {**form, "client_id": cid, "client_secret": secret}),  # another method than registered
        ({"Authorization": "Basic !!!"}, form),  # malformed credentials
    ):
        r = await running.http.post("/token", data=data, headers=headers)
        # 401 after HTTP Basic, else 400 (RFC 6749 §5.2); the body is the same.
        assert r.status_code == (401 if "Authorization" in headers else 400), r.text
        answers.append(r.json())
    assert all(a == answers[0] for a in answers) and answers[0]["error"] == "invalid_client"


async def test_oidc_consent_page_marks_self_registered_apps_and_strips_bidi_and_controls(running):
    user = await make_user(running)
    cid, _ = await _self_registered(running, client_name="\u202eknaB\u202c Your\u0007 Bank\u200b\u2066")
    trusted, _ = await make_rp(running, client_name="Lab Results")
    async with browser(running) as b:
        r = await b.get("/authorize", params=_authorize(cid))
        path = r.headers["location"]
        page = await b.get(path)
        r = await b.post(path + "/login", data={"csrf_token": csrf_of(page.text), "username": user.username,
                                                "password": "correct horse battery"})
        page = await b.get(r.headers["location"])
        assert 'value="approve"' in page.text
        assert "knaB Your Bank" in page.text
        assert not any(c in page.text for c in "\u202e\u202c\u0007\u200b\u2066")
        assert 'id="unverified"' in page.text and '<strong id="redirect-host">rp.example</strong>' in page.text
        r = await b.get("/authorize", params=_authorize(trusted))
        page = await b.get(r.headers["location"])
        assert 'value="approve"' in page.text and 'id="unverified"' not in page.text
        assert "Lab Results" in page.text and 'id="redirect-host">rp.example<' in page.text


async def test_rfc9700_4_11_2_logout_hint_of_another_user_is_no_redirect_to_a_self_registered_app(running, caplog):
    """Attack: Mallory registers an app whose post-logout URI is her site, signs in to it herself and keeps
    the ID token; /logout?id_token_hint=<hers>&post_logout_redirect_uri=<her site> then sent every visitor
    without a session straight to her site (an open redirector on the server's name), and signed-in
    visitors there after the sign-out click. The redirect now needs the hint's subject to be the user
    of this browser's session; the signed-out page is shown otherwise."""
    caplog.set_level(logging.INFO, logger="ostiary.audit")
    mallory, victim = await make_user(running), await make_user(running)
    cid, secret = await _self_registered(running)
    async with browser(running) as attacker:
        hint = (await exchange(attacker, await run_flow(attacker, cid, secret, mallory, scope="openid"))).json()
    lure = {"id_token_hint": hint["id_token"], "post_logout_redirect_uri": AFTER, "state": "s"}
    async with browser(running) as b:
        r = await b.get("/logout", params=lure)  # no session in this browser
        assert is_page(r, 200) and "signed out" in r.text
        assert audit_events(caplog, "logout_redirect_refused")[-1]["client_id"] == cid
        other, other_secret = await make_rp(running)  # the victim is signed in (through another app)
        await run_flow(b, other, other_secret, victim, scope="openid")
        r = await b.get("/logout", params=lure)
        r = await b.post("/logout/confirm", data={**form_fields(r.text), "decision": "logout"})
        assert r.status_code == 200 and "location" not in r.headers, r.headers
    async with browser(running) as b:  # the legitimate request: the app's own user, signed in here
        flow = await run_flow(b, cid, secret, victim, scope="openid")
        own = (await exchange(b, flow)).json()["id_token"]
        r = await b.get("/logout", params={**lure, "id_token_hint": own})
        r = await b.post("/logout/confirm", data={**form_fields(r.text), "decision": "logout"})
        assert r.headers["location"] == AFTER + "?state=s"
