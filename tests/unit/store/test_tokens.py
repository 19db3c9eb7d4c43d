"""Contract of TokenStore (ostiary.store.protocols): records, revocation, rotation and purging, every backend."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

from ostiary.store.backend import Stores

from .conftest import RACERS, token_record, uid


async def test_token_save_find(stores: Stores) -> None:
    record = token_record(uid("client-"), kind="refresh_token")
    await stores.tokens.save(record)
    assert await stores.tokens.find(record.digest) == record
    assert await stores.tokens.find("0" * 64) is None


async def test_token_claims_are_stored_not_shared(stores: Stores) -> None:
    claims = {"scope": "api:read", "aud": ["a"]}
    record = replace(token_record(uid("c-")), claims=claims)
    await stores.tokens.save(record)
    claims["scope"] = "api:write"  # the caller's dict changes later: the stored record does not
    found = await stores.tokens.find(record.digest)
    assert found is not None and found.claims["scope"] == "api:read"


async def test_token_revoke(stores: Stores) -> None:
    record = token_record(uid("client-"))
    await stores.tokens.save(record)
    assert await stores.tokens.revoke(record.digest) is True
    got = await stores.tokens.find(record.digest)
    assert got is not None and got.revoked is True  # found, revoked or not
    assert await stores.tokens.revoke(record.digest) is True  # idempotent
    assert await stores.tokens.revoke("f" * 64) is False


async def test_token_revoke_jti(stores: Stores) -> None:
    jti = uid("jti-")
    assert await stores.tokens.is_jti_revoked(jti) is False
    await stores.tokens.revoke_jti(jti, int(time.time()) + 600)
    assert await stores.tokens.is_jti_revoked(jti) is True
    await stores.tokens.revoke_jti(jti, int(time.time()) + 600)  # twice is fine (RFC 7009 §2.2)
    assert await stores.tokens.is_jti_revoked(jti) is True
    assert await stores.tokens.is_jti_revoked(uid("other-")) is False


async def test_revoke_jti_concurrently_is_idempotent(stores: Stores) -> None:
    jti = uid("jti-")
    await asyncio.gather(*(stores.tokens.revoke_jti(jti, int(time.time()) + 60) for _ in range(20)))
    assert await stores.tokens.is_jti_revoked(jti)


async def test_token_purge_expired(stores: Stores) -> None:
    store = stores.tokens
    # times far in the past so that only these records are older than `now`
    old, fresh = token_record(uid("p-"), expires_at=1_000), token_record(uid("p-"), expires_at=5_000)
    await store.save(old)
    await store.save(fresh)
    old_jti, fresh_jti = uid("old-"), uid("fresh-")
    await store.revoke_jti(old_jti, 1_000)
    await store.revoke_jti(fresh_jti, 5_000)
    assert await store.purge_expired(now=2_000) == 2
    assert await store.find(old.digest) is None
    assert await store.find(fresh.digest) == fresh
    assert await store.is_jti_revoked(old_jti) is False
    assert await store.is_jti_revoked(fresh_jti) is True
    assert await store.purge_expired(now=2_000) == 0
    await store.purge_expired(now=6_000)  # leave nothing behind for the other tests


# -- refresh rotation (RFC 9700 §4.14.2): consume, successor, grant-level revocation -----------------


async def test_token_consume_once(stores: Stores) -> None:
    record = token_record(uid("c-"), kind="refresh_token")
    await stores.tokens.save(record)
    now = int(time.time())
    used = await stores.tokens.consume(record.digest, now)
    assert used is not None and used.consumed_at == now and used.digest == record.digest
    assert await stores.tokens.consume(record.digest, now) is None  # a replay
    found = await stores.tokens.find(record.digest)
    assert found is not None and found.consumed_at == now  # a reuse can be told from garbage
    assert await stores.tokens.consume("e" * 64, now) is None


async def test_token_consume_refuses_expired_and_revoked(stores: Stores) -> None:
    now = int(time.time())
    expired = token_record(uid("c-"), kind="refresh_token", expires_at=now)
    revoked = token_record(uid("c-"), kind="refresh_token")
    await stores.tokens.save(expired)
    await stores.tokens.save(revoked)
    await stores.tokens.revoke(revoked.digest)
    assert await stores.tokens.consume(expired.digest, now) is None  # expires_at is not still alive
    assert await stores.tokens.consume(revoked.digest, now) is None
    found = await stores.tokens.find(expired.digest)
    assert found is not None and found.consumed_at is None  # a refused consume changes nothing


async def test_token_consume_is_atomic_under_concurrency(stores: Stores) -> None:
    record = token_record(uid("c-"), kind="refresh_token")
    await stores.tokens.save(record)
    now = int(time.time())
    results = await asyncio.gather(*(stores.tokens.consume(record.digest, now) for _ in range(RACERS)))
    winners = [r for r in results if r is not None]
    assert len(winners) == 1 and winners[0].consumed_at == now and winners[0].digest == record.digest
    assert await stores.tokens.consume(record.digest, now) is None


async def test_token_set_successor(stores: Stores) -> None:
    record = token_record(uid("c-"), kind="refresh_token")
    await stores.tokens.save(record)
    assert await stores.tokens.set_successor(record.digest, "sealed-response") is True
    found = await stores.tokens.find(record.digest)
    assert found is not None and found.successor == "sealed-response"
    assert await stores.tokens.set_successor("d" * 64, "x") is False


async def test_token_of_a_revoked_grant_is_never_consumed(stores: Stores) -> None:
    grant_id = uid("g-")
    assert await stores.tokens.is_grant_revoked(grant_id) is False
    await stores.tokens.revoke_grant(grant_id)  # before any token of it exists
    assert await stores.tokens.is_grant_revoked(grant_id) is True
    late = token_record(uid("c-"), kind="refresh_token", grant_id=grant_id)
    await stores.tokens.save(late)  # a token the race winner saves after the revocation
    assert await stores.tokens.consume(late.digest, int(time.time())) is None


async def test_revoke_grant_revokes_only_its_tokens(stores: Stores) -> None:
    grant_id, other = uid("g-"), uid("g-")
    mine = token_record(uid("c-"), kind="refresh_token", grant_id=grant_id)
    theirs = token_record(uid("c-"), kind="refresh_token", grant_id=other)
    await stores.tokens.save(mine)
    await stores.tokens.save(theirs)
    assert await stores.tokens.revoke_grant(grant_id) == 1
    assert await stores.tokens.consume(theirs.digest, int(time.time())) is not None
    assert await stores.tokens.is_grant_revoked(other) is False


async def test_revoke_grant_is_idempotent_under_concurrency(stores: Stores) -> None:
    grant_id = uid("g-")
    records = [token_record(uid("c-"), kind=kind, grant_id=grant_id)
               for kind in ("access_token", "access_token", "refresh_token")]
    for record in records:
        await stores.tokens.save(record)
    counts = await asyncio.gather(*(stores.tokens.revoke_grant(grant_id) for _ in range(20)))
    assert sum(counts) == 3  # each token revoked once, no error for the others
    for record in records:
        found = await stores.tokens.find(record.digest)
        assert found is not None and found.revoked
    assert await stores.tokens.is_jti_revoked(records[0].jti) and await stores.tokens.is_jti_revoked(records[1].jti)
    assert await stores.tokens.is_jti_revoked(records[2].jti) is False  # a stored refresh token needs no jti mark
    assert await stores.tokens.revoke_grant(grant_id) == 0


async def test_grant_ids_for_a_user(stores: Stores) -> None:
    user, client, other_client = uid("u-"), uid("c-"), uid("c-")
    g1, g2, g3 = uid("g-"), uid("g-"), uid("g-")
    for client_id, grant_id, sub in ((client, g1, user), (other_client, g2, user), (client, g3, uid("u-"))):
        await stores.tokens.save(token_record(client_id, kind="refresh_token", grant_id=grant_id, sub=sub))
    await stores.tokens.save(token_record(client, sub=user))  # no grant: a client_credentials token
    assert await stores.tokens.grant_ids_for(client, user) == {g1}
    assert await stores.tokens.grant_ids_for(None, user) == {g1, g2}
    assert await stores.tokens.grant_ids_for(client, uid("nobody-")) == set()
