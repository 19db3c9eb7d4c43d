"""Federation through the app (issue 11 item 8): "Sign in with ...", the callback, provisioning, linking, unlinking.

The upstream is a fake (tests/protocol/_fake_idp.py) behind the app's trusted outbound client. Each test
names the rule (OIDC Core, RFC 9207, RFC 9700) and the attack it stops.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import httpx
import jinja2
import pytest

from ostiary.config import FederationProvider
from ostiary.server.factors import Proof
from ostiary.server.policy.levels import MFA
from ostiary.server.policy.levels import PASSWORD as PASSWORD_LEVEL
from ostiary.store.federation import LinkedIdentity
from tests.protocol._fake_idp import CLIENT_ID, CLIENT_SECRET, IDP, FakeIdp
from tests.protocol._oidc_flow import (
    PASSWORD,
    REDIRECT,
    Browser,
    app_for,
    audit_events,
    basic,
    browser,
    csrf_of,
    decode_jwt,
    make_rp,
    make_user,
    pkce,
    query_of,
    run_flow,
    sqlite_only,
)

UPSTREAM = FederationProvider(id="hospital", issuer=IDP, client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                              label="Hospital")


@contextlib.asynccontextmanager
async def federated_app(database_url: str, idp: FakeIdp, **config: Any) -> AsyncIterator[Any]:
    async with app_for(database_url, federation=(replace(UPSTREAM, **config),)) as running:
        login = running.provider.federation_login
        http = httpx.AsyncClient(transport=idp.transport())
        login._http = http  # the upstream is the fake, behind the trusted client
        for upstream in login.upstreams.values():
            upstream._http = http
        yield running


async def to_login_page(b: Browser, client_id: str, **params: str) -> httpx.Response:
    _, challenge = pkce()
    r = await b.get("/authorize", params={"client_id": client_id, "redirect_uri": REDIRECT, "response_type": "code",
                                          "scope": "openid profile", "state": "s", "nonce": "n",
                                          "code_challenge": challenge, "code_challenge_method": "S256", **params})
    assert r.status_code == 303, r.text
    return await b.get(r.headers["location"])


async def upstream_sign_in(b: Browser, idp: FakeIdp, page: httpx.Response) -> tuple[httpx.Response, str]:
    """Press "Sign in with Hospital", sign in at the fake upstream, come back; returns (answer, upstream URL)."""
    assert "Sign in with Hospital" in page.text
    r = await b.post("/federation/hospital/start", data={"csrf_token": csrf_of(page.text)})
    assert r.status_code == 303 and r.headers["location"].startswith(IDP + "/authorize?"), r.text
    answer = idp.authorize(r.headers["location"])
    return await b.get("/federation/hospital/callback", params=answer), r.headers["location"]


async def started(running: Any) -> tuple[Browser, httpx.Response]:
    """A browser that pressed "Sign in with Hospital" on a fresh client's login page, and that answer."""
    cid, _ = await make_rp(running)
    b = browser(running)
    page = await to_login_page(b, cid)
    return b, await b.post("/federation/hospital/start", data={"csrf_token": csrf_of(page.text)})


async def finish(b: Browser, r: httpx.Response) -> dict[str, str]:
    """Follow the interaction to the client (consenting), returning the authorization response parameters."""
    for _ in range(6):
        if r.status_code == 303 and r.headers["location"].startswith("/"):
            r = await b.get(r.headers["location"])
            continue
        if r.status_code == 200 and 'value="approve"' in r.text:
            r = await b.post(str(r.url.path) + "/consent", data={"csrf_token": csrf_of(r.text), "decision": "approve"})
            continue
        break
    assert r.status_code == 303 and r.headers["location"].startswith(REDIRECT), (r.status_code, r.text[:1500])
    return query_of(r.headers["location"])


async def first_sign_in(running: Any, idp: FakeIdp) -> tuple[Browser, str, dict[str, str]]:
    cid, _secret = await make_rp(running)
    b = browser(running)
    r, _ = await upstream_sign_in(b, idp, await to_login_page(b, cid))
    assert r.status_code == 303 and r.headers["location"] == "/federation/link"
    choice = await b.get("/federation/link")
    assert "Create a new account" in choice.text and idp.claims["email"] in choice.text
    r = await b.post("/federation/link", data={"csrf_token": csrf_of(choice.text), "choice": "create"})
    return b, cid, await finish(b, r)


@pytest.fixture
def audit(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="ostiary.audit")
    return caplog


async def test_first_sign_in_provisions_a_user_without_access_facts(database_url, audit):
    idp = FakeIdp(sub="first-1")
    async with federated_app(database_url, idp) as running:
        _b, cid, answer = await first_sign_in(running, idp)
        assert "code" in answer
        (provisioned,) = audit_events(audit, "federation_provisioned")
        user = await running.provider.users.get(provisioned["sub"])
        assert user.username == "hospital-first-1" and user.password_hash is None
        assert user.claims["email"] == "someone@idp.example" and user.claims["email_verified"] is False
        assert await running.provider.patient_access.facts.get(user.id) is None  # no patients, no roles
        # the second sign-in goes straight through the link
        b2 = browser(running)
        r, _ = await upstream_sign_in(b2, idp, await to_login_page(b2, cid))
        assert "code" in await finish(b2, r)
        assert [e["sub"] for e in audit_events(audit, "federation_signed_in")] == [user.id]
        assert idp.token_calls == 2


async def test_an_upstream_asserting_an_existing_users_email_gets_no_access_to_that_account(database_url, audit):
    """OIDC Core §5.7: accounts are matched by (issuer, sub) only. An upstream account claiming the email of
    a local user lands on the first-sign-in choice, and "create" makes a separate, empty account."""
    idp = FakeIdp(sub="attacker")
    async with federated_app(database_url, idp) as running:
        victim = await make_user(running, email="victim@example.com", email_verified=True)
        idp.claims = {"email": "victim@example.com", "email_verified": True, "preferred_username": victim.username}
        b, _cid, answer = await first_sign_in(running, idp)
        (provisioned,) = audit_events(audit, "federation_provisioned")
        assert provisioned["sub"] != victim.id
        assert not await running.provider.federated_accounts.of_user(victim.id)
        _session, user = await running.provider.flow.session(b.cookie("ostiary_session"))
        assert user.id == provisioned["sub"] != victim.id and "code" in answer
        assert await running.provider.sessions.delete_for_user(victim.id) == 0  # never signed in as the victim


async def test_a_callback_in_another_browser_is_refused(database_url, audit):
    """Login CSRF (RFC 9700 §4.7): the upstream's answer is accepted only in the browser that went there."""
    idp = FakeIdp()
    async with federated_app(database_url, idp) as running:
        _b, r = await started(running)
        answer = idp.authorize(r.headers["location"])
        victim = browser(running)
        r = await victim.get("/federation/hospital/callback", params=answer)
        assert r.status_code == 400 and "did not work" in r.text
        assert audit_events(audit, "federation_failed")
        assert idp.token_calls == 0  # the code was never redeemed


async def test_a_replayed_callback_is_refused(database_url, audit):
    idp = FakeIdp(sub="replay")
    async with federated_app(database_url, idp) as running:
        b, r = await started(running)
        flow_cookie = b.cookie("ostiary_federation")
        answer = idp.authorize(r.headers["location"])
        first = await b.get("/federation/hospital/callback", params=answer)
        assert first.status_code == 303
        b.cookies.set("ostiary_federation", flow_cookie)  # the attacker kept the cookie and the URL
        again = await b.get("/federation/hospital/callback", params=answer)
        assert again.status_code == 400
        assert any("already used" in e["reason"] for e in audit_events(audit, "federation_failed"))


@pytest.mark.parametrize("field, value", [("state", "forged"), ("iss", "https://evil.example"), ("code", None)])
async def test_hostile_callback_parameters_are_refused(database_url, audit, field, value):
    idp = FakeIdp()
    async with federated_app(database_url, idp) as running:
        b, r = await started(running)
        answer = idp.authorize(r.headers["location"])
        if value is None:  # the parameter twice (RFC 6749 §3.1)
            query = [*answer.items(), (field, "another")]
        else:
            query = [*{**answer, field: value}.items()]
        r = await b.get("/federation/hospital/callback", params=query)
        assert r.status_code == 400 and "did not work" in r.text


async def test_start_needs_the_interactions_csrf_value(database_url):
    idp = FakeIdp()
    async with federated_app(database_url, idp) as running:
        cid, _ = await make_rp(running)
        b = browser(running)
        await to_login_page(b, cid)
        r = await b.post("/federation/hospital/start", data={"csrf_token": "forged"})
        assert r.status_code == 403
        r = await b.post("/federation/nowhere/start", data={"csrf_token": "x"})
        assert r.status_code == 404
        r = await b.get("/federation/nowhere/callback?state=x&code=y")  # no such upstream to answer for
        assert r.status_code == 404


async def test_oidc_3_1_2_1_prompt_login_is_forwarded_and_an_old_upstream_session_refused(database_url, audit):
    """Re-authentication asked of this server is asked of the upstream, and its auth_time checked."""
    idp = FakeIdp(sub="reauth")
    async with federated_app(database_url, idp) as running:
        b, cid, _ = await first_sign_in(running, idp)
        idp.auth_time = lambda: int(time.time()) - 3600  # the upstream answers from its old session
        r, upstream_url = await upstream_sign_in(b, idp, await to_login_page(b, cid, prompt="login", max_age="0"))
        assert "prompt=login" in upstream_url and "max_age=0" in upstream_url
        assert r.status_code == 400
        assert any("older" in e["reason"] for e in audit_events(audit, "federation_failed"))
        idp.auth_time = lambda: int(time.time())  # the upstream asked the user again
        r, _ = await upstream_sign_in(b, idp, await to_login_page(b, cid, prompt="login"))
        assert "code" in await finish(b, r)


async def test_a_disabled_users_link_signs_nobody_in(database_url, audit):
    idp = FakeIdp(sub="to-disable")
    async with federated_app(database_url, idp) as running:
        _b, cid, _ = await first_sign_in(running, idp)
        (provisioned,) = audit_events(audit, "federation_provisioned")
        user = await running.provider.users.get(provisioned["sub"])
        await running.provider.user_service.set_disabled(user.username, True)
        b2 = browser(running)
        r, _ = await upstream_sign_in(b2, idp, await to_login_page(b2, cid))
        assert r.status_code == 403


async def test_provisioning_can_be_turned_off(database_url):
    idp = FakeIdp(sub="no-provision")
    async with federated_app(database_url, idp, provision=False) as running:
        cid, _ = await make_rp(running)
        b = browser(running)
        r, _ = await upstream_sign_in(b, idp, await to_login_page(b, cid))
        choice = await b.get(r.headers["location"])
        assert "Create a new account" not in choice.text
        r = await b.post("/federation/link", data={"csrf_token": csrf_of(choice.text), "choice": "create"})
        assert r.status_code == 200 and "Create a new account" not in r.text  # shown the choice again


async def test_account_page_lists_links_and_keeps_the_last_way_to_sign_in(database_url, audit):
    idp = FakeIdp(sub="account-page")
    async with federated_app(database_url, idp) as running:
        b, _, _ = await first_sign_in(running, idp)
        page = await b.get("/account")
        assert "Linked identity providers" in page.text and "someone@idp.example" in page.text
        form = {"csrf_token": csrf_of(page.text), "provider": "hospital", "subject": "account-page"}
        r = await b.post("/account/federation/unlink", data=form)
        assert r.status_code == 409 and "only way to sign in" in r.text  # no password: keep it
        assert not audit_events(audit, "federation_unlinked")


async def test_unlinking_needs_a_recent_credential_and_only_touches_ones_own_links(database_url, audit):
    idp = FakeIdp(sub="unlink-me")
    async with federated_app(database_url, idp) as running:
        b, _, _ = await first_sign_in(running, idp)
        (provisioned,) = audit_events(audit, "federation_provisioned")
        p = running.provider
        user = await p.users.get(provisioned["sub"])
        await p.user_service.set_password(user.username, PASSWORD)  # now it has another way to sign in
        page = await b.get("/account")
        form = {"csrf_token": csrf_of(page.text), "provider": "hospital", "subject": "unlink-me"}
        other = await make_user(running)  # someone else's link is never removed through this account
        await p.federated_accounts.links.add(replace(
            (await p.federated_accounts.of_user(user.id))[0], subject="theirs", user_id=other.id))
        r = await b.post("/account/federation/unlink", data={**form, "subject": "theirs"})
        assert r.status_code == 303 and len(await p.federated_accounts.of_user(other.id)) == 1
        session = await p.flow.session(b.cookie("ostiary_session"))
        await p.sessions.delete(session[0].digest)  # a session signed in long ago
        await p.sessions.create(replace(session[0], auth_time=int(time.time()) - 600))
        r = await b.post("/account/federation/unlink", data=form)
        assert r.status_code == 303 and r.headers["location"].startswith("/signin?return_to=/account")
        assert len(await p.federated_accounts.of_user(user.id)) == 1
        await p.sessions.delete(session[0].digest)
        await p.sessions.create(session[0])
        r = await b.post("/account/federation/unlink", data=form)
        assert r.status_code == 303 and r.headers["location"] == "/account"
        assert not await p.federated_accounts.of_user(user.id)
        assert [e["sub"] for e in audit_events(audit, "federation_unlinked")] == [user.id]


async def id_token_after(running: Any, idp: FakeIdp, *, create: bool = True,
                         factor_code: str | None = None) -> dict[str, Any]:
    """A client's ID token after a sign-in through the fake upstream (creating the account the first time)."""
    cid, secret = await make_rp(running)
    b = browser(running)
    verifier, challenge = pkce()
    r = await b.get("/authorize", params={"client_id": cid, "redirect_uri": REDIRECT, "response_type": "code",
                                          "scope": "openid", "nonce": "n", "code_challenge": challenge,
                                          "code_challenge_method": "S256"})
    r, _ = await upstream_sign_in(b, idp, await b.get(r.headers["location"]))
    if create:
        choice = await b.get("/federation/link")
        r = await b.post("/federation/link", data={"csrf_token": csrf_of(choice.text), "choice": "create"})
    if factor_code is not None:  # the engine asks the user's second factor after the upstream sign-in
        page = await b.get(r.headers["location"])
        assert "use one of your second factors" in page.text, page.text[:1500]
        r = await b.post(str(page.url.path) + "/factor", data={"csrf_token": csrf_of(page.text), "factor": "fake",
                                                                 "code": factor_code})
    answer = await finish(b, r)
    tokens = await b.post("/token", data={"grant_type": "authorization_code", "code": answer["code"],
                                          "redirect_uri": REDIRECT, "code_verifier": verifier},
                          headers=basic(cid, secret))
    _, claims = await decode_jwt(b, tokens.json()["id_token"])
    return claims


async def test_rfc8176_a_federated_sign_in_is_amr_fed_at_the_password_level(database_url):
    """Untrusted upstream amr/acr are ignored: amr ["fed"] (unregistered in RFC 8176, documented), never mfa,
    and auth_time is the upstream's."""
    sqlite_only(database_url)
    idp = FakeIdp(sub="id-token", claims={"amr": ["pwd", "otp", "mfa"], "acr": "phrh", "email": "x@idp.example"})
    upstream_time = int(time.time()) - 120
    idp.auth_time = lambda: upstream_time
    async with federated_app(database_url, idp) as running:
        claims = await id_token_after(running, idp)
        assert claims["amr"] == ["fed"] and claims["acr"] == PASSWORD_LEVEL
        assert claims["auth_time"] == upstream_time


async def test_an_upstream_trusted_for_amr_and_acr_gives_multi_factor(database_url):
    sqlite_only(database_url)
    idp = FakeIdp(sub="trusted", claims={"amr": ["pwd", "otp"], "acr": "phr", "email": "x@idp.example"})
    async with federated_app(database_url, idp, trust_amr=True, trust_acr=True) as running:
        claims = await id_token_after(running, idp)
        assert claims["amr"] == ["fed", "pwd", "otp", "mfa"] and claims["acr"] == "phr"


class FakeFactor:
    """A second factor the test controls (the engine's SecondFactor protocol)."""

    name = "fake"
    phishing_resistant = False

    def __init__(self, user_ids: set[str]) -> None:
        self.user_ids = user_ids

    async def enrolled(self, user_id: str) -> bool:
        return user_id in self.user_ids

    async def challenge(self, user_id: str, interaction_id: str) -> dict[str, Any]:
        return {}

    async def verify(self, user_id: str, interaction_id: str, form: Any) -> Proof | None:
        return Proof(user_id, ("otp",), frozenset({"possession"})) if form.get("code") == "123456" else None


async def test_a_user_with_a_second_factor_is_asked_for_it_after_the_upstream(database_url, audit, monkeypatch):
    """The engine's policy: once a second factor is enrolled it is used at every sign-in, federated ones too."""
    sqlite_only(database_url)
    from ostiary.web import render

    partial = jinja2.DictLoader({"factor_fake.html": '<input name="code" autocomplete="one-time-code">'})
    monkeypatch.setattr(render._env, "loader", jinja2.ChoiceLoader([render._env.loader, partial]))
    idp = FakeIdp(sub="with-factor", claims={"email": "x@idp.example"})
    async with federated_app(database_url, idp) as running:
        await id_token_after(running, idp)
        (provisioned,) = audit_events(audit, "federation_provisioned")
        factor = FakeFactor({provisioned["sub"]})
        running.provider.factors["fake"] = factor
        try:
            claims = await id_token_after(running, idp, create=False, factor_code="123456")
        finally:
            del running.provider.factors["fake"]
        # the upstream sign-in and a local second factor: two factors (docs/sign-in.md, federation)
        assert claims["amr"] == ["fed", "otp", "mfa"] and claims["acr"] == MFA


async def test_linking_to_an_existing_account_needs_its_password_and_a_confirmation(database_url, audit):
    """No silent linking: the person signs in to the existing account (password, second factor if any) after
    the upstream sign-in, sees what is linked to what, and confirms. Then the upstream signs in as that user."""
    idp = FakeIdp(sub="to-link", claims={"email": "alice@idp.example"})
    async with federated_app(database_url, idp) as running:
        alice = await make_user(running)
        cid, _ = await make_rp(running)
        b = browser(running)
        r, _ = await upstream_sign_in(b, idp, await to_login_page(b, cid))
        choice = await b.get("/federation/link")
        early = await b.get("/federation/link/confirm")  # not signed in to the account yet: back to the choice
        assert early.status_code == 303 and early.headers["location"] == "/federation/link"
        r = await b.post("/federation/link", data={"csrf_token": csrf_of(choice.text), "choice": "link"})
        assert r.headers["location"].startswith("/signin?return_to=/federation/link/confirm&prompt=login")
        r = await b.get(r.headers["location"])
        login = await b.get(r.headers["location"])
        assert 'name="password"' in login.text
        r = await b.post(str(login.url.path) + "/login", data={"csrf_token": csrf_of(login.text),
                                                               "username": alice.username, "password": PASSWORD})
        r = await b.get(r.headers["location"])
        assert r.headers["location"] == "/federation/link/confirm"
        confirm = await b.get("/federation/link/confirm")
        assert alice.username in confirm.text and "alice@idp.example" in confirm.text
        r = await b.post("/federation/link/confirm", data={"csrf_token": "forged", "decision": "link"})
        assert r.status_code == 403 and not await running.provider.federated_accounts.of_user(alice.id)
        r = await b.post("/federation/link/confirm", data={"csrf_token": csrf_of(confirm.text), "decision": "link"})
        assert "code" in await finish(b, r)
        (linked,) = await running.provider.federated_accounts.of_user(alice.id)
        assert linked.subject == "to-link"
        assert [e["sub"] for e in audit_events(audit, "federation_linked")] == [alice.id]
        b2 = browser(running)  # from now on the upstream account signs in as alice
        r, _ = await upstream_sign_in(b2, idp, await to_login_page(b2, cid))
        assert "code" in await finish(b2, r)
        assert audit_events(audit, "federation_signed_in")[-1]["sub"] == alice.id


async def test_a_session_from_before_the_upstream_sign_in_does_not_confirm_a_link(database_url):
    """Someone else's account left signed in on a shared computer is not linked: the confirmation needs a
    sign-in made after the upstream one."""
    idp = FakeIdp(sub="shared-computer", claims={"email": "bob@idp.example"})
    async with federated_app(database_url, idp) as running:
        cid, _ = await make_rp(running)
        b = browser(running)
        flow = await run_flow(b, cid, None, await make_user(running))  # the previous person signed in here
        assert "code" in flow.params
        r, _ = await upstream_sign_in(b, idp, await to_login_page(b, cid, prompt="login"))
        r = await b.get("/federation/link/confirm")
        assert r.status_code == 303 and r.headers["location"] == "/federation/link"


async def test_the_account_pages_reauthentication_goes_through_the_upstream_again(database_url, audit):
    """A federated user's credential change: the local sign-in (prompt=login) offers the provider, forwards
    prompt=login upstream, and the fresh upstream sign-in brings the user back to the account page."""
    sqlite_only(database_url)
    idp = FakeIdp(sub="reauth-account", claims={"email": "x@idp.example"})
    async with federated_app(database_url, idp) as running:
        b, _, _ = await first_sign_in(running, idp)
        p = running.provider
        session, user = await p.flow.session(b.cookie("ostiary_session"))
        await p.sessions.delete(session.digest)
        await p.sessions.create(replace(session, auth_time=int(time.time()) - 600))  # signed in long ago
        page = await b.get("/account")
        r = await b.post("/account/federation/unlink", data={"csrf_token": csrf_of(page.text),
                                                             "provider": "hospital", "subject": "reauth-account"})
        assert r.headers["location"] == "/signin?return_to=/account&prompt=login"
        r = await b.get(r.headers["location"])
        login = await b.get(r.headers["location"])
        r, upstream_url = await upstream_sign_in(b, idp, login)
        assert "prompt=login" in upstream_url
        while r.status_code == 303 and r.headers["location"] != "/account":
            r = await b.get(r.headers["location"])
        assert r.headers["location"] == "/account"
        fresh, again = await p.flow.session(b.cookie("ostiary_session"))
        assert again.id == user.id and fresh.auth_time >= int(time.time()) - 5 and fresh.amr == ("fed",)


async def test_confirming_a_link_the_identity_got_meanwhile_is_refused_and_declining_links_nothing(database_url,
                                                                                                  audit):
    """Two tabs: the upstream identity was linked to another account while this confirmation page was open
    (one identity, one user: 409, nothing changed); and "Do not connect" links nothing."""
    sqlite_only(database_url)
    idp = FakeIdp(sub="two-tabs", claims={"email": "t@idp.example"})
    async with federated_app(database_url, idp) as running:
        p = running.provider
        alice = await make_user(running)
        cid, _ = await make_rp(running)

        async def to_confirmation() -> tuple[Browser, httpx.Response]:
            b = browser(running)
            await upstream_sign_in(b, idp, await to_login_page(b, cid))
            choice = await b.get("/federation/link")
            r = await b.post("/federation/link", data={"csrf_token": csrf_of(choice.text), "choice": "link"})
            login = await b.get((await b.get(r.headers["location"])).headers["location"])
            await b.post(str(login.url.path) + "/login", data={"csrf_token": csrf_of(login.text),
                                                               "username": alice.username, "password": PASSWORD})
            return b, await b.get("/federation/link/confirm")

        b, confirm = await to_confirmation()
        r = await b.post("/federation/link/confirm", data={"csrf_token": csrf_of(confirm.text), "decision": "cancel"})
        assert r.status_code == 303 and r.headers["location"].startswith("/interaction/")
        assert not await p.federated_accounts.of_user(alice.id) and audit_events(audit, "federation_link_declined")

        b, confirm = await to_confirmation()
        other = await make_user(running)
        now = int(time.time())
        await p.federated_accounts.links.add(LinkedIdentity("hospital", "two-tabs", other.id, now, now, "t"))
        r = await b.post("/federation/link/confirm", data={"csrf_token": csrf_of(confirm.text), "decision": "link"})
        assert r.status_code == 409 and not await p.federated_accounts.of_user(alice.id)
        assert (await p.federated_accounts.links.find("hospital", "two-tabs")).user_id == other.id
