"""Contracts of ClientStore, KeyStore, StateStore and ReplayCache (ostiary.store.protocols), every backend."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from ostiary.keys import SigningKey, generate_private_key, private_key_pem, self_signed_certificate
from ostiary.keys import signing_key_from_pem as key_from_pem
from ostiary.store import Client, ClientExists, ReplayCache
from ostiary.store.backend import Stores

from .conftest import RACERS, STORE_OR_REDIS, or_redis, token_record, uid

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


async def test_client_create_get_round_trip(stores: Stores) -> None:
    client = make_client(uid("c-"))
    await stores.clients.create(client)
    assert await stores.clients.get(client.client_id) == client


async def test_client_get_unknown_or_hostile_id(stores: Stores) -> None:
    assert await stores.clients.get(uid("nobody-")) is None
    assert await stores.clients.get("bad\x00id") is None  # PostgreSQL text cannot hold NUL: no error either


async def test_client_duplicate_raises_client_exists(stores: Stores) -> None:
    client = make_client(uid("dup-"))
    await stores.clients.create(client)
    with pytest.raises(ClientExists):
        await stores.clients.create(make_client(client.client_id, client_name="another"))
    got = await stores.clients.get(client.client_id)
    assert got is not None and got.client_name == "Reporting job"  # nothing overwritten


async def test_client_create_at_once_gives_one_winner(stores: Stores) -> None:
    client_id = uid("race-")
    results = await asyncio.gather(*(stores.clients.create(make_client(client_id, client_name=f"n{i}"))
                                     for i in range(10)), return_exceptions=True)
    assert sum(r is None for r in results) == 1
    assert all(isinstance(r, ClientExists) for r in results if r is not None)


async def test_client_list_ordered_by_client_id(stores: Stores) -> None:
    prefix = uid("list-")
    ids = [f"{prefix}-{s}" for s in ("c", "a", "b")]
    for client_id in ids:
        await stores.clients.create(make_client(client_id))
    listed = [c.client_id for c in await stores.clients.list() if c.client_id.startswith(prefix)]
    assert listed == sorted(ids)
    all_ids = [c.client_id for c in await stores.clients.list()]
    assert all_ids == sorted(all_ids)


async def test_client_update(stores: Stores) -> None:
    client = make_client(uid("upd-"), created_at=1_000)
    await stores.clients.create(client)
    changed = make_client(client.client_id, client_name="Renamed", scope="api:read", secret_digest="cd" * 32,
                          created_at=2_000, updated_at=3_000)
    assert await stores.clients.update(changed) is True
    got = await stores.clients.get(client.client_id)
    assert got is not None
    assert (got.client_name, got.scope, got.secret_digest, got.updated_at) == ("Renamed", "api:read", "cd" * 32, 3_000)
    assert got.created_at == 1_000  # creation time is never rewritten
    assert await stores.clients.update(make_client(uid("ghost-"))) is False


async def test_client_delete_removes_its_tokens(stores: Stores) -> None:
    victim, bystander = make_client(uid("del-")), make_client(uid("keep-"))
    await stores.clients.create(victim)
    await stores.clients.create(bystander)
    mine, theirs = token_record(victim.client_id), token_record(bystander.client_id)
    await stores.tokens.save(mine)
    await stores.tokens.save(theirs)
    assert await stores.clients.delete(victim.client_id) is True
    assert await stores.clients.get(victim.client_id) is None
    assert await stores.tokens.find(mine.digest) is None
    assert await stores.tokens.find(theirs.digest) == theirs
    assert await stores.clients.delete(victim.client_id) is False


# -- KeyStore -----------------------------------------------------------------------------------


def aged(key: SigningKey, seconds_ago: int) -> SigningKey:
    created = dt.datetime.fromtimestamp(int(time.time()) - seconds_ago, dt.UTC)
    return SigningKey(alg=key.alg, jwk=key.jwk, certificates=key.certificates, status=key.status,
                      created_at=created)


async def test_key_add_and_list_round_trip(stores: Stores) -> None:
    from cryptography.hazmat.primitives import serialization

    private = generate_private_key("ES256")
    cert = self_signed_certificate(private, "rt")
    key = key_from_pem(private_key_pem(private), cert.public_bytes(serialization.Encoding.PEM), status="next")
    assert await stores.keys.add(key) is True
    got = next(k for k in await stores.keys.list() if k.kid == key.kid)
    assert (got.alg, got.status, got.publish_until) == ("ES256", "next", None)
    assert got.public_jwk() == key.public_jwk()  # includes x5c and x5t#S256
    assert got.private_pem() == key.private_pem()
    assert int(got.created_at.timestamp()) == int(key.created_at.timestamp())


async def test_key_duplicate_kid(stores: Stores) -> None:
    key = SigningKey.generate("ES256", status="next")
    assert await stores.keys.add(key) is True
    assert await stores.keys.add(SigningKey(alg=key.alg, jwk=key.jwk, status="active")) is False
    got = [k for k in await stores.keys.list() if k.kid == key.kid]
    assert len(got) == 1 and got[0].status == "next"  # nothing changed


async def test_key_set_status(stores: Stores) -> None:
    key = SigningKey.generate("ES256", status="active")
    await stores.keys.add(key)
    until = int(time.time()) + 120
    assert await stores.keys.set_status(key.kid, "retired", publish_until=until) is True
    got = next(k for k in await stores.keys.list() if k.kid == key.kid)
    assert got.status == "retired"
    assert got.publish_until is not None and int(got.publish_until.timestamp()) == until
    assert await stores.keys.set_status(key.kid, "active") is True
    got = next(k for k in await stores.keys.list() if k.kid == key.kid)
    assert got.status == "active" and got.publish_until is None
    assert await stores.keys.set_status("no-such-kid", "retired") is False


async def test_key_delete(stores: Stores) -> None:
    key = SigningKey.generate("ES256")
    await stores.keys.add(key)
    assert await stores.keys.delete(key.kid) is True
    assert all(k.kid != key.kid for k in await stores.keys.list())
    assert await stores.keys.delete(key.kid) is False


async def test_key_list_oldest_first(stores: Stores) -> None:
    keys = [aged(SigningKey.generate("ES256"), s) for s in (100_000, 200_000, 300_000)]
    for key in keys:  # added newest first
        await stores.keys.add(key)
    mine = [k.kid for k in await stores.keys.list() if k.kid in {x.kid for x in keys}]
    assert mine == [k.kid for k in reversed(keys)]
    stamps = [k.created_at for k in await stores.keys.list()]
    assert stamps == sorted(stamps)


# -- StateStore ---------------------------------------------------------------------------------


async def test_state_get_or_create(stores: Stores) -> None:
    name = uid("state-")
    assert await stores.state.get_or_create(name, "first") == "first"
    assert await stores.state.get_or_create(name, "second") == "first"


async def test_state_get_or_create_concurrently(stores: Stores) -> None:
    name = uid("race-")
    values = await asyncio.gather(*(stores.state.get_or_create(name, f"v{i}") for i in range(20)))
    assert len(set(values)) == 1 and values[0].startswith("v")


# -- ReplayCache (also on Redis) ------------------------------------------------------------------


@pytest.fixture(params=STORE_OR_REDIS)
async def replay(request: pytest.FixtureRequest, stores: Stores) -> AsyncIterator[Any]:
    from ostiary.store.redis import RedisReplayCache

    async for cache in or_redis(request, stores, stores.replay, lambda r, prefix: RedisReplayCache(r, prefix)):
        yield cache


async def test_replay_first_use(replay: ReplayCache) -> None:
    key, until = uid("jti:"), int(time.time()) + 60
    assert await replay.first_use(key, until) is True
    assert await replay.first_use(key, until) is False
    assert await replay.first_use(key + "-other", until) is True


async def test_replay_first_use_is_atomic(replay: ReplayCache) -> None:
    key, until = uid("race:"), int(time.time()) + 60
    results = await asyncio.gather(*(replay.first_use(key, until) for _ in range(RACERS)))
    assert results.count(True) == 1, results


async def test_replay_entry_expires(replay: ReplayCache) -> None:
    key, until = uid("exp:"), int(time.time()) + 1
    assert await replay.first_use(key, until) is True
    assert await replay.first_use(key, until) is False
    await asyncio.sleep(until + 1.2 - time.time())
    assert await replay.first_use(key, int(time.time()) + 60) is True
    assert await replay.first_use(key, int(time.time()) + 60) is False
