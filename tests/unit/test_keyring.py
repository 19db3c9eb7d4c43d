"""Key lifecycle: next (published, not signing) -> active (signing) -> retired (published until
every token it signed has expired) -> pruned."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from ostiary import jwt
from ostiary.keys import SigningKey
from ostiary.server.credentials import Sealer
from ostiary.server.keyring import KeyRing, activate, ensure_keys, prune, rotate
from ostiary.store.sql.engine import make_engine, upgrade
from ostiary.store.sql.stores import SqlKeyStore
from tests.conftest import TEST_SECRET_KEY


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    eng = make_engine(f"sqlite:///{tmp_path / 'keys.db'}")
    await upgrade(eng)
    try:
        yield eng
    finally:
        await eng.dispose()


@pytest.fixture
def store(engine: AsyncEngine) -> SqlKeyStore:
    return SqlKeyStore(engine, Sealer(TEST_SECRET_KEY))


async def published_kids(store: SqlKeyStore) -> list[str]:
    ring = KeyRing(store, ttl=0)
    return [k["kid"] for k in orjson.loads(await ring.jwks_json())["keys"]]


async def by_kid(store: SqlKeyStore) -> dict[str, SigningKey]:
    return {k.kid: k for k in await store.list()}


async def test_ensure_keys_creates_active_and_next_per_alg(store: SqlKeyStore) -> None:
    created = await ensure_keys(store, ["ES256", "RS256"])
    assert sorted((k.alg, k.status) for k in created) == [
        ("ES256", "active"), ("ES256", "next"), ("RS256", "active"), ("RS256", "next"),
    ]
    assert sorted((k.alg, k.status) for k in await store.list()) == sorted((k.alg, k.status) for k in created)
    assert await ensure_keys(store, ["ES256", "RS256"]) == []  # idempotent
    assert len(await store.list()) == 4
    # the next keys are published before they sign
    assert set(await published_kids(store)) == {k.kid for k in created}


async def test_ensure_keys_fills_only_what_is_missing(store: SqlKeyStore) -> None:
    await store.add(SigningKey.generate("ES256", status="active"))
    created = await ensure_keys(store, ["ES256"])
    assert [(k.alg, k.status) for k in created] == [("ES256", "next")]


async def test_rotate_promotes_the_published_next_key(store: SqlKeyStore) -> None:
    await ensure_keys(store, ["ES256"])
    keys = await store.list()
    old_active = next(k for k in keys if k.status == "active")
    old_next = next(k for k in keys if k.status == "next")
    ring = KeyRing(store, ttl=0)
    assert (await ring.signing_key("ES256")).kid == old_active.kid
    assert old_next.kid in await published_kids(store)  # published before it ever signs

    before = int(time.time())
    active, new_next = await rotate(store, "ES256", max_token_lifetime=3600)
    assert active.kid == old_next.kid and active.status == "active"
    assert new_next.status == "next" and new_next.kid not in {old_active.kid, old_next.kid}

    stored = await by_kid(store)
    assert stored[old_next.kid].status == "active"
    assert stored[new_next.kid].status == "next"
    retired = stored[old_active.kid]
    assert retired.status == "retired"
    assert retired.publish_until is not None
    assert before + 3600 <= retired.publish_until.timestamp() <= int(time.time()) + 3600

    assert (await ring.signing_key("ES256")).kid == old_next.kid
    assert set(await published_kids(store)) == {old_active.kid, old_next.kid, new_next.kid}


async def test_token_signed_before_rotation_still_verifies(store: SqlKeyStore) -> None:
    await ensure_keys(store, ["ES256"])
    ring = KeyRing(store, ttl=0)
    token = jwt.sign({"exp": int(time.time()) + 600}, await ring.signing_key("ES256"))
    await rotate(store, "ES256", max_token_lifetime=600)
    jwt.verify(token, await ring.verification_keys())
    fresh = jwt.sign({"exp": int(time.time()) + 600}, await ring.signing_key("ES256"))
    jwt.verify(fresh, await ring.verification_keys())


async def test_rotate_only_touches_its_algorithm(store: SqlKeyStore) -> None:
    await ensure_keys(store, ["ES256", "RS256"])
    rs_before = {k.kid: k.status for k in await store.list() if k.alg == "RS256"}
    await rotate(store, "ES256", max_token_lifetime=60)
    assert {k.kid: k.status for k in await store.list() if k.alg == "RS256"} == rs_before


async def test_rotate_without_a_next_key(store: SqlKeyStore) -> None:
    old = SigningKey.generate("ES256", status="active")
    await store.add(old)
    active, new_next = await rotate(store, "ES256", max_token_lifetime=60)
    stored = await by_kid(store)
    assert stored[active.kid].status == "active" and active.kid != old.kid
    assert stored[new_next.kid].status == "next"
    assert stored[old.kid].status == "retired"


async def test_retired_key_published_until_publish_until(store: SqlKeyStore) -> None:
    await ensure_keys(store, ["ES256"])
    old_active = next(k for k in await store.list() if k.status == "active")
    await rotate(store, "ES256", max_token_lifetime=1)
    assert old_active.kid in await published_kids(store)
    retired = (await by_kid(store))[old_active.kid]
    assert retired.publish_until is not None
    await asyncio.sleep(retired.publish_until.timestamp() - time.time() + 0.2)
    kids = await published_kids(store)
    assert old_active.kid not in kids
    assert len(kids) == 2  # the active and the next key
    assert old_active.kid in await by_kid(store)  # unpublished, but not deleted until prune


async def test_prune_deletes_only_unpublished_retired_keys(store: SqlKeyStore) -> None:
    now = int(time.time())
    keys = {name: SigningKey.generate("ES256", status=status) for name, status in [
        ("active", "active"), ("next", "next"), ("published", "active"), ("expired", "active"),
        ("no_until", "active"),
    ]}
    for key in keys.values():
        await store.add(key)
    await store.set_status(keys["published"].kid, "retired", publish_until=now + 600)
    await store.set_status(keys["expired"].kid, "retired", publish_until=now - 1)
    await store.set_status(keys["no_until"].kid, "retired")
    gone = await prune(store)
    assert sorted(gone) == sorted([keys["expired"].kid, keys["no_until"].kid])
    assert set(await by_kid(store)) == {keys[n].kid for n in ("active", "next", "published")}
    assert await prune(store) == []


async def test_activate_imported_key_retires_the_previous_active(store: SqlKeyStore) -> None:
    await ensure_keys(store, ["ES256", "RS256"])
    old_active = next(k for k in await store.list() if k.alg == "ES256" and k.status == "active")
    imported = SigningKey.generate("ES256")
    assert await activate(store, imported, max_token_lifetime=900) is True
    stored = await by_kid(store)
    assert stored[imported.kid].status == "active"
    assert stored[old_active.kid].status == "retired"
    until = stored[old_active.kid].publish_until
    assert until is not None and until.timestamp() >= time.time() + 890
    assert [k.status for k in stored.values() if k.alg == "RS256"].count("active") == 1
    assert (await KeyRing(store, ttl=0).signing_key("ES256")).kid == imported.kid
    assert await activate(store, imported, max_token_lifetime=900) is False  # already active


async def test_activate_a_key_already_published_as_next(store: SqlKeyStore) -> None:
    await ensure_keys(store, ["ES256"])
    staged = SigningKey.generate("ES256", status="next")
    await store.add(staged)
    assert await activate(store, staged, max_token_lifetime=60) is True
    stored = await by_kid(store)
    assert stored[staged.kid].status == "active"
    assert [k.status for k in stored.values()].count("active") == 1


async def test_keyring_caches_for_ttl(store: SqlKeyStore) -> None:
    await ensure_keys(store, ["ES256"])
    ring = KeyRing(store, ttl=3600)
    first = await ring.jwks_json()
    await store.add(SigningKey.generate("ES256", status="next"))
    assert await ring.jwks_json() == first  # cached
    await ring.refresh(force=True)
    assert len(orjson.loads(await ring.jwks_json())["keys"]) == 3


async def test_keyring_reloads_for_an_unknown_alg(store: SqlKeyStore) -> None:
    ring = KeyRing(store, ttl=3600)
    with pytest.raises(LookupError, match="no active signing key for ES256"):
        await ring.signing_key("ES256")
    await ensure_keys(store, ["ES256"])
    assert (await ring.signing_key("ES256")).alg == "ES256"  # a miss forces a reload
    assert ring.algorithms == ("ES256",)
