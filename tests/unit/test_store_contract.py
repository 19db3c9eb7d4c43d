"""Store contracts (store/protocols.py), run against every backend: SQL on SQLite and PostgreSQL,
the replay cache also on Redis; and the migrations that create the SQL schema."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import UniqueConstraint, inspect
from sqlalchemy.ext.asyncio import AsyncEngine

from ostiary.keys import SigningKey, generate_private_key, private_key_pem, self_signed_certificate
from ostiary.keys import signing_key_from_pem as key_from_pem
from ostiary.server.credentials import Sealer
from ostiary.store import Client, ClientExists, ReplayCache, TokenRecord
from ostiary.store.grants import AuthorizationCode
from ostiary.store.identity import LoginThrottle, Session, ThrottleRule
from ostiary.store.sql.engine import current_revision, head_revision, make_engine, upgrade
from ostiary.store.sql.grants import SqlCodeStore, SqlInteractionStore
from ostiary.store.sql.identity import SqlConsentStore, SqlLoginThrottle, SqlSessionStore
from ostiary.store.sql.schema import metadata
from ostiary.store.sql.stores import (
    SqlClientStore,
    SqlKeyStore,
    SqlReplayCache,
    SqlStateStore,
    SqlTokenStore,
)
from tests.conftest import REDIS_URL, TEST_SECRET_KEY, needs_redis


def uid(prefix: str = "") -> str:
    return prefix + uuid.uuid4().hex[:16]


@pytest.fixture(scope="module")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    eng = make_engine(database_url)
    await upgrade(eng)
    try:
        yield eng
    finally:
        await eng.dispose()


@pytest.fixture(scope="module")
async def redis_client() -> AsyncIterator[Any]:
    from redis.asyncio import Redis

    client = Redis.from_url(REDIS_URL)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture(params=["sql", pytest.param("redis", marks=[pytest.mark.redis, needs_redis])])
def replay(request: pytest.FixtureRequest, engine: AsyncEngine) -> ReplayCache:
    if request.param == "sql":
        return SqlReplayCache(engine)
    from ostiary.store.redis import RedisReplayCache

    return RedisReplayCache(request.getfixturevalue("redis_client"), prefix=f"ostiary-test:{uid()}:")


def token_record(client_id: str, *, expires_at: int | None = None, kind: str = "access_token") -> TokenRecord:
    return TokenRecord(
        digest=uuid.uuid4().hex + uuid.uuid4().hex, kind=kind, client_id=client_id, jti=uid("jti-"),
        claims={"scope": "api:read", "aud": ["https://api.example.com"], "n": 1},
        expires_at=expires_at if expires_at is not None else int(time.time()) + 3600,
    )


# -- migrations ---------------------------------------------------------------------------------


def _schema(conn: Any) -> dict[str, Any]:
    insp = inspect(conn)
    out: dict[str, Any] = {}
    for table in insp.get_table_names():
        if table == "alembic_version":
            continue
        out[table] = {
            "columns": {c["name"]: c["nullable"] for c in insp.get_columns(table)},
            "pk": sorted(insp.get_pk_constraint(table)["constrained_columns"]),
            # PostgreSQL reports the index behind a UNIQUE constraint too; those are compared as constraints
            "indexes": {i["name"]: list(i["column_names"]) for i in insp.get_indexes(table)
                        if not i.get("duplicates_constraint") and not i.get("unique")},
            "unique": sorted({
                *[tuple(u["column_names"]) for u in insp.get_unique_constraints(table)],
                *[tuple(i["column_names"]) for i in insp.get_indexes(table)
                  if i.get("unique") and not i.get("duplicates_constraint")],
            }),
        }
    return out


def _expected_schema() -> dict[str, Any]:
    return {
        t.name: {
            "columns": {c.name: c.nullable for c in t.columns},
            "pk": sorted(c.name for c in t.primary_key.columns),
            "indexes": {i.name: [c.name for c in i.columns] for i in t.indexes if not i.unique},
            "unique": sorted({
                *[tuple(c.name for c in u.columns) for u in t.constraints if isinstance(u, UniqueConstraint)],
                *[(c.name,) for c in t.columns if c.unique],
                *[tuple(c.name for c in i.columns) for i in t.indexes if i.unique],
            }),
        }
        for t in metadata.sorted_tables
    }


async def test_migrated_database_has_the_schema_tables(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        actual = await conn.run_sync(_schema)
        tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    assert "alembic_version" in tables
    assert actual == _expected_schema()


async def test_current_revision_is_head(engine: AsyncEngine) -> None:
    assert head_revision() is not None
    assert await current_revision(engine) == head_revision()


async def test_upgrade_twice_is_a_no_op(engine: AsyncEngine) -> None:
    clients = SqlClientStore(engine)
    client_id = uid("kept-")
    await clients.create(Client(client_id=client_id, client_name="survives"))
    await upgrade(engine)
    await upgrade(engine)
    assert await current_revision(engine) == head_revision()
    kept = await clients.get(client_id)
    assert kept is not None and kept.client_name == "survives"


# -- ClientStore --------------------------------------------------------------------------------


def make_client(client_id: str, **changes: Any) -> Client:
    fields: dict[str, Any] = {
        "client_name": "Reporting job", "scope": "api:read api:write",
        "grant_types": ("client_credentials",), "audiences": ("https://api.example.com",),
        "redirect_uris": ("https://app.example.com/cb",), "extra": {"contacts": ["ops@example.com"]},
        "secret_digest": "ab" * 32, "access_token_lifetime": 600,
        "jwks": {"keys": [{"kty": "EC", "crv": "P-256", "x": "x", "y": "y"}]},
    }
    fields.update(changes)
    return Client(client_id=client_id, **fields)


async def test_client_create_get_round_trip(engine: AsyncEngine) -> None:
    store = SqlClientStore(engine)
    client = make_client(uid("c-"))
    await store.create(client)
    assert await store.get(client.client_id) == client


async def test_client_get_unknown(engine: AsyncEngine) -> None:
    assert await SqlClientStore(engine).get(uid("nobody-")) is None


async def test_client_duplicate_raises_client_exists(engine: AsyncEngine) -> None:
    store = SqlClientStore(engine)
    client = make_client(uid("dup-"))
    await store.create(client)
    with pytest.raises(ClientExists):
        await store.create(make_client(client.client_id, client_name="another"))
    got = await store.get(client.client_id)
    assert got is not None and got.client_name == "Reporting job"  # nothing overwritten


async def test_client_list_ordered_by_client_id(engine: AsyncEngine) -> None:
    store = SqlClientStore(engine)
    prefix = uid("list-")
    ids = [f"{prefix}-{s}" for s in ("c", "a", "b")]
    for client_id in ids:
        await store.create(make_client(client_id))
    listed = [c.client_id for c in await store.list() if c.client_id.startswith(prefix)]
    assert listed == sorted(ids)
    all_ids = [c.client_id for c in await store.list()]
    assert all_ids == sorted(all_ids)


async def test_client_update(engine: AsyncEngine) -> None:
    store = SqlClientStore(engine)
    client = make_client(uid("upd-"), created_at=1_000)
    await store.create(client)
    changed = make_client(client.client_id, client_name="Renamed", scope="api:read", secret_digest="cd" * 32,
                          created_at=2_000, updated_at=3_000)
    assert await store.update(changed) is True
    got = await store.get(client.client_id)
    assert got is not None
    assert (got.client_name, got.scope, got.secret_digest, got.updated_at) == ("Renamed", "api:read", "cd" * 32, 3_000)
    assert got.created_at == 1_000  # creation time is never rewritten
    assert await store.update(make_client(uid("ghost-"))) is False


async def test_client_delete_removes_its_tokens(engine: AsyncEngine) -> None:
    clients, tokens = SqlClientStore(engine), SqlTokenStore(engine)
    victim, bystander = make_client(uid("del-")), make_client(uid("keep-"))
    await clients.create(victim)
    await clients.create(bystander)
    mine, theirs = token_record(victim.client_id), token_record(bystander.client_id)
    await tokens.save(mine)
    await tokens.save(theirs)
    assert await clients.delete(victim.client_id) is True
    assert await clients.get(victim.client_id) is None
    assert await tokens.find(mine.digest) is None
    assert await tokens.find(theirs.digest) == theirs
    assert await clients.delete(victim.client_id) is False


# -- KeyStore -----------------------------------------------------------------------------------


def aged(key: SigningKey, seconds_ago: int) -> SigningKey:
    created = dt.datetime.fromtimestamp(int(time.time()) - seconds_ago, dt.UTC)
    return SigningKey(alg=key.alg, jwk=key.jwk, certificates=key.certificates, status=key.status,
                      created_at=created)


async def test_key_add_and_list_round_trip(engine: AsyncEngine) -> None:
    store = SqlKeyStore(engine, Sealer(TEST_SECRET_KEY))
    private = generate_private_key("ES256")
    cert = self_signed_certificate(private, "rt")
    from cryptography.hazmat.primitives import serialization

    key = key_from_pem(private_key_pem(private), cert.public_bytes(serialization.Encoding.PEM), status="next")
    assert await store.add(key) is True
    got = next(k for k in await store.list() if k.kid == key.kid)
    assert (got.alg, got.status, got.publish_until) == ("ES256", "next", None)
    assert got.public_jwk() == key.public_jwk()  # includes x5c and x5t#S256
    assert int(got.created_at.timestamp()) == int(key.created_at.timestamp())


async def test_key_duplicate_kid(engine: AsyncEngine) -> None:
    store = SqlKeyStore(engine, Sealer(TEST_SECRET_KEY))
    key = SigningKey.generate("ES256", status="next")
    assert await store.add(key) is True
    again = SigningKey(alg=key.alg, jwk=key.jwk, status="active")
    assert await store.add(again) is False
    got = [k for k in await store.list() if k.kid == key.kid]
    assert len(got) == 1 and got[0].status == "next"  # nothing changed


async def test_key_set_status(engine: AsyncEngine) -> None:
    store = SqlKeyStore(engine, Sealer(TEST_SECRET_KEY))
    key = SigningKey.generate("ES256", status="active")
    await store.add(key)
    until = int(time.time()) + 120
    assert await store.set_status(key.kid, "retired", publish_until=until) is True
    got = next(k for k in await store.list() if k.kid == key.kid)
    assert got.status == "retired"
    assert got.publish_until is not None and int(got.publish_until.timestamp()) == until
    assert await store.set_status(key.kid, "active") is True
    got = next(k for k in await store.list() if k.kid == key.kid)
    assert got.status == "active" and got.publish_until is None
    assert await store.set_status("no-such-kid", "retired") is False


async def test_key_delete(engine: AsyncEngine) -> None:
    store = SqlKeyStore(engine, Sealer(TEST_SECRET_KEY))
    key = SigningKey.generate("ES256")
    await store.add(key)
    assert await store.delete(key.kid) is True
    assert all(k.kid != key.kid for k in await store.list())
    assert await store.delete(key.kid) is False


async def test_key_list_oldest_first(engine: AsyncEngine) -> None:
    store = SqlKeyStore(engine, Sealer(TEST_SECRET_KEY))
    keys = [aged(SigningKey.generate("ES256"), s) for s in (100_000, 200_000, 300_000)]
    for key in keys:  # added newest first
        await store.add(key)
    mine = [k.kid for k in await store.list() if k.kid in {x.kid for x in keys}]
    assert mine == [k.kid for k in reversed(keys)]
    stamps = [k.created_at for k in await store.list()]
    assert stamps == sorted(stamps)


# -- TokenStore ---------------------------------------------------------------------------------


async def test_token_save_find(engine: AsyncEngine) -> None:
    store = SqlTokenStore(engine)
    record = token_record(uid("client-"), kind="refresh_token")
    await store.save(record)
    assert await store.find(record.digest) == record
    assert await store.find("0" * 64) is None


async def test_token_revoke(engine: AsyncEngine) -> None:
    store = SqlTokenStore(engine)
    record = token_record(uid("client-"))
    await store.save(record)
    assert await store.revoke(record.digest) is True
    got = await store.find(record.digest)
    assert got is not None and got.revoked is True  # found, revoked or not
    assert await store.revoke(record.digest) is True  # idempotent
    assert await store.revoke("f" * 64) is False


async def test_token_revoke_jti(engine: AsyncEngine) -> None:
    store = SqlTokenStore(engine)
    jti = uid("jti-")
    assert await store.is_jti_revoked(jti) is False
    await store.revoke_jti(jti, int(time.time()) + 600)
    assert await store.is_jti_revoked(jti) is True
    await store.revoke_jti(jti, int(time.time()) + 600)  # twice is fine (RFC 7009 §2.2)
    assert await store.is_jti_revoked(jti) is True
    assert await store.is_jti_revoked(uid("other-")) is False


async def test_token_purge_expired(engine: AsyncEngine) -> None:
    store = SqlTokenStore(engine)
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


# -- ReplayCache --------------------------------------------------------------------------------


async def test_replay_first_use(replay: ReplayCache) -> None:
    key, until = uid("jti:"), int(time.time()) + 60
    assert await replay.first_use(key, until) is True
    assert await replay.first_use(key, until) is False
    assert await replay.first_use(key + "-other", until) is True


async def test_replay_first_use_is_atomic(replay: ReplayCache) -> None:
    key, until = uid("race:"), int(time.time()) + 60
    results = await asyncio.gather(*(replay.first_use(key, until) for _ in range(50)))
    assert results.count(True) == 1, results


async def test_replay_entry_expires(replay: ReplayCache) -> None:
    key, until = uid("exp:"), int(time.time()) + 1
    assert await replay.first_use(key, until) is True
    assert await replay.first_use(key, until) is False
    await asyncio.sleep(until + 1.2 - time.time())
    assert await replay.first_use(key, int(time.time()) + 60) is True
    assert await replay.first_use(key, int(time.time()) + 60) is False


# -- StateStore ---------------------------------------------------------------------------------


async def test_state_get_or_create(engine: AsyncEngine) -> None:
    store = SqlStateStore(engine)
    name = uid("state-")
    assert await store.get_or_create(name, "first") == "first"
    assert await store.get_or_create(name, "second") == "first"


async def test_state_get_or_create_concurrently(engine: AsyncEngine) -> None:
    store = SqlStateStore(engine)
    name = uid("race-")
    values = await asyncio.gather(*(store.get_or_create(name, f"v{i}") for i in range(20)))
    assert len(set(values)) == 1 and values[0].startswith("v")


# -- single use and grant revocation (docs/security.md, concurrency contract) ----------------------


async def test_token_consume_is_atomic_under_concurrency(engine: AsyncEngine) -> None:
    store = SqlTokenStore(engine)
    record = token_record(uid("c-"), kind="refresh_token")
    await store.save(record)
    now = int(time.time())
    results = await asyncio.gather(*(store.consume(record.digest, now) for _ in range(30)))
    winners = [r for r in results if r is not None]
    assert len(winners) == 1 and winners[0].consumed_at == now and winners[0].digest == record.digest
    assert await store.consume(record.digest, now) is None


async def test_token_of_a_revoked_grant_is_never_consumed(engine: AsyncEngine) -> None:
    store = SqlTokenStore(engine)
    grant_id = uid("g-")
    assert await store.is_grant_revoked(grant_id) is False
    await store.revoke_grant(grant_id)  # before any token of it exists
    assert await store.is_grant_revoked(grant_id) is True
    late = replace(token_record(uid("c-"), kind="refresh_token"), grant_id=grant_id)
    await store.save(late)  # a token the race winner saves after the revocation
    assert await store.consume(late.digest, int(time.time())) is None


async def test_revoke_grant_is_idempotent_under_concurrency(engine: AsyncEngine) -> None:
    store = SqlTokenStore(engine)
    grant_id = uid("g-")
    records = [replace(token_record(uid("c-"), kind=kind), grant_id=grant_id)
               for kind in ("access_token", "access_token", "refresh_token")]
    for record in records:
        await store.save(record)
    counts = await asyncio.gather(*(store.revoke_grant(grant_id) for _ in range(20)))
    assert sum(counts) == 3  # each token revoked once, no error for the others
    for record in records:
        found = await store.find(record.digest)
        assert found is not None and found.revoked
    assert await store.is_jti_revoked(records[0].jti) and await store.is_jti_revoked(records[1].jti)
    assert await store.revoke_grant(grant_id) == 0


async def test_revoke_jti_concurrently_is_idempotent(engine: AsyncEngine) -> None:
    store = SqlTokenStore(engine)
    jti = uid("jti-")
    await asyncio.gather(*(store.revoke_jti(jti, int(time.time()) + 60) for _ in range(20)))
    assert await store.is_jti_revoked(jti)


async def test_code_consume_is_atomic_under_concurrency(engine: AsyncEngine) -> None:
    codes = SqlCodeStore(engine)
    code = AuthorizationCode(digest=uid("code-"), client_id="c", grant_id=uid("g-"), data={"n": 1},
                             expires_at=int(time.time()) + 60)
    await codes.save(code)
    now = int(time.time())
    results = await asyncio.gather(*(codes.consume(code.digest, now) for _ in range(30)))
    winners = [r for r in results if r is not None]
    assert len(winners) == 1 and winners[0].data == {"n": 1} and winners[0].consumed_at == now
    found = await codes.find(code.digest)
    assert found is not None and found.consumed_at == now


async def test_interaction_take_is_atomic_under_concurrency(engine: AsyncEngine) -> None:
    interactions = SqlInteractionStore(engine)
    key, now = uid("launch:"), int(time.time())
    await interactions.save(key, {"patient": "p1"}, now + 60)
    results = await asyncio.gather(*(interactions.take(key, now) for _ in range(30)))
    assert [r for r in results if r is not None] == [{"patient": "p1"}]
    assert await interactions.get(key, now) is None
    expired = uid("launch:")
    await interactions.save(expired, {"patient": "p2"}, now - 1)
    assert await interactions.take(expired, now) is None


# -- LoginThrottle (atomic attempt counters) ------------------------------------------------------


@pytest.fixture(params=["sql", pytest.param("redis", marks=[pytest.mark.redis, needs_redis])])
def throttle(request: pytest.FixtureRequest, engine: AsyncEngine) -> LoginThrottle:
    if request.param == "sql":
        return SqlLoginThrottle(engine)
    from ostiary.store.redis import RedisLoginThrottle

    return RedisLoginThrottle(request.getfixturevalue("redis_client"), prefix=f"ostiary-test:{uid()}:")


async def test_throttle_admits_exactly_the_free_attempts_under_concurrency(throttle: LoginThrottle) -> None:
    rule, key, now = ThrottleRule(free=5, max_delay=60, window=900), uid("user:"), int(time.time())
    waits = await asyncio.gather(*(throttle.attempt(key, rule, now) for _ in range(60)))
    assert waits.count(0) == 5, waits  # 60 racing guesses, 5 checked (not 58)
    assert set(waits) - {0} == {rule.delay(5)}


async def test_throttle_delays_grow_and_are_capped(throttle: LoginThrottle) -> None:
    rule, key, now = ThrottleRule(free=2, max_delay=10, window=900), uid("user:"), 1_000_000
    assert [rule.delay(n) for n in range(1, 7)] == [0, 2, 4, 8, 10, 10]
    assert await throttle.attempt(key, rule, now) == 0
    assert await throttle.attempt(key, rule, now) == 0  # the 2nd: the key now waits 2 s
    assert await throttle.attempt(key, rule, now + 1) == 1
    assert await throttle.attempt(key, rule, now + 2) == 0  # the 3rd: 4 s
    assert await throttle.attempt(key, rule, now + 5) == 1
    assert await throttle.attempt(key, rule, now + 6) == 0
    # a quiet window (no attempt) starts afresh
    assert await throttle.attempt(key, rule, now + 6 + 8 + 901) == 0
    assert await throttle.attempt(key, rule, now + 6 + 8 + 901) == 0
    assert await throttle.attempt(key, rule, now + 6 + 8 + 901) == 2


async def test_throttle_reset_and_refund(throttle: LoginThrottle) -> None:
    rule, key, now = ThrottleRule(free=2, max_delay=60, window=900), uid("ip:"), int(time.time())
    assert await throttle.attempt(key, rule, now) == 0
    await throttle.refund(key)  # that attempt was a success: given back
    assert await throttle.attempt(key, rule, now) == 0
    assert await throttle.attempt(key, rule, now) == 0
    assert await throttle.attempt(key, rule, now) > 0
    await throttle.reset(key)
    assert await throttle.attempt(key, rule, now) == 0
    await throttle.refund(uid("unknown:"))  # nothing to give back: no error


# -- read-modify-write without lost updates -------------------------------------------------------


async def test_consents_given_at_once_are_merged(engine: AsyncEngine) -> None:
    store = SqlConsentStore(engine)
    user, client = uid("u-"), uid("c-")
    await asyncio.gather(*(store.grant(user, client, frozenset({f"s{i}", "openid"})) for i in range(10)))
    assert await store.get(user, client) == frozenset({"openid", *(f"s{i}" for i in range(10))})


async def test_session_clients_added_at_once_are_all_kept(engine: AsyncEngine) -> None:
    store = SqlSessionStore(engine)
    session = Session(digest=uid("d-"), sid=uid("sid-"), user_id="u", auth_time=1, expires_at=int(time.time()) + 60)
    await store.create(session)
    await asyncio.gather(*(store.add_client(session.digest, f"client-{i}") for i in range(10)))
    found = await store.get(session.digest, int(time.time()))
    assert found is not None and sorted(found.clients) == sorted(f"client-{i}" for i in range(10))
