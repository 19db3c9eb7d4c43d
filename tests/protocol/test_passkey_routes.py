"""Passkey routes in-process (W3C WebAuthn Level 2 through the account page and the login page): who
may call them, the recent-credential rule for changes, another user's credential, hostile bodies;
passkeys are off (routes 404, no script on pages) with the default IP-literal issuer."""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.conftest import RunningApp, settings_for, start_app
from tests.unit._passkey_authenticator import SoftAuthenticator, b64

from ._oidc_flow import Browser, audit_events, browser, csrf_of, make_user, sign_in_locally

LOCAL = "http://localhost:8000"


@pytest.fixture(scope="module")
async def local(database_url: str) -> AsyncIterator[RunningApp]:
    async for r in start_app(settings_for(database_url, issuer=LOCAL)):
        yield r


def account_csrf(html: str) -> str:
    found = re.search(r'action="/account/passkeys/register".*?name="csrf_token" value="([^"]+)"', html, re.S)
    assert found, html[:2000]
    return found.group(1)


@contextlib.asynccontextmanager
async def signed_in(running: RunningApp) -> AsyncIterator[tuple[Browser, Any, str]]:
    """A browser signed in to the account page just now, its user and the page's CSRF value."""
    user = await make_user(running)
    async with browser(running, base_url=LOCAL) as b:
        await sign_in_locally(b, user.username)
        page = await b.get("/account")
        yield b, user, account_csrf(page.text)


async def add_passkey(b: Browser, csrf: str, device: SoftAuthenticator, name: str = "Key") -> Any:
    options = (await b.post("/account/passkeys/options", data={"csrf_token": csrf})).json()
    return await b.post("/account/passkeys/register",
                        data={"csrf_token": csrf, "credential": device.create(options), "name": name})


async def test_passkeys_off_with_an_ip_issuer(running: RunningApp) -> None:
    """WebAuthn §5.1.4.1: no RP ID for an IP literal: nothing is offered, nothing answers, no script allowed."""
    assert running.provider.passkeys is None and "passkey" not in running.provider.factors
    user = await make_user(running)
    async with browser(running) as b:
        login = await b.get((await b.get("/signin", params={"return_to": "/account"})).headers["location"])
        assert "passkey" not in login.text and "script-src" not in login.headers["content-security-policy"]
        await sign_in_locally(b, user.username)
        page = await b.get("/account")
        assert "Passkeys" not in page.text and "script-src" not in page.headers["content-security-policy"]
        r = await b.post("/account/passkeys/options", data={"csrf_token": "x"})
        assert r.status_code == 404 and r.json()["error"] == "not_found"


async def test_register_list_rename_remove(local: RunningApp, caplog: pytest.LogCaptureFixture) -> None:
    async with signed_in(local) as (b, user, csrf):
        page = await b.get("/account")
        assert "script-src 'self'" in page.headers["content-security-policy"] and "/static/passkeys.js" in page.text
        options = (await b.post("/account/passkeys/options", data={"csrf_token": csrf})).json()
        assert options["rp"] == {"id": "localhost", "name": local.settings.branding.name}
        assert options["authenticatorSelection"]["residentKey"] == "required"
        device = SoftAuthenticator("localhost", LOCAL)
        with caplog.at_level(logging.INFO, "ostiary.audit"):
            r = await add_passkey(b, csrf, device, "Work laptop")
        assert r.status_code == 303 and r.headers["location"] == "/account"
        assert [e["sub"] for e in audit_events(caplog, "passkey_registered")] == [user.id]
        assert "Work laptop" in (await b.get("/account")).text
        cid = b64(device.credential_id)
        r = await b.post("/account/passkeys/name", data={"csrf_token": csrf, "credential_id": cid, "name": "Desk"})
        assert r.status_code == 303 and "Desk" in (await b.get("/account")).text
        with caplog.at_level(logging.INFO, "ostiary.audit"):
            r = await b.post("/account/passkeys/remove", data={"csrf_token": csrf, "credential_id": cid})
        assert r.status_code == 303 and audit_events(caplog, "passkey_removed")
        assert await local.provider.passkeys.credentials.list_for_user(user.id) == []


async def test_changes_need_the_account_csrf_value(local: RunningApp) -> None:
    async with signed_in(local) as (b, _, _):
        assert (await b.post("/account/passkeys/options", data={"csrf_token": "forged"})).status_code == 403
        r = await b.post("/account/passkeys/register", data={"csrf_token": "forged", "credential": "{}"})
        assert r.status_code == 403


async def test_not_signed_in_gets_no_options(local: RunningApp) -> None:
    async with browser(local, base_url=LOCAL) as b:
        r = await b.post("/account/passkeys/options", data={"csrf_token": "x"})
        assert r.status_code == 403 and "location" not in r.headers


async def test_adding_or_removing_needs_a_recent_credential(local: RunningApp,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A session whose credential is older than 5 minutes goes through the sign-in again, nothing changes."""
    async with signed_in(local) as (b, user, csrf):
        device = SoftAuthenticator("localhost", LOCAL)
        await add_passkey(b, csrf, device)
        import ostiary.web.account_forms as forms

        later = forms.time.time() + 301
        monkeypatch.setattr(forms.time, "time", lambda: later)
        r = await b.post("/account/passkeys/options", data={"csrf_token": csrf})
        assert r.status_code == 403 and r.json()["location"].startswith("/signin?return_to=/account&prompt=login")
        r = await b.post("/account/passkeys/remove", data={"csrf_token": csrf,
                                                           "credential_id": b64(device.credential_id)})
        assert r.status_code == 303 and r.headers["location"].startswith("/signin?")
        assert len(await local.provider.passkeys.credentials.list_for_user(user.id)) == 1


async def test_another_users_credential_cannot_be_renamed_or_removed(local: RunningApp) -> None:
    async with signed_in(local) as (alice, alice_user, alice_csrf), signed_in(local) as (mallory, _, mallory_csrf):
        device = SoftAuthenticator("localhost", LOCAL)
        await add_passkey(alice, alice_csrf, device)
        cid = b64(device.credential_id)
        await mallory.post("/account/passkeys/name", data={"csrf_token": mallory_csrf, "credential_id": cid,
                                                           "name": "pwned"})
        await mallory.post("/account/passkeys/remove", data={"csrf_token": mallory_csrf, "credential_id": cid})
        [kept] = await local.provider.passkeys.credentials.list_for_user(alice_user.id)
        assert kept.name == "Key"


@pytest.mark.parametrize("credential", ["", "{", "[]", "x" * 70_000, '{"id": "a", "response": {}}'])
async def test_hostile_registration_bodies_get_a_readable_400(local: RunningApp, credential: str) -> None:
    async with signed_in(local) as (b, _, csrf):
        await b.post("/account/passkeys/options", data={"csrf_token": csrf})
        r = await b.post("/account/passkeys/register", data={"csrf_token": csrf, "credential": credential})
        assert r.status_code == 400 and r.headers["content-type"].startswith("text/html")
        assert "No passkey was added" in r.text or "too large" in r.text  # (the form limit comes first)


async def test_passwordless_sign_in_through_the_login_page(local: RunningApp,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    device = SoftAuthenticator("localhost", LOCAL)
    async with signed_in(local) as (b, user, csrf):
        await add_passkey(b, csrf, device)
    async with browser(local, base_url=LOCAL) as fresh:
        r = await fresh.get("/signin", params={"return_to": "/account"})
        path = r.headers["location"]
        page = await fresh.get(path)
        assert 'id="passkey-sign-in"' in page.text and "script-src 'self'" in page.headers["content-security-policy"]
        token = csrf_of(page.text)
        options = (await fresh.post(path + "/passkey/options", data={"csrf_token": token})).json()
        assert options["userVerification"] == "required" and options["rpId"] == "localhost"
        with caplog.at_level(logging.INFO, "ostiary.audit"):
            r = await fresh.post(path + "/passkey", data={"csrf_token": token, "credential": device.get(options)})
        assert r.status_code == 303 and fresh.cookie("ostiary_session")
        assert (await fresh.get(path)).headers["location"] == "/account"
        assert audit_events(caplog, "passkey_used")[0]["sub"] == user.id


@pytest.mark.parametrize("credential", ["", "null", "{" * 5000, '{"id": "x", "response": {"clientDataJSON": 1}}'])
async def test_hostile_assertions_show_the_login_page_again(local: RunningApp, credential: str) -> None:
    async with browser(local, base_url=LOCAL) as b:
        path = (await b.get("/signin", params={"return_to": "/account"})).headers["location"]
        token = csrf_of((await b.get(path)).text)
        r = await b.post(path + "/passkey", data={"csrf_token": token, "credential": credential})
        assert r.status_code == 400 and 'id="passkey-sign-in"' in r.text and b.cookie("ostiary_session") is None
        assert (await b.post(path + "/passkey", data={"csrf_token": "forged"})).status_code == 403


async def test_interaction_options_need_the_interaction_cookie(local: RunningApp) -> None:
    async with browser(local, base_url=LOCAL) as b:
        path = (await b.get("/signin", params={"return_to": "/account"})).headers["location"]
        token = csrf_of((await b.get(path)).text)
    async with browser(local, base_url=LOCAL) as other:  # another browser: no interaction cookie
        r = await other.post(path + "/passkey/options", data={"csrf_token": token})
        assert r.status_code == 400 and "challenge" not in r.text


async def test_adding_a_passkey_ends_the_other_sessions_of_the_user(local: RunningApp) -> None:
    """Red team (as for TOTP): a session signed in earlier with a phished password loses the account page."""
    async with signed_in(local) as (b, user, csrf):
        async with browser(local, base_url=LOCAL) as phished:
            await sign_in_locally(phished, user.username)
            assert user.username in (await phished.get("/account")).text
            r = await add_passkey(b, csrf, SoftAuthenticator("localhost", LOCAL))
            assert r.status_code == 303
            assert "You are not signed in" in (await phished.get("/account")).text
            assert user.username in (await b.get("/account")).text
