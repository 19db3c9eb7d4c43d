"""Re-authentication is real (OIDC Core §3.1.2.1): `prompt=login`, `max_age` and `id_token_hint` are
met only by a credential verified in this interaction, whose time becomes `auth_time`.

Each test posts the answer of another step (the account chooser, the consent page) where a login is
due — the attack — and then shows that signing in with the password still works.
"""

from __future__ import annotations

import logging
import time

from ._oidc_flow import (
    REDIRECT,
    audit_events,
    browser,
    csrf_of,
    decode_jwt,
    exchange,
    id_token_at,
    make_rp,
    make_user,
    password_step,
    pkce,
    query_of,
    run_flow,
    start_authorization,
)


async def _start(b, cid: str, **extra: str) -> tuple[str, str]:
    """Begin an authorization; (interaction path, code_verifier)."""
    location, verifier = await start_authorization(b, cid, scope="openid profile", state="s9", **extra)
    assert location.startswith("/interaction/"), location
    return location, verifier


async def _post_other_steps(b, path: str) -> None:
    """The attack: answer the account chooser and the consent page while the login page is due."""
    page = await b.get(path)
    csrf = csrf_of(page.text)
    await b.post(path + "/select", data={"csrf_token": csrf, "choice": "continue"})
    await b.post(path + "/consent", data={"csrf_token": csrf, "decision": "approve"})


async def test_oidc_core_3_1_2_1_prompt_login_is_not_skipped_by_posting_the_account_chooser(running):
    user = await make_user(running)
    cid, secret = await make_rp(running)
    async with browser(running) as b:
        first = await run_flow(b, cid, secret, user, scope="openid profile")
        before = (await decode_jwt(b, (await exchange(b, first)).json()["id_token"]))[1]
        path, verifier = await _start(b, cid, prompt="login")
        await _post_other_steps(b, path)
        page = await b.get(path)
        assert page.status_code == 200 and 'name="password"' in page.text  # still the login page
        # The legitimate way: the password, verified now; its time is the ID token's auth_time.
        verified_at = int(time.time())
        assert await password_step(b, path, user.username) == path
        claims = await id_token_at(b, path, cid, secret, verifier)
        assert claims["sub"] == user.id and claims["auth_time"] >= verified_at
        assert claims["sid"] != before["sid"]  # a new session, made by this login


async def test_oidc_core_3_1_2_1_max_age_is_not_met_by_consent_or_account_choice(running):
    user = await make_user(running)
    cid, secret = await make_rp(running)
    async with browser(running) as b:
        first = await run_flow(b, cid, secret, user, scope="openid profile")
        before = (await decode_jwt(b, (await exchange(b, first)).json()["id_token"]))[1]
        path, verifier = await _start(b, cid, max_age="0", prompt="select_account")
        await _post_other_steps(b, path)
        assert 'name="password"' in (await b.get(path)).text
        verified_at = int(time.time())
        await password_step(b, path, user.username)
        claims = await id_token_at(b, path, cid, secret, verifier)
        assert claims["auth_time"] >= verified_at and claims["sid"] != before["sid"]


async def test_oidc_core_3_1_2_1_id_token_hint_of_another_user_is_met_only_by_that_users_password(running, caplog):
    caplog.set_level(logging.INFO, logger="ostiary.audit")
    alice, bob = await make_user(running), await make_user(running)
    cid, secret = await make_rp(running)
    async with browser(running) as bb:
        bob_hint = (await exchange(bb, await run_flow(bb, cid, secret, bob, scope="openid profile"))).json()["id_token"]
    async with browser(running) as b:
        await run_flow(b, cid, secret, alice, scope="openid profile")
        # The attack: Alice's session, Bob's hint, and a click on "continue" instead of Bob's password.
        path, _ = await _start(b, cid, id_token_hint=bob_hint)
        await _post_other_steps(b, path)
        assert 'name="password"' in (await b.get(path)).text
        # Signing in again as Alice does not make her Bob: the client is told login_required.
        await password_step(b, path, alice.username)
        r = await b.get(path)
        assert query_of(r.headers["location"])["error"] == "login_required"
        assert audit_events(caplog, "reauthentication_refused")[-1]["sub"] == alice.id
        # Bob's own password is what the hint asks for.
        path, verifier = await _start(b, cid, id_token_hint=bob_hint)
        await password_step(b, path, bob.username)
        assert (await id_token_at(b, path, cid, secret, verifier))["sub"] == bob.id


async def test_oidc_core_3_1_2_1_a_login_in_another_interaction_does_not_count_for_this_one(running):
    user = await make_user(running)
    cid, secret = await make_rp(running)
    async with browser(running) as b:
        await run_flow(b, cid, secret, user, scope="openid profile")
        forced, verifier = await _start(b, cid, prompt="login")
        # Another tab signs in (a fresh session): this interaction still needs its own login.
        other, _ = await _start(b, cid, prompt="login")
        await password_step(b, other, user.username)
        b.cookies.set("ostiary_interaction", forced.rsplit("/", 1)[1], domain="127.0.0.1", path="/")
        assert 'name="password"' in (await b.get(forced)).text
        await password_step(b, forced, user.username)
        assert (await id_token_at(b, forced, cid, secret, verifier))["sub"] == user.id


async def test_oidc_core_3_1_2_1_interaction_stored_with_old_done_flags_asks_for_login_again(running):
    # An interaction saved by an earlier version with its string flags: no flag counts as a login.
    user = await make_user(running)
    cid, secret = await make_rp(running)
    async with browser(running) as b:
        await run_flow(b, cid, secret, user, scope="openid profile")
        path, _ = await _start(b, cid, prompt="login")
        interaction_id = path.rsplit("/", 1)[1]
        flow = running.provider.flow
        data = dict(await flow.interactions.get(interaction_id, 0))
        await flow.interactions.update(interaction_id, {"request": data["request"], "login_done": True,
                                                        "consent_done": True})
        assert 'name="password"' in (await b.get(path)).text


async def test_oidc_core_3_1_2_2_sub_asked_for_with_a_value_is_met_only_by_that_user(running):
    """Attack: an RP asks for the ID token of one user (claims={"id_token":{"sub":{"value":...}}}, say Bob's
    after a step-up) and relies on the server to answer only for him; Alice's session answered with a code
    for Alice. The value is treated like id_token_hint: Bob's password, or login_required."""
    import orjson

    alice, bob = await make_user(running), await make_user(running)
    cid, secret = await make_rp(running)
    asked = orjson.dumps({"id_token": {"sub": {"value": bob.id}}}).decode()
    async with browser(running) as bb:  # Bob uses the app too (he consented to it)
        await run_flow(bb, cid, secret, bob, scope="openid profile")
    async with browser(running) as b:
        await run_flow(b, cid, secret, alice, scope="openid profile")
        verifier, challenge = pkce()
        silent = await b.get("/authorize", params={
            "client_id": cid, "redirect_uri": REDIRECT, "response_type": "code", "scope": "openid",
            "state": "s", "code_challenge": challenge, "code_challenge_method": "S256", "prompt": "none",
            "claims": asked})
        assert query_of(silent.headers["location"]).get("error") == "login_required", silent.headers
        path, verifier = await _start(b, cid, claims=asked)
        assert 'name="password"' in (await b.get(path)).text
        await password_step(b, path, bob.username)
        assert (await id_token_at(b, path, cid, secret, verifier))["sub"] == bob.id
        again = await b.get("/authorize", params={  # the legitimate request: Bob, now signed in, silently
            "client_id": cid, "redirect_uri": REDIRECT, "response_type": "code", "scope": "openid", "state": "s",
            "code_challenge": pkce()[1], "code_challenge_method": "S256", "prompt": "none", "claims": asked})
        assert "code" in query_of(again.headers["location"]), again.headers
