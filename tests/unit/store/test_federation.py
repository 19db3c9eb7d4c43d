"""Linked identities (store/federation.py) over every backend: one upstream identity, one user; a user
removes only their own links; deleting a user removes their links; 50 racing first sign-ins, one link."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from ostiary.store.backend import Stores
from ostiary.store.federation import LinkedIdentity, LinkExists
from ostiary.store.identity import User
from tests.unit.store.conftest import RACERS


def link(user_id: str, subject: str | None = None, provider: str = "hospital", at: int = 1000) -> LinkedIdentity:
    return LinkedIdentity(provider=provider, subject=subject or uuid.uuid4().hex, user_id=user_id, created_at=at,
                          last_used=at, label="someone@example.com")


async def test_a_link_is_found_by_provider_and_subject_only(stores: Stores):
    mine = link("u-" + uuid.uuid4().hex)
    await stores.identity_links.add(mine)
    assert await stores.identity_links.find("hospital", mine.subject) == mine
    assert await stores.identity_links.find("other", mine.subject) is None  # the same sub at another issuer
    assert await stores.identity_links.find("hospital", mine.subject.upper()) is None


async def test_one_upstream_identity_links_one_user(stores: Stores):
    first = link("u-a-" + uuid.uuid4().hex)
    await stores.identity_links.add(first)
    with pytest.raises(LinkExists):
        await stores.identity_links.add(link("u-b-" + uuid.uuid4().hex, first.subject))
    assert (await stores.identity_links.find("hospital", first.subject)).user_id == first.user_id


async def test_racing_first_sign_ins_make_one_link(stores: Stores):
    subject = uuid.uuid4().hex

    async def attempt(i: int) -> bool:
        try:
            await stores.identity_links.add(link(f"racer-{i}-{subject[:8]}", subject))
            return True
        except LinkExists:
            return False

    results = await asyncio.gather(*(attempt(i) for i in range(RACERS)))
    assert results.count(True) == 1


async def test_links_of_a_user_touch_and_remove(stores: Stores):
    user_id = "u-" + uuid.uuid4().hex
    old, new = link(user_id, at=1000), link(user_id, provider="clinic", at=2000)
    await stores.identity_links.add(new)
    await stores.identity_links.add(old)
    assert [x.provider for x in await stores.identity_links.for_user(user_id)] == ["hospital", "clinic"]
    await stores.identity_links.touch("hospital", old.subject, 5000)
    assert (await stores.identity_links.find("hospital", old.subject)).last_used == 5000
    assert not await stores.identity_links.remove("someone-else", "hospital", old.subject)  # not theirs
    assert await stores.identity_links.remove(user_id, "hospital", old.subject)
    assert not await stores.identity_links.remove(user_id, "hospital", old.subject)
    assert [x.provider for x in await stores.identity_links.for_user(user_id)] == ["clinic"]


async def test_deleting_a_user_removes_their_links(stores: Stores):
    user = User(id=uuid.uuid4().hex[:12], username="fed-" + uuid.uuid4().hex[:10])
    await stores.users.create(user)
    mine = link(user.id)
    await stores.identity_links.add(mine)
    assert await stores.users.delete(user.id)
    assert await stores.identity_links.find("hospital", mine.subject) is None
