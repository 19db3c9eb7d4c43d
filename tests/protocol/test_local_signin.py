"""Local sign-in (`GET /signin?return_to=...`): the same engine with no client, back to a local path only.

The pages of the server itself (the account page, the EHR launcher, the developer portal) sign in here,
so a second factor can never be skipped by signing in somewhere else.
"""

from __future__ import annotations

import logging

import pytest

from ._factors import FakeFactor, registered
from ._oidc_flow import audit_events, browser, csrf_of, is_page, make_user, sign_in_locally

HOSTILE = ["//evil.example/x", "/\\evil.example", "/\\/evil.example", "https://evil.example/", "javascript:alert(1)",
           "evil.example", "/%5cevil.example", "/\t/evil.example", "/\n/evil.example", "/x\x00", "/a b", "",
           "/" + "a" * 600, "/account#frag", "%2F%2Fevil.example"]


@pytest.mark.parametrize("target", HOSTILE)
async def test_return_to_must_be_a_local_path(running, target):
    """Open redirect attacks: scheme-relative, backslash, schemes, control characters, oversized."""
    async with browser(running) as b:
        r = await b.get("/signin", params={"return_to": target})
        # (a NUL is refused before any endpoint, as everywhere)
        assert is_page(r) or (r.status_code == 400 and "location" not in r.headers), (target, r.status_code)
        assert b.cookie("ostiary_interaction") is None


async def test_refused_return_to_is_audited(running, caplog):
    caplog.set_level(logging.INFO, logger="ostiary.audit")
    async with browser(running) as b:
        await b.get("/signin", params={"return_to": "//evil.example/" + "x" * 100})
    event = audit_events(caplog, "local_signin_refused")[-1]
    assert event["return_to"] == ("//evil.example/" + "x" * 100)[:64]


async def test_local_sign_in_goes_back_to_return_to_and_is_single_use(running):
    user = await make_user(running)
    async with browser(running) as b:
        _, r = await sign_in_locally(b, user.username, "/account?tab=apps")
        assert r.status_code == 303 and r.headers["location"] == "/account?tab=apps"
        assert b.cookie("ostiary_session") and b.cookie("ostiary_interaction") is None
        assert user.username in (await b.get("/account")).text
        # Signed in: straight back; prompt=login asks for the password again.
        r = await b.get("/signin", params={"return_to": "/account"})
        assert r.status_code == 303 and r.headers["location"] == "/account"
        r = await b.get("/signin", params={"return_to": "/account", "prompt": "login"})
        assert r.headers["location"].startswith("/interaction/")


async def test_local_sign_in_asks_the_enrolled_second_factor(running):
    user = await make_user(running)
    factor = FakeFactor()
    factor.users.add(user.id)
    with registered(running, factor):
        async with browser(running) as b:
            path, page = await sign_in_locally(b, user.username)
            assert page.status_code == 200 and "/factor" in page.text and b.cookie("ostiary_session") is None
            assert "You are not signed in" in (await b.get("/account")).text
            r = await b.post(path + "/factor", data={"csrf_token": csrf_of(page.text), "factor": "fake",
                                                     "code": "123456"})
            assert r.status_code == 303
            r = await b.get(path)
            assert r.headers["location"] == "/account" and b.cookie("ostiary_session")


async def test_account_page_links_to_the_local_sign_in(running):
    async with browser(running) as b:
        page = await b.get("/account")
        assert 'href="/signin?return_to=/account"' in page.text
