"""Mailed links (store/email_links.py) over every backend: peek changes nothing, take is single-use
under 50 racers and refuses an expired link, purposes do not mix; users found by address."""

from __future__ import annotations

import asyncio
import time

from ostiary.store.backend import Stores
from ostiary.store.email_links import EmailLink
from ostiary.store.identity import User

from .conftest import RACERS, uid


def link(**changes: object) -> EmailLink:
    fields: dict[str, object] = {"digest": (uid() * 4)[:64], "purpose": "reset", "user_id": uid("u"),
                                 "email": "a@example.org", "expires_at": int(time.time()) + 60, **changes}
    return EmailLink(**fields)  # type: ignore[arg-type]


async def test_peek_then_take_once_under_racers(stores: Stores) -> None:
    now = int(time.time())
    first = link()
    await stores.email_links.add(first)
    assert await stores.email_links.peek(first.digest, "verify", now) is None  # another purpose
    assert await stores.email_links.peek(first.digest, "reset", now) == first
    assert await stores.email_links.peek(first.digest, "reset", now) == first  # peeking uses nothing
    takers = await asyncio.gather(*(stores.email_links.take(first.digest, "reset", now) for _ in range(RACERS)))
    assert takers.count(first) == 1 and takers.count(None) == RACERS - 1
    assert await stores.email_links.peek(first.digest, "reset", now) is None


async def test_expired_links_are_not_taken_and_are_purged(stores: Stores) -> None:
    now = int(time.time())
    late = link(expires_at=now)
    await stores.email_links.add(late)
    assert await stores.email_links.peek(late.digest, "reset", now) is None
    assert await stores.email_links.take(late.digest, "reset", now) is None
    assert await stores.email_links.purge_expired(now) >= 1
    assert await stores.email_links.take(late.digest, "reset", now - 10) is None  # gone


async def test_delete_for_user_forgets_one_purpose(stores: Stores) -> None:
    now = int(time.time())
    user_id = uid("u")
    resets = [link(user_id=user_id) for _ in range(3)]
    verify = link(user_id=user_id, purpose="verify")
    for item in [*resets, verify, link()]:
        await stores.email_links.add(item)
    assert await stores.email_links.delete_for_user(user_id, "reset") == 3
    assert await stores.email_links.peek(verify.digest, "verify", now) == verify


async def test_users_by_address(stores: Stores) -> None:
    mark = uid("m")
    named = [User(id=uid("u"), username=f"{mark}-{i}", claims={"email": f"{mark}@Example.org", "name": "x"})
             for i in range(3)]
    other = User(id=uid("u"), username=f"{mark}-other", claims={"email": f"x{mark}@example.org"})
    for user in [*named, other]:
        await stores.users.create(user)
    found = await stores.user_emails.users_with_email(f"{mark}@example.ORG", 10)
    assert sorted(u.id for u in found) == sorted(u.id for u in named)
    assert len(await stores.user_emails.users_with_email(f"{mark}@example.org", 2)) == 2
    assert await stores.user_emails.users_with_email('a"b@example.org', 5) == []
    assert await stores.user_emails.users_with_email("%@example.org", 5) == []  # LIKE wildcards are text


async def test_deleting_a_user_deletes_their_links(stores: Stores) -> None:
    user = User(id=uid("u"), username=uid("del-"), claims={})
    await stores.users.create(user)
    mine = link(user_id=user.id)
    await stores.email_links.add(mine)
    assert await stores.users.delete(user.id)
    assert await stores.email_links.peek(mine.digest, "reset", int(time.time())) is None
