"""Red-team attacks on linked identities (server/federation/accounts.py) over every backend."""

from __future__ import annotations

import asyncio
import time
import uuid

from ostiary.server.federation.accounts import FederationAccounts
from ostiary.server.federation.login import UpstreamIdentity
from ostiary.store.backend import Stores
from ostiary.store.identity import User


def identity(provider: str, subject: str) -> UpstreamIdentity:
    return UpstreamIdentity(provider=provider, subject=subject, profile={}, auth_time=None, acr=None, amr=())


async def test_a_sub_that_spells_another_providers_username_provisions_a_separate_user(stores: Stores):
    """Attack: provider "a" with sub "b-x" and provider "a-b" with sub "x" both name the user "a-b-x";
    the second first sign-in must get its own user, never the first one's account."""
    accounts = FederationAccounts(stores.identity_links, stores.users)
    tag = uuid.uuid4().hex[:8]
    first = await accounts.provision(identity("a" + tag, "b-x"), int(time.time()))
    second = await accounts.provision(identity("a" + tag + "-b", "x"), int(time.time()))
    assert first.id != second.id and first.username != second.username
    assert (await accounts.linked_user(identity("a" + tag + "-b", "x"), int(time.time()))).id == second.id


async def test_racing_unlinks_never_remove_the_last_way_to_sign_in(stores: Stores):
    """Attack: a passwordless account with two linked identities; two unlink requests at once each see
    two links and each remove one, leaving none (the owner locked out)."""
    accounts = FederationAccounts(stores.identity_links, stores.users)
    for _ in range(10):
        tag = uuid.uuid4().hex[:8]
        user = await accounts.provision(identity("p" + tag, "one"), int(time.time()))
        await accounts.link(identity("q" + tag, "two"), user, int(time.time()))
        results = await asyncio.gather(accounts.unlink(user, "p" + tag, "one"),
                                       accounts.unlink(user, "q" + tag, "two"), return_exceptions=True)
        assert sorted(type(r).__name__ for r in results) == ["LastSignInMethod", "bool"], results
        assert len(await accounts.of_user(user.id)) == 1


async def test_accounts_claiming_an_address_cannot_push_its_verified_owner_out_of_a_reset(stores: Stores):
    """Attack: upstream accounts asserting someone's address are provisioned with it (unverified); the
    reset-by-address lookup takes at most a few accounts per address, by username, so enough of them with
    usernames sorting first left the owner's verified account out (no reset mail for the owner)."""
    mark = uuid.uuid4().hex[:10]
    accounts = FederationAccounts(stores.identity_links, stores.users)
    for i in range(3):
        squatter = UpstreamIdentity(provider="a" + mark, subject=f"s{i}", profile={"email": f"{mark}@example.org"},
                                    auth_time=None, acr=None, amr=())
        await accounts.provision(squatter, int(time.time()))
    owner = User(id=uuid.uuid4().hex, username="zz" + mark,
                 claims={"email": f"{mark}@example.org", "email_verified": True})
    await stores.users.create(owner)
    found = await stores.user_emails.users_with_email(f"{mark}@example.org", 2)
    assert found[0].id == owner.id
