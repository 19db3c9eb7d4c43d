"""OpenID Connect Front-Channel Logout 1.0: the signed-out page frames each client's logout URI."""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qs, urlsplit

import pytest

from ostiary.errors import InvalidClientMetadata

from ._oidc_flow import ISSUER, browser, decode_jwt, exchange, form_fields, make_rp, make_user, run_flow

AFTER = "https://rp.example/logged-out"
FRONT = "https://rp.example/frontchannel?app=1"


def _frames(page: str) -> list[str]:
    return [html.unescape(u) for u in re.findall(r'<iframe src="([^"]+)"', page)]


async def _sign_in_and_out(running, b, **meta):
    user = await make_user(running)
    cid, secret = await make_rp(running, post_logout_redirect_uris=[AFTER], **meta)
    body = (await exchange(b, await run_flow(b, cid, secret, user))).json()
    page = await b.get("/logout", params={"id_token_hint": body["id_token"], "post_logout_redirect_uri": AFTER,
                                          "state": "s1"})
    r = await b.post("/logout/confirm", data={**form_fields(page.text), "decision": "logout"})
    return body, r


async def test_frontchannel_logout_4_signed_out_page_frames_uri_with_iss_and_sid_then_moves_on(running):
    async with browser(running) as b:
        body, r = await _sign_in_and_out(running, b, frontchannel_logout_uri=FRONT,
                                         frontchannel_logout_session_required=True)
        _, id_claims = await decode_jwt(b, body["id_token"])
    assert r.status_code == 200, r.text
    [frame] = _frames(r.text)
    query = parse_qs(urlsplit(frame).query)
    assert frame.startswith("https://rp.example/frontchannel?")
    assert query == {"app": ["1"], "iss": [ISSUER], "sid": [id_claims["sid"]]}  # §2: iss and sid with the RP's own
    csp = r.headers["content-security-policy"]
    assert "frame-src https://rp.example" in csp and "frame-ancestors 'none'" in csp
    assert f'content="2;url={AFTER}?state=s1"' in r.text and f'href="{AFTER}?state=s1"' in r.text
    assert "set-cookie" in r.headers  # the session cookie is cleared as before
    # the framed page runs as itself but may not navigate this page away (to a look-alike sign-in page)
    assert 'sandbox="allow-scripts allow-same-origin"' in r.text


async def test_frontchannel_logout_2_without_session_required_the_uri_is_framed_as_registered(running):
    async with browser(running) as b:
        _, r = await _sign_in_and_out(running, b, frontchannel_logout_uri=FRONT)
    assert _frames(r.text) == [FRONT]


async def test_frontchannel_logout_clients_without_uri_get_the_plain_redirect(running):
    async with browser(running) as b:
        _, r = await _sign_in_and_out(running, b)
    assert r.status_code == 303 and r.headers["location"] == AFTER + "?state=s1"
    assert "frame-src" not in r.headers.get("content-security-policy", "")


@pytest.mark.parametrize("uri", ["https://evil.example/frontchannel", "http://rp.example/frontchannel",
                                 "https://rp.example:8443/frontchannel", "https://rp.example/f#frag"])
async def test_frontchannel_logout_2_uri_must_share_a_redirect_uris_origin(running, uri):
    """Attack: a client framing an unrelated site (or one of its own pages elsewhere) in the OP's page."""
    with pytest.raises(InvalidClientMetadata, match="frontchannel_logout_uri"):
        await make_rp(running, frontchannel_logout_uri=uri)


async def test_frontchannel_logout_3_discovery_says_supported(running):
    meta = (await running.http.get("/.well-known/openid-configuration")).json()
    assert meta["frontchannel_logout_supported"] is True and meta["frontchannel_logout_session_supported"] is True
