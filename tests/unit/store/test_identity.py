"""Contracts of UserStore, SessionStore, ConsentStore and AccessStore (ostiary.store.identity, .access)."""

from __future__ import annotations

import asyncio
import time

import pytest

from ostiary.store.access import AccessFacts
from ostiary.store.backend import Stores
from ostiary.store.identity import ClaimsChange, Session, User, UserExists

from .conftest import uid


def make_user(**changes: object) -> User:
    fields: dict[str, object] = {"id": uid("u-"), "username": uid("name-"), "password_hash": "$argon2id$x",
                                 "claims": {"name": "Ada", "email": "ada@example.org"}}
    fields.update(changes)
    return User(**fields)  # type: ignore[arg-type]


def make_session(user_id: str, *, expires_in: int = 60) -> Session:
    return Session(digest=uid("d-"), sid=uid("sid-"), user_id=user_id, auth_time=int(time.time()),
                   expires_at=int(time.time()) + expires_in, amr=("pwd", "otp"), acr="urn:x:mfa")


# -- UserStore ----------------------------------------------------------------------------------


async def test_user_create_get_by_username(stores: Stores) -> None:
    user = make_user()
    await stores.users.create(user)
    assert await stores.users.get(user.id) == user
    assert await stores.users.by_username(user.username) == user
    assert await stores.users.get(uid("none-")) is None
    assert await stores.users.by_username(uid("none-")) is None


async def test_user_username_is_unique(stores: Stores) -> None:
    user = make_user()
    await stores.users.create(user)
    with pytest.raises(UserExists):
        await stores.users.create(make_user(username=user.username))
    results = await asyncio.gather(*(stores.users.create(make_user(username=f"{user.username}-race"))
                                     for _ in range(10)), return_exceptions=True)
    assert sum(r is None for r in results) == 1  # one account per name, also when created at once


async def test_user_list_by_username(stores: Stores) -> None:
    prefix = uid("list-")
    for suffix in ("c", "a", "b"):
        await stores.users.create(make_user(username=f"{prefix}{suffix}"))
    names = [u.username for u in await stores.users.list()]
    assert [n for n in names if n.startswith(prefix)] == [f"{prefix}{s}" for s in "abc"]
    assert names == sorted(names)


async def test_user_update_keeps_creation_time(stores: Stores) -> None:
    user = make_user(created_at=1_000)
    await stores.users.create(user)
    changed = make_user(id=user.id, username=user.username, disabled=True, claims={"name": "Ada L."},
                        created_at=5_000, updated_at=6_000)
    assert await stores.users.update(changed) is True
    got = await stores.users.get(user.id)
    assert got is not None and (got.disabled, got.claims, got.created_at, got.updated_at) == (
        True, {"name": "Ada L."}, 1_000, 6_000)
    assert await stores.users.update(make_user()) is False


def confirm(email: str) -> ClaimsChange:
    """What the email confirmation writes (server/email/verify.py): only while the address is `email`."""
    return lambda claims: {**claims, "email_verified": True} if claims.get("email") == email else None


async def test_user_change_claims_decides_on_the_claims_written(stores: Stores) -> None:
    # docs/sign-in.md, email verification: a link confirms only the address it was sent to.
    user = make_user(claims={"name": "Ada", "email": "ada@example.org", "email_verified": False})
    await stores.users.create(user)
    confirmed = await stores.users.change_claims(user.id, confirm("ada@example.org"), 7_000)
    assert confirmed == await stores.users.get(user.id)
    assert confirmed is not None and confirmed.updated_at == 7_000 and confirmed.claims == {
        "name": "Ada", "email": "ada@example.org", "email_verified": True}
    assert (confirmed.password_hash, confirmed.created_at) == (user.password_hash, user.created_at)
    # The address changed since the link was mailed: refused, nothing written.
    moved = make_user(id=user.id, username=user.username, claims={"email": "new@example.org"}, updated_at=8_000)
    await stores.users.update(moved)
    assert await stores.users.change_claims(user.id, confirm("ada@example.org"), 9_000) is None
    got = await stores.users.get(user.id)
    assert got is not None and (got.claims, got.updated_at) == ({"email": "new@example.org"}, 8_000)
    assert await stores.users.change_claims(uid("none-"), confirm("ada@example.org"), 9_000) is None


async def test_user_change_claims_loses_no_change_made_at_the_same_moment(stores: Stores) -> None:
    # The lost update: the confirmation read the user and wrote the whole record back, so an administrator's
    # new address (or password, or disabling) written in between was undone, and the old address verified.
    for round_ in range(10):
        user = make_user(claims={"email": "old@example.org"})
        await stores.users.create(user)
        moved = make_user(id=user.id, username=user.username, password_hash=f"$argon2id$new{round_}",
                          disabled=True, claims={"email": "new@example.org"})
        await asyncio.gather(stores.users.change_claims(user.id, confirm("old@example.org"), int(time.time())),
                             stores.users.update(moved))
        got = await stores.users.get(user.id)
        assert got is not None
        assert (got.claims.get("email"), got.password_hash, got.disabled) == ("new@example.org", moved.password_hash,
                                                                               True)
        assert got.claims.get("email_verified") is not True  # the new address was never confirmed
    # A password written after the confirmation's caller last read the user is kept.
    user = make_user(claims={"email": "kept@example.org"})
    await stores.users.create(user)
    await stores.users.update(make_user(id=user.id, username=user.username, password_hash="$argon2id$later",
                                        claims={"email": "kept@example.org"}))
    confirmed = await stores.users.change_claims(user.id, confirm("kept@example.org"), int(time.time()))
    assert confirmed is not None and confirmed.password_hash == "$argon2id$later"
    assert confirmed.claims == {"email": "kept@example.org", "email_verified": True}


async def test_user_change_claims_at_once_all_kept(stores: Stores) -> None:
    # Ten claim changes, a new password and a disabling at the same moment (`ostiary user update` racing a
    # reset and `ostiary user disable`): every one is in the stored user.
    user = make_user(claims={})
    await stores.users.create(user)

    def add(n: int) -> ClaimsChange:
        return lambda claims: {**claims, f"c{n}": n}

    await asyncio.gather(*(stores.users.change_claims(user.id, add(n), int(time.time())) for n in range(10)),
                         stores.users.set_password_hash(user.id, "$argon2id$reset", int(time.time())),
                         stores.users.set_disabled(user.id, True, int(time.time())))
    got = await stores.users.get(user.id)
    assert got is not None and got.claims == {f"c{n}": n for n in range(10)}
    assert (got.password_hash, got.disabled) == ("$argon2id$reset", True)


async def test_user_password_and_disabled_writes_touch_only_their_field(stores: Stores) -> None:
    # Lost updates: a reset, a re-hash at sign-in or `user disable` wrote back the whole user it had read, so
    # a change made in between (a new password, a disabling, a new address) was undone.
    user = make_user(updated_at=1_000)
    await stores.users.create(user)
    await stores.users.update(make_user(id=user.id, username=user.username, claims={"email": "new@example.org"},
                                        updated_at=2_000))  # after the callers below "read" `user`
    changed = await stores.users.set_password_hash(user.id, "$argon2id$h2", 3_000)
    assert changed == await stores.users.get(user.id)
    assert changed is not None and (changed.password_hash, changed.claims, changed.updated_at) == (
        "$argon2id$h2", {"email": "new@example.org"}, 3_000)
    # A re-hash (now None: updated_at kept) only while the hash it checked is still stored.
    assert await stores.users.set_password_hash(user.id, "$argon2id$old-rehashed", None,
                                                expected=user.password_hash) is None
    rehashed = await stores.users.set_password_hash(user.id, "$argon2id$h2-rehashed", None, expected="$argon2id$h2")
    assert rehashed is not None and (rehashed.password_hash, rehashed.updated_at) == ("$argon2id$h2-rehashed", 3_000)
    disabled = await stores.users.set_disabled(user.id, True, 4_000)
    assert disabled == await stores.users.get(user.id)
    assert disabled is not None
    assert (disabled.disabled, disabled.password_hash, disabled.claims, disabled.updated_at) == (
        True, "$argon2id$h2-rehashed", {"email": "new@example.org"}, 4_000)
    assert await stores.users.set_password_hash(uid("none-"), "$argon2id$x", 1) is None
    assert await stores.users.set_disabled(uid("none-"), True, 1) is None
    # At the same moment: both writes are kept.
    other = make_user()
    await stores.users.create(other)
    await asyncio.gather(stores.users.set_disabled(other.id, True, 5_000),
                         stores.users.set_password_hash(other.id, "$argon2id$both", 5_000))
    got = await stores.users.get(other.id)
    assert got is not None and (got.disabled, got.password_hash) == (True, "$argon2id$both")


async def test_user_delete_removes_sessions_consents_and_access(stores: Stores) -> None:
    user, bystander = make_user(), make_user()
    for u in (user, bystander):
        await stores.users.create(u)
        await stores.sessions.create(make_session(u.id))
        await stores.consents.grant(u.id, "app", frozenset({"openid"}))
        await stores.access.put(AccessFacts(u.id, fhir_user="Patient/p1", patients=("p1",)))
    assert await stores.users.delete(user.id) is True
    assert await stores.users.get(user.id) is None
    assert await stores.sessions.delete_for_user(user.id) == 0
    assert await stores.consents.get(user.id, "app") == frozenset()
    assert await stores.access.get(user.id) is None
    assert await stores.consents.get(bystander.id, "app") == frozenset({"openid"})
    assert await stores.access.get(bystander.id) is not None
    assert await stores.users.delete(user.id) is False


# -- SessionStore -------------------------------------------------------------------------------


async def test_session_create_get_and_expiry(stores: Stores) -> None:
    session = make_session(uid("u-"))
    await stores.sessions.create(session)
    now = int(time.time())
    assert await stores.sessions.get(session.digest, now) == session
    assert await stores.sessions.alive(session.sid, now) is True
    assert await stores.sessions.get(session.digest, session.expires_at) is None  # expired
    assert await stores.sessions.alive(session.sid, session.expires_at) is False
    assert await stores.sessions.get(uid("none-"), now) is None


async def test_session_delete_returns_what_it_was(stores: Stores) -> None:
    session = make_session(uid("u-"))
    await stores.sessions.create(session)
    assert await stores.sessions.delete(session.digest) == session
    assert await stores.sessions.delete(session.digest) is None
    assert await stores.sessions.alive(session.sid, int(time.time())) is False


async def test_session_delete_for_user(stores: Stores) -> None:
    user, other = uid("u-"), uid("u-")
    for owner in (user, user, other):
        await stores.sessions.create(make_session(owner))
    assert await stores.sessions.delete_for_user(user) == 2
    assert await stores.sessions.delete_for_user(user) == 0
    assert await stores.sessions.delete_for_user(other) == 1


async def test_session_clients_added_at_once_are_all_kept(stores: Stores) -> None:
    session = make_session("u")
    await stores.sessions.create(session)
    await asyncio.gather(*(stores.sessions.add_client(session.digest, f"client-{i}") for i in range(10)))
    await stores.sessions.add_client(session.digest, "client-0")  # known: not added twice
    await stores.sessions.add_client(uid("none-"), "client-0")  # no session: nothing happens
    found = await stores.sessions.get(session.digest, int(time.time()))
    assert found is not None and sorted(found.clients) == sorted(f"client-{i}" for i in range(10))


# -- ConsentStore -------------------------------------------------------------------------------


async def test_consent_grant_adds_and_revoke_removes(stores: Stores) -> None:
    user, client = uid("u-"), uid("c-")
    assert await stores.consents.get(user, client) == frozenset()
    await stores.consents.grant(user, client, frozenset({"openid"}))
    await stores.consents.grant(user, client, frozenset({"profile"}))
    await stores.consents.grant(user, "other-app", frozenset({"email"}))
    assert await stores.consents.get(user, client) == frozenset({"openid", "profile"})
    assert await stores.consents.list_for_user(user) == {client: frozenset({"openid", "profile"}),
                                                          "other-app": frozenset({"email"})}
    assert await stores.consents.revoke(user, client) is True
    assert await stores.consents.revoke(user, client) is False
    assert await stores.consents.list_for_user(user) == {"other-app": frozenset({"email"})}


async def test_consents_given_at_once_are_merged(stores: Stores) -> None:
    user, client = uid("u-"), uid("c-")
    await asyncio.gather(*(stores.consents.grant(user, client, frozenset({f"s{i}", "openid"})) for i in range(10)))
    assert await stores.consents.get(user, client) == frozenset({"openid", *(f"s{i}" for i in range(10))})


# -- AccessStore --------------------------------------------------------------------------------


async def test_access_facts_put_get_replace_delete(stores: Stores) -> None:
    user = uid("u-")
    assert await stores.access.get(user) is None  # never set: no access facts at all
    facts = AccessFacts(user, fhir_user="Practitioner/p", roles=frozenset({"launch"}), patients=("a", "b"),
                        group="g1", updated_at=1_000)
    await stores.access.put(facts)
    assert await stores.access.get(user) == facts
    replaced = AccessFacts(user, all_patients=True, updated_at=2_000)
    await stores.access.put(replaced)
    assert await stores.access.get(user) == replaced
    assert await stores.access.delete(user) is True
    assert await stores.access.delete(user) is False
    assert await stores.access.get(user) is None


async def test_session_delete_for_user_keeping_one(stores: Stores) -> None:
    """A second factor set up in one session ends the user's others (web/account_totp.py)."""
    user = uid("u-")
    kept, *others = [make_session(user) for _ in range(3)]
    for session in (kept, *others):
        await stores.sessions.create(session)
    assert await stores.sessions.delete_for_user(user, keep=kept.digest) == 2
    assert await stores.sessions.get(kept.digest, int(time.time())) == kept
    for session in others:
        assert await stores.sessions.get(session.digest, int(time.time())) is None
