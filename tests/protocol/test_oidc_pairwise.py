"""Pairwise subject identifiers (OIDC Core §8.1; Registration §5 sector_identifier_uri)."""

from __future__ import annotations

import pytest

from ostiary.errors import InvalidClientMetadata

from ._helpers import JwksServer
from ._oidc_flow import REDIRECT, browser, decode_jwt, exchange, make_rp, make_user, run_flow

OTHER_HOST = "https://other.example/cb"


async def _sub_seen(running, b, user, cid, secret, **params):
    flow = await run_flow(b, cid, secret, user, **params)
    body = (await exchange(b, flow, redirect_uri=params.get("redirect_uri", REDIRECT))).json()
    _, id_claims = await decode_jwt(b, body["id_token"])
    info = (await b.get("/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"})).json()
    return id_claims["sub"], info["sub"], body


async def test_oidc_core_8_1_pairwise_sub_differs_per_sector_and_matches_in_id_token_and_userinfo(running):
    """Attack: two unrelated relying parties joining their users by the same `sub`."""
    user = await make_user(running)
    async with browser(running) as b:
        public_cid, public_secret = await make_rp(running)
        public_id, public_info, _ = await _sub_seen(running, b, user, public_cid, public_secret)
        assert public_id == public_info == user.id
        a_cid, a_secret = await make_rp(running, subject_type="pairwise")
        a_id, a_info, a_body = await _sub_seen(running, b, user, a_cid, a_secret)
        assert a_id == a_info and a_id != user.id
        # the same sector (same redirect host) gets the same subject; the access token keeps the internal id
        b_cid, b_secret = await make_rp(running, subject_type="pairwise")
        assert (await _sub_seen(running, b, user, b_cid, b_secret))[0] == a_id
        _, access = await decode_jwt(b, a_body["access_token"])
        assert access["sub"] == user.id
    async with browser(running) as b:
        other_cid, other_secret = await make_rp(running, subject_type="pairwise", redirect_uris=[OTHER_HOST])
        other_id, _, _ = await _sub_seen(running, b, user, other_cid, other_secret, redirect_uri=OTHER_HOST)
    assert other_id not in (a_id, user.id)


async def test_oidc_core_8_1_id_token_hint_with_pairwise_sub_names_the_signed_in_user(running):
    user = await make_user(running)
    cid, secret = await make_rp(running, subject_type="pairwise")
    async with browser(running) as b:
        _, _, body = await _sub_seen(running, b, user, cid, secret)
        flow = await run_flow(b, cid, secret, user, prompt="none", id_token_hint=body["id_token"])
        assert "code" in flow.params, flow.params  # the hint names this user: no new login


async def test_oidc_registration_5_sector_identifier_uri_must_list_every_redirect_uri(running):
    """Attack: a client claiming another party's sector to get the same pairwise subjects."""
    with JwksServer.serving([REDIRECT, OTHER_HOST]) as sector:
        await make_rp(running, subject_type="pairwise", sector_identifier_uri=sector.url,
                      redirect_uris=[REDIRECT, OTHER_HOST])
        assert sector.hits == 1
    with JwksServer.serving(["https://somewhere.example/cb"]) as sector, \
            pytest.raises(InvalidClientMetadata, match="not in the sector_identifier_uri"):
        await make_rp(running, subject_type="pairwise", sector_identifier_uri=sector.url)
    with JwksServer.serving({"redirect_uris": [REDIRECT]}) as sector, \
            pytest.raises(InvalidClientMetadata, match="JSON array"):
        await make_rp(running, subject_type="pairwise", sector_identifier_uri=sector.url)
    for refused in ("https://10.0.0.1/sector.json", "http://sector.example/uris.json"):
        with pytest.raises(InvalidClientMetadata, match="sector_identifier_uri must be an https URL of a public"):
            await make_rp(running, subject_type="pairwise", sector_identifier_uri=refused)
    with JwksServer.serving([REDIRECT]) as sector, \
            pytest.raises(InvalidClientMetadata, match="could not be fetched"):
        await make_rp(running, subject_type="pairwise", sector_identifier_uri=sector.url.replace("/jwks", "/gone"))


async def test_oidc_core_8_1_pairwise_with_several_redirect_hosts_needs_a_sector_identifier_uri(running):
    with pytest.raises(InvalidClientMetadata, match="sector_identifier_uri"):
        await make_rp(running, subject_type="pairwise", redirect_uris=[REDIRECT, OTHER_HOST])
    with pytest.raises(InvalidClientMetadata, match="subject_type"):
        await make_rp(running, subject_type="secret")
