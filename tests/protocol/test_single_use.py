"""Single-use things, twice at once (docs/security.md, concurrency contract): validated first, then
consumed by one conditional statement; losers get invalid_grant; a detected reuse revokes the whole
family, also what the winner received (RFC 6749 §4.1.2, RFC 9700 §4.14.2, RFC 7009 §2.2)."""

from __future__ import annotations

import asyncio

import httpx

from ostiary.config import OidcSettings

from ._oidc_flow import (
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

PARALLEL = 20  # in-process; the two-process races with 50 requests are in tests/e2e/test_races.py


async def _active(running, token: str) -> bool:
    """Whether the server still takes the token as active (what introspection tells entitled callers)."""
    found = await running.provider.inspector.find(token)
    return found is not None and found.active


def _invalid_grant(r) -> None:
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant", r.text


async def _flow(running, b, **meta):
    user = await make_user(running)
    cid, secret = await make_rp(running, **meta)
    return await run_flow(b, cid, secret, user)


async def _refresh(b, flow, token: str, **extra: str):
    form = {"grant_type": "refresh_token", "refresh_token": token, **extra}
    if flow.secret is None:
        form["client_id"] = flow.client_id
    return await b.post("/token", data=form, headers=flow.auth())


async def test_rfc7636_4_6_redemption_without_verifier_does_not_burn_the_code(running):
    async with browser(running) as b:
        flow = await _flow(running, b)
        form = flow.token_form()
        del form["code_verifier"]
        _invalid_grant(await b.post("/token", data=form, headers=flow.auth()))
        _invalid_grant(await exchange(b, flow, code_verifier="x" * 43))  # a wrong verifier neither
        r = await exchange(b, flow)
        assert r.status_code == 200, r.text
        assert await _active(running, r.json()["access_token"])


async def test_rfc6749_4_1_3_wrong_client_or_redirect_uri_does_not_burn_the_code(running):
    async with browser(running) as b:
        flow = await _flow(running, b)
        other, other_secret = await make_rp(running)
        assert other_secret is not None
        _invalid_grant(await b.post("/token", data=flow.token_form(), headers=basic(other, other_secret)))
        _invalid_grant(await exchange(b, flow, redirect_uri="https://rp.example/other"))
        r = await exchange(b, flow)
        assert r.status_code == 200, r.text


async def test_rfc6749_6_refresh_asking_a_wider_scope_does_not_burn_the_token(running):
    async with browser(running) as b:
        flow = await _flow(running, b)
        body = (await exchange(b, flow)).json()
        r = await _refresh(b, flow, body["refresh_token"], scope="openid phone")
        assert r.status_code == 400 and r.json()["error"] == "invalid_scope", r.text
        r = await _refresh(b, flow, body["refresh_token"], resource="https://elsewhere.example/")
        assert r.status_code == 400 and r.json()["error"] == "invalid_target", r.text
        r = await _refresh(b, flow, body["refresh_token"])
        assert r.status_code == 200, r.text  # still good: no reuse alarm, the family lives
        assert await _active(running, r.json()["refresh_token"])


async def test_rfc6749_4_1_2_parallel_redemptions_one_winner_and_its_tokens_revoked(running):
    async with browser(running) as b:
        flow = await _flow(running, b)
        answers = await asyncio.gather(*(exchange(b, flow) for _ in range(PARALLEL)))
        winners = [r for r in answers if r.status_code == 200]
        assert len(winners) == 1, [r.status_code for r in answers]
        for r in answers:
            if r is not winners[0]:
                _invalid_grant(r)
        body = winners[0].json()
        for token in (body["access_token"], body["refresh_token"]):
            assert not await _active(running, token)  # the replay revoked what the winner received
        _invalid_grant(await _refresh(b, flow, body["refresh_token"]))


async def test_rfc9700_4_14_2_parallel_refreshes_one_winner_and_the_family_revoked(running):
    async with browser(running) as b:
        flow = await _flow(running, b, token_endpoint_auth_method="none")
        first = (await exchange(b, flow, client_id=flow.client_id)).json()
        answers = await asyncio.gather(*(_refresh(b, flow, first["refresh_token"]) for _ in range(PARALLEL)))
        winners = [r for r in answers if r.status_code == 200]
        assert len(winners) == 1, [r.status_code for r in answers]
        assert all(r.status_code == 400 and r.json()["error"] == "invalid_grant" for r in answers if r not in winners)
        new = winners[0].json()
        for token in (first["access_token"], new["access_token"], new["refresh_token"]):
            assert not await _active(running, token)
        _invalid_grant(await _refresh(b, flow, new["refresh_token"]))


async def test_rfc7009_2_2_parallel_revocations_all_answer_200(running):
    async with browser(running) as b:
        flow = await _flow(running, b)
        body = (await exchange(b, flow)).json()
        form = {"token": body["refresh_token"], "token_type_hint": "refresh_token"}
        answers = await asyncio.gather(*(b.post("/revoke", data=form, headers=flow.auth()) for _ in range(PARALLEL)))
        assert [r.status_code for r in answers] == [200] * PARALLEL
        assert not await _active(running, body["refresh_token"])
        assert not await _active(running, body["access_token"])
        r = await b.post("/revoke", data=form, headers=flow.auth())
        assert r.status_code == 200  # and once more, long after


async def test_rfc9700_4_14_2_rotation_grace_period_gives_the_same_successor_and_no_fork(database_url):
    async with app_for(database_url, oidc=OidcSettings(refresh_token_grace_period=30)) as r:
        async with browser(r) as b:
            flow = await _flow(r, b)
            first = (await exchange(b, flow)).json()
            answers = await asyncio.gather(*(_refresh(b, flow, first["refresh_token"]) for _ in range(PARALLEL)))
            assert [a.status_code for a in answers] == [200] * PARALLEL, [a.text for a in answers]
            pairs = {(a.json()["access_token"], a.json()["refresh_token"]) for a in answers}
            assert len(pairs) == 1  # one successor pair, however many retries: the family did not fork
            access, refresh = pairs.pop()
            assert await _active(r, refresh) and await _active(r, access)
            # the successor is used: presenting the old token again is reuse and revokes the family
            newer = await _refresh(b, flow, refresh)
            assert newer.status_code == 200, newer.text
            _invalid_grant(await _refresh(b, flow, first["refresh_token"]))
            for token in (refresh, newer.json()["refresh_token"], newer.json()["access_token"]):
                assert not await _active(r, token)


async def test_rfc9700_4_14_2_rotation_grace_period_ends(database_url):
    sqlite_only(database_url)
    async with app_for(database_url, oidc=OidcSettings(refresh_token_grace_period=1)) as r:
        async with browser(r) as b:
            flow = await _flow(r, b)
            first = (await exchange(b, flow)).json()
            second = (await _refresh(b, flow, first["refresh_token"])).json()
            await asyncio.sleep(2.05)
            _invalid_grant(await _refresh(b, flow, first["refresh_token"]))
            assert not await _active(r, second["refresh_token"])


async def test_rfc6749_4_1_2_double_submitted_sign_in_issues_one_code(running):
    """A sign-in interaction is single-use at code issuance: parallel final submissions (the consent
    form sent twice, each browser following its redirect) give exactly one code; the others get the
    page the flow defines for a finished sign-in, never a second code and never a 5xx."""
    user = await make_user(running)
    cid, _ = await make_rp(running)
    async with browser(running) as b:
        verifier, challenge = pkce()
        r = await b.get("/authorize", params={
            "client_id": cid, "redirect_uri": REDIRECT, "response_type": "code", "scope": "openid profile",
            "state": "s", "code_challenge": challenge, "code_challenge_method": "S256"})
        r = await b.get(r.headers["location"])
        base = str(r.url.path)
        r = await b.post(base + "/login", data={"csrf_token": csrf_of(r.text), "username": user.username,
                                                "password": PASSWORD})
        r = await b.get(r.headers["location"])
        assert "consent" in r.text and verifier
        csrf = csrf_of(r.text)

        async def submit() -> httpx.Response:
            answer = await b.post(base + "/consent", data={"csrf_token": csrf, "decision": "approve"})
            if answer.status_code == 303 and answer.headers["location"].startswith("/interaction/"):
                answer = await b.get(answer.headers["location"])
            return answer

        answers = await asyncio.gather(*(submit() for _ in range(PARALLEL)))
    codes = [r for r in answers if r.status_code == 303 and "code" in query_of(r.headers["location"])]
    assert len(codes) == 1, [(r.status_code, r.headers.get("location")) for r in answers]
    assert all(is_page(r) for r in answers if r is not codes[0]), [r.status_code for r in answers]
