"""Contracts of PasskeyStore and ChallengeStore (ostiary.store.passkeys) at the store itself, every backend
(the ceremonies over them: test_passkeys.py)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

from ostiary.store.backend import Stores
from ostiary.store.passkeys import CeremonyChallenge, PasskeyCredential

from .conftest import RACERS, uid


def credential(user_id: str, **changes: object) -> PasskeyCredential:
    fields: dict[str, object] = {
        "credential_id": uid("cred-"), "user_id": user_id, "user_handle": uid("h-"), "public_key": b"\xa5\x01\x02",
        "sign_count": 0, "transports": ("internal", "hybrid"), "backup_eligible": True, "backed_up": False,
        "name": "Laptop", "created_at": int(time.time()),
    }
    fields.update(changes)
    return PasskeyCredential(**fields)  # type: ignore[arg-type]


def challenge() -> CeremonyChallenge:
    return CeremonyChallenge(digest=uid("dg-"), purpose="second_factor", binding=uid("i-"), user_id=uid("u-"),
                             user_handle=None, expires_at=int(time.time()) + 60)


async def test_passkey_add_get_list(stores: Stores) -> None:
    user = uid("u-")
    first, second = credential(user, created_at=2_000), credential(user, created_at=1_000)
    assert await stores.passkeys.add(first) is True
    assert await stores.passkeys.add(second) is True
    assert await stores.passkeys.get(first.credential_id) == first
    assert await stores.passkeys.list_for_user(user) == [second, first]  # oldest first
    assert await stores.passkeys.list_for_user(uid("u-")) == []
    assert await stores.passkeys.get(uid("none-")) is None


async def test_passkey_credential_id_is_registered_once_to_anyone(stores: Stores) -> None:
    mine = credential(uid("u-"))
    await stores.passkeys.add(mine)
    assert await stores.passkeys.add(credential(uid("u-"), credential_id=mine.credential_id)) is False
    assert await stores.passkeys.get(mine.credential_id) == mine  # the first owner keeps it


async def test_passkey_rename_and_remove_only_own(stores: Stores) -> None:
    owner, attacker = uid("u-"), uid("u-")
    mine = credential(owner)
    await stores.passkeys.add(mine)
    assert await stores.passkeys.rename(attacker, mine.credential_id, "pwned") is False
    assert await stores.passkeys.remove(attacker, mine.credential_id) is False
    assert await stores.passkeys.rename(owner, mine.credential_id, "Phone") is True
    found = await stores.passkeys.get(mine.credential_id)
    assert found is not None and found.name == "Phone"
    assert await stores.passkeys.remove(owner, mine.credential_id) is True
    assert await stores.passkeys.remove(owner, mine.credential_id) is False


async def test_webauthn_7_2_21_counter_must_grow(stores: Stores) -> None:
    counted = credential(uid("u-"), sign_count=5)
    await stores.passkeys.add(counted)
    assert await stores.passkeys.record_use(counted.credential_id, 5, False, 100) is False  # not above: a clone?
    assert await stores.passkeys.record_use(counted.credential_id, 6, True, 100) is True
    found = await stores.passkeys.get(counted.credential_id)
    assert found is not None and (found.sign_count, found.backed_up, found.last_used_at) == (6, True, 100)
    uncounted = credential(uid("u-"), sign_count=0)  # an authenticator without a counter: 0 and 0 is fine
    await stores.passkeys.add(uncounted)
    assert await stores.passkeys.record_use(uncounted.credential_id, 0, False, 200) is True
    assert await stores.passkeys.record_use(uncounted.credential_id, 0, False, 201) is True
    assert await stores.passkeys.record_use(uid("none-"), 9, False, 200) is False


async def test_challenge_is_taken_once(stores: Stores) -> None:
    c, now = challenge(), int(time.time())
    await stores.passkey_challenges.put(c, now)
    assert await stores.passkey_challenges.take(c.digest, now) == c
    assert await stores.passkey_challenges.take(c.digest, now) is None
    expired = replace(challenge(), expires_at=now)
    await stores.passkey_challenges.put(expired, now - 1)
    assert await stores.passkey_challenges.take(expired.digest, now) is None


async def test_challenge_take_is_atomic_under_concurrency(stores: Stores) -> None:
    c, now = challenge(), int(time.time())
    await stores.passkey_challenges.put(c, now)
    results = await asyncio.gather(*(stores.passkey_challenges.take(c.digest, now) for _ in range(RACERS)))
    assert [r for r in results if r is not None] == [c]
