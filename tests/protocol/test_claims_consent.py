"""Claims need consent: what a `claims` request (OIDC Core §5.5) may release.

Releasable: the claims of the scopes granted in this grant, plus claims the user ticked one by one
on the consent page; protocol claims (`sub`, `auth_time`, `acr`, `amr`, `sid`, `nonce`) always.
Anything else asked for is omitted (§5.5.1), and an essential `acr` that cannot be met fails.
"""

from __future__ import annotations

import logging
import time

import orjson

from ._oidc_flow import (
    REDIRECT,
    audit_events,
    browser,
    decode_jwt,
    exchange,
    make_rp,
    make_user,
    pkce,
    query_of,
    run_flow,
)

PROFILE = {"phone_number": "+1 555 0100", "locale": "fr-FR"}


def _claims(**members: dict) -> str:
    return orjson.dumps(members).decode()


async def _tokens(b, flow) -> tuple[dict, dict]:
    """(ID token claims, UserInfo response) of a flow."""
    body = (await exchange(b, flow)).json()
    _, id_claims = await decode_jwt(b, body["id_token"])
    info = (await b.get("/userinfo", headers={"Authorization": "Bearer " + body["access_token"]})).json()
    return id_claims, info


async def test_oidc_core_5_5_1_claims_asked_for_without_consent_are_omitted(running, caplog):
    caplog.set_level(logging.INFO, logger="ostiary.audit")
    user = await make_user(running, **PROFILE)
    cid, secret = await make_rp(running)
    wanted = _claims(id_token={"email": {"essential": True}, "name": None}, userinfo={"phone_number": None})
    async with browser(running) as b:
        # The attack: scope=openid only, and the user's email, name and phone asked for by name.
        flow = await run_flow(b, cid, secret, user, scope="openid", claims=wanted)
        id_claims, info = await _tokens(b, flow)
        assert not {"email", "name", "phone_number"} & (set(id_claims) | set(info))
        assert id_claims["sub"] == info["sub"] == user.id
        withheld = audit_events(caplog, "claims_withheld")
        assert withheld and withheld[-1]["claims"] == ["email", "name", "phone_number"]
    async with browser(running) as b:
        # The legitimate request: the user ticks the email on the consent page; only that is released.
        other, other_secret = await make_rp(running)
        flow = await run_flow(b, other, other_secret, user, scope="openid", claims=wanted, consent_claims=("email",))
        id_claims, info = await _tokens(b, flow)
        assert id_claims["email"] == "alice@example.com"
        assert "name" not in id_claims and "phone_number" not in info


async def test_oidc_core_5_5_claims_of_granted_scopes_need_no_box_ticked(running):
    user = await make_user(running)
    cid, secret = await make_rp(running)
    async with browser(running) as b:
        flow = await run_flow(b, cid, secret, user, scope="openid email",
                              claims=_claims(id_token={"email": None, "name": None}))
        id_claims, _ = await _tokens(b, flow)
        assert id_claims["email"] == "alice@example.com" and "name" not in id_claims
        # The consent page offered a box for the name only (email comes with its scope).
        r = await b.get("/authorize", params={
            "client_id": cid, "redirect_uri": REDIRECT, "response_type": "code", "scope": "openid email",
            "code_challenge": pkce()[1], "code_challenge_method": "S256", "prompt": "consent",
            "claims": _claims(id_token={"email": None, "name": None})})
        page = await b.get(r.headers["location"])
        assert 'name="claim.name"' in page.text and 'name="claim.email"' not in page.text
        assert "Your full name" in page.text


async def test_oidc_core_5_5_protocol_claims_are_released_without_consent(running):
    user = await make_user(running)
    cid, secret = await make_rp(running)
    wanted = _claims(id_token={"auth_time": {"essential": True}, "amr": None, "sid": None, "acr": None})
    async with browser(running) as b:
        flow = await run_flow(b, cid, secret, user, scope="openid", claims=wanted)
        id_claims, _ = await _tokens(b, flow)
        assert isinstance(id_claims["auth_time"], int) and id_claims["amr"] == ["pwd"] and id_claims["sid"]


async def test_oidc_core_3_1_2_1_prompt_none_asking_for_unconsented_claims_is_consent_required(running):
    user = await make_user(running)
    cid, secret = await make_rp(running)
    wanted = _claims(userinfo={"email": None})
    async with browser(running) as b:
        await run_flow(b, cid, secret, user, scope="openid profile")
        # The attack: silently, with a consent for "openid profile", ask for the email by name.
        silent = {"client_id": cid, "redirect_uri": REDIRECT, "response_type": "code", "scope": "openid profile",
                  "code_challenge": pkce()[1], "code_challenge_method": "S256", "prompt": "none", "claims": wanted}
        r = await b.get("/authorize", params=silent)
        assert query_of(r.headers["location"])["error"] == "consent_required"
        # Once the user ticked it, silent requests get it.
        await run_flow(b, cid, secret, user, scope="openid profile", claims=wanted, consent_claims=("email",))
        flow = await run_flow(b, cid, secret, user, scope="openid profile", claims=wanted, prompt="none")
        assert flow.pages == []
        _, info = await _tokens(b, flow)
        assert info["email"] == "alice@example.com"


async def test_oidc_core_5_5_1_consent_form_cannot_add_claims_the_request_did_not_ask_for(running):
    user = await make_user(running, **PROFILE)
    cid, secret = await make_rp(running)
    async with browser(running) as b:
        # The form is forged to tick the phone number although only the email was asked for.
        flow = await run_flow(b, cid, secret, user, scope="openid", claims=_claims(userinfo={"email": None}),
                              consent_claims=("email", "phone_number"))
        _, info = await _tokens(b, flow)
        assert info["email"] == "alice@example.com" and "phone_number" not in info
    stored = await running.provider.consents.get(user.id, cid)
    assert '"email"' in stored and '"phone_number"' not in stored


async def test_oidc_core_5_5_1_1_essential_acr_that_cannot_be_met_fails_the_authentication(running, caplog):
    caplog.set_level(logging.INFO, logger="ostiary.audit")
    user = await make_user(running)
    cid, secret = await make_rp(running)
    async with browser(running) as b:
        await run_flow(b, cid, secret, user, scope="openid")
        r = await b.get("/authorize", params={
            "client_id": cid, "redirect_uri": REDIRECT, "response_type": "code", "scope": "openid", "state": "a1",
            "code_challenge": pkce()[1], "code_challenge_method": "S256",
            "claims": _claims(id_token={"acr": {"essential": True, "values": ["urn:example:loa:3"]}})})
        q = query_of(r.headers["location"])
        # OpenID Connect Core Error Code unmet_authentication_requirements 1.0 (docs/security.md).
        assert q["error"] == "unmet_authentication_requirements" and "code" not in q and q["state"] == "a1"
        assert audit_events(caplog, "authentication_failed")[-1]["client_id"] == cid
        # A voluntary acr request is fine: the code comes, with the level the sign-in met.
        flow = await run_flow(b, cid, secret, user, scope="openid",
                              claims=_claims(id_token={"acr": {"values": ["urn:example:loa:3"]}}))
        id_claims, _ = await _tokens(b, flow)
        assert id_claims["acr"] == "urn:ostiary:acr:password"


async def test_issue12_refresh_of_a_grant_made_before_claims_consent_releases_only_its_scopes(running):
    # A refresh token issued before claims needed consent carries the `claims` request but no
    # one-by-one consent: refreshing it no longer releases the email asked for by name.
    user = await make_user(running)
    cid, secret = await make_rp(running)
    p = running.provider
    client = await p.clients.get(cid)
    now = int(time.time())
    facts = {"user_id": user.id, "scope": ["openid", "offline_access"], "grant_id": "legacy-grant-1" + cid[:6],
             "auth_time": now, "expires_at": now + 3600, "amr": ["pwd"],
             "claims": {"id_token": {"email": None}, "userinfo": {"email": None}}}
    refresh = await p.issuer.issue_refresh_token(client, claims=facts, grant_id=facts["grant_id"],
                                                 expires_at=now + 3600)
    async with browser(running) as b:
        r = await b.post("/token", data={"grant_type": "refresh_token", "refresh_token": refresh},
                         auth=(cid, secret))
        assert r.status_code == 200, r.text
        _, id_claims = await decode_jwt(b, r.json()["id_token"])
        assert "email" not in id_claims and id_claims["sub"] == user.id
        info = (await b.get("/userinfo", headers={"Authorization": "Bearer " + r.json()["access_token"]})).json()
        assert "email" not in info


async def test_oidc_core_3_1_2_4_consent_page_lists_claims_and_account_page_shows_them(running):
    user = await make_user(running)
    cid, secret = await make_rp(running)
    async with browser(running) as b:
        await run_flow(b, cid, secret, user, scope="openid", claims=_claims(userinfo={"email": None}),
                       consent_claims=("email",))
        page = await b.get("/account")
        assert "Your email address" in page.text and "&#34;email&#34;" not in page.text
