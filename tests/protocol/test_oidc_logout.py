"""RP-Initiated Logout 1.0 and Back-Channel Logout 1.0."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import pytest

from ._oidc_flow import (
    ISSUER,
    REDIRECT,
    browser,
    csrf_of,
    decode_jwt,
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
EVENT = "http://schemas.openid.net/event/backchannel-logout"


class Receiver:
    """A real HTTP server on 127.0.0.1 that records back-channel logout POSTs."""

    def __init__(self) -> None:
        self.received: list[dict[str, list[str]]] = []
        self.content_types: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                outer.content_types.append(self.headers.get("content-type", ""))
                outer.received.append(parse_qs(self.rfile.read(length).decode()))
                self.send_response(200)
                self.send_header("Cache-Control", "no-store")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/backchannel"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    rec = Receiver()
    rec.thread.start()
    try:
        yield rec
    finally:
        rec.server.shutdown()
        rec.server.server_close()


async def _signed_in(running, b, **meta):
    user = await make_user(running)
    cid, secret = await make_rp(running, post_logout_redirect_uris=[AFTER], **meta)
    flow = await run_flow(b, cid, secret, user)
    body = (await exchange(b, flow)).json()
    return None, cid, secret, user, body


async def _prompt_none(b, cid: str) -> dict[str, str]:
    r = await b.get("/authorize", params={"client_id": cid, "redirect_uri": REDIRECT, "response_type": "code",
                                          "scope": "openid profile email offline_access", "prompt": "none",
                                          "code_challenge": pkce()[1], "code_challenge_method": "S256"})
    return query_of(r.headers["location"])


async def test_rp_initiated_logout_2_confirm_then_redirect_with_state_and_session_gone(running):
    async with browser(running) as b:
        _, cid, _, _, body = await _signed_in(running, b)
        assert "code" in await _prompt_none(b, cid)
        r = await b.get("/logout", params={"id_token_hint": body["id_token"], "post_logout_redirect_uri": AFTER,
                                           "state": "bye-1"})
        assert r.status_code == 200 and 'name="csrf_token"' in r.text
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
        fields = form_fields(r.text)
        assert fields["post_logout_redirect_uri"] == AFTER and fields["state"] == "bye-1"
        assert "code" in await _prompt_none(b, cid)  # showing the page logs nobody out
        r = await b.post("/logout/confirm", data={**fields, "decision": "logout"})
        assert r.status_code in (302, 303)
        assert r.headers["location"] == AFTER + "?state=bye-1"
        assert (await _prompt_none(b, cid))["error"] == "login_required"


async def test_rp_initiated_logout_2_post_and_client_id_work_too(running):
    async with browser(running) as b:
        _, cid, _, _, _ = await _signed_in(running, b)
        r = await b.post("/logout", data={"client_id": cid, "post_logout_redirect_uri": AFTER})
        assert r.status_code == 200
        r = await b.post("/logout/confirm", data={**form_fields(r.text), "decision": "logout"})
        assert r.headers["location"] == AFTER


async def test_rp_initiated_logout_2_confirmation_is_csrf_protected(running):
    async with browser(running) as b:
        _, cid, _, _, body = await _signed_in(running, b)
        hidden = {"id_token_hint": body["id_token"], "post_logout_redirect_uri": AFTER, "decision": "logout"}
        assert is_page(await b.post("/logout/confirm", data=hidden), 403)
        assert is_page(await b.post("/logout/confirm", data={**hidden, "csrf_token": "forged"}), 403)
        assert "code" in await _prompt_none(b, cid)
        # A token from another session does not fit this one.
        async with browser(running) as other:
            _, _, _, _, other_body = await _signed_in(running, other)
            page = await other.get("/logout", params={"id_token_hint": other_body["id_token"]})
            token = csrf_of(page.text)
        assert is_page(await b.post("/logout/confirm", data={**hidden, "csrf_token": token}), 403)
        assert "code" in await _prompt_none(b, cid)


async def test_rp_initiated_logout_2_stay_signed_in_keeps_the_session(running):
    async with browser(running) as b:
        _, cid, _, _, body = await _signed_in(running, b)
        page = await b.get("/logout", params={"id_token_hint": body["id_token"]})
        r = await b.post("/logout/confirm", data={**form_fields(page.text), "decision": "stay"})
        assert r.status_code == 200 and "location" not in r.headers
        assert "code" in await _prompt_none(b, cid)


@pytest.mark.parametrize("uri", [
    "https://evil.example/", "https://rp.example/logged-out/x", "https://rp.example/logged-out?x=1", REDIRECT,
])
async def test_rp_initiated_logout_3_unregistered_post_logout_redirect_uri_is_error_page(running, uri):
    async with browser(running) as b:
        _, cid, _, _, body = await _signed_in(running, b)
        r = await b.get("/logout", params={"id_token_hint": body["id_token"], "post_logout_redirect_uri": uri,
                                           "state": "s"})
        assert is_page(r)
        r = await b.post("/logout/confirm", data={"id_token_hint": body["id_token"], "post_logout_redirect_uri": uri,
                                                  "decision": "logout"})
        assert is_page(r)
        assert "code" in await _prompt_none(b, cid)


async def test_rp_initiated_logout_3_post_logout_redirect_uri_needs_a_client(running):
    r = await running.http.get("/logout", params={"post_logout_redirect_uri": AFTER})
    assert is_page(r)
    r = await running.http.get("/logout", params={"id_token_hint": "not.a.jwt", "post_logout_redirect_uri": AFTER})
    assert is_page(r)


async def test_rp_initiated_logout_2_id_token_hint_must_match_client_id(running):
    async with browser(running) as b:
        _, _, _, _, body = await _signed_in(running, b)
        other, _ = await make_rp(running, post_logout_redirect_uris=[AFTER])
        r = await b.get("/logout", params={"id_token_hint": body["id_token"], "client_id": other,
                                           "post_logout_redirect_uri": AFTER})
        assert is_page(r)


async def test_rp_initiated_logout_2_without_session_just_says_signed_out(running):
    async with browser(running) as b:
        r = await b.get("/logout")
        assert r.status_code == 200 and "signed out" in r.text.lower()


async def test_backchannel_logout_2_4_logout_token_is_sent_to_each_client(running, receiver):
    async with browser(running) as b:
        _, cid, _, _, body = await _signed_in(running, b, backchannel_logout_uri=receiver.url,
                                              backchannel_logout_session_required=True,
                                              id_token_signed_response_alg="ES256")
        _, id_claims = await decode_jwt(b, body["id_token"])
        before = len(receiver.received)
        page = await b.get("/logout", params={"id_token_hint": body["id_token"]})
        r = await b.post("/logout/confirm", data={**form_fields(page.text), "decision": "logout"})
        assert r.status_code == 200
        for _ in range(100):
            if len(receiver.received) > before:
                break
            await asyncio.sleep(0.05)
        assert len(receiver.received) == before + 1
        assert receiver.content_types[-1].startswith("application/x-www-form-urlencoded")
        token = receiver.received[-1]["logout_token"][0]
        header, claims = await decode_jwt(b, token)
        assert header["typ"] == "logout+jwt" and header["alg"] == "ES256"
        assert claims["iss"] == ISSUER
        assert claims["aud"] == cid or claims["aud"] == [cid]
        assert isinstance(claims["iat"], int) and claims["jti"]
        assert claims["sid"] == id_claims["sid"] and claims["sub"] == id_claims["sub"]
        assert claims["events"] == {EVENT: {}}
        assert "nonce" not in claims  # Back-Channel Logout 1.0 §2.4: prohibited
        # The RP's tokens of that session: the refresh token remains the RP's business (offline_access).
