"""Local accounts for upstream identities: find the linked user, provision a new one, link, unlink.

An upstream identity is matched only by (provider, upstream `sub`), through a link. It is never matched
by email or any other profile claim (an upstream that asserts someone's address would otherwise take
over their account: OIDC Core §5.7, "only sub and iss are stable"). A first sign-in either creates a
new user with no access facts (no patients, no roles) or links to an existing user after the person
signed in to that account and confirmed.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from dataclasses import replace

from ...config import FederationProvider
from ...store.federation import IdentityLinkStore, LinkedIdentity
from ...store.identity import User, UserExists, UserStore
from ..audit import audit
from ..credentials import digest, new_token
from ..factors import FactorClass, Proof
from .login import AMR_CLASSES, UpstreamIdentity

__all__ = ["FederationAccounts", "LastSignInMethod", "federated_proof"]

# RFC 8176 leaves a federated sign-in unregistered; "fed" says so (docs/sign-in.md, federation).
FEDERATED_AMR = "fed"
_NAME = re.compile(r"[A-Za-z0-9._@-]{1,64}")


class LastSignInMethod(Exception):
    """Removing this link would leave the account with no way to sign in."""


def federated_proof(identity: UpstreamIdentity, user_id: str, config: FederationProvider, now: int) -> Proof:
    """The Proof of an upstream sign-in: amr ["fed"], class "federated"; the upstream's own `amr`
    and `acr` only when the administrator trusts the provider for them (never assumed multi-factor).

    The upstream's trusted values describe that one sign-in: they make it multi-factor only when they
    name two factor classes themselves; otherwise it stays the one class "federated" (so a local second
    factor, whatever its class, makes two). Adding them to "federated" counted an upstream password
    alone as two classes (red team, docs/security.md)."""
    upstream: set[FactorClass] = set()
    amr = [FEDERATED_AMR]
    if config.trust_amr:
        for value in identity.amr:
            kind = AMR_CLASSES.get(value)
            if kind is not None:
                upstream.add(kind)  # type: ignore[arg-type]
            if value != "mfa":  # combined_amr adds mfa itself when two classes were used
                amr.append(value)
    classes: set[FactorClass] = upstream if len(upstream) >= 2 else {"federated"}
    time = identity.auth_time if identity.auth_time is not None and identity.auth_time <= now else now
    return Proof(user_id=user_id, amr=tuple(amr), classes=frozenset(classes), time=time,
                 acr=identity.acr if config.trust_acr else None)


class FederationAccounts:
    def __init__(self, links: IdentityLinkStore, users: UserStore) -> None:
        self.links = links
        self._users = users

    async def linked_user(self, identity: UpstreamIdentity, now: int) -> User | None:
        """The enabled user this identity is linked to (recording the use), or None if unlinked."""
        link = await self.links.find(identity.provider, identity.subject)
        if link is None:
            return None
        user = await self._users.get(link.user_id)
        if user is None or user.disabled:
            return None
        await self.links.touch(identity.provider, identity.subject, now)
        return user

    async def is_linked(self, identity: UpstreamIdentity) -> bool:
        return await self.links.find(identity.provider, identity.subject) is not None

    async def provision(self, identity: UpstreamIdentity, now: int) -> User:
        """A new user for a first sign-in, with the mapped profile and NO access facts; raises LinkExists
        if a racing request linked the identity first."""
        base = f"{identity.provider}-{identity.subject}"
        username = base if _NAME.fullmatch(identity.subject) else f"{identity.provider}-{digest(identity.subject)[:16]}"
        claims: dict[str, object] = dict(identity.profile)
        if "email" in claims:  # the upstream's word, not verified here (docs/security.md)
            claims["email_verified"] = False
        user = User(id=new_token(16), username=username, claims=claims, created_at=now, updated_at=now)
        for _ in range(3):
            try:
                await self._users.create(user)
                break
            except UserExists:  # an administrator's user already has that name: pick another one
                user = replace(user, username=f"{username}-{secrets.token_hex(3)}")
        else:
            raise UserExists(username)
        try:
            await self._link(identity, user, now)
        except Exception:
            await self._users.delete(user.id)
            raise
        audit("federation_provisioned", sub=user.id, provider=identity.provider)
        return user

    async def link(self, identity: UpstreamIdentity, user: User, now: int) -> None:
        """Link after the person signed in to `user` and confirmed; raises LinkExists."""
        await self._link(identity, user, now)
        audit("federation_linked", sub=user.id, provider=identity.provider)

    async def _link(self, identity: UpstreamIdentity, user: User, now: int) -> None:
        await self.links.add(LinkedIdentity(provider=identity.provider, subject=identity.subject, user_id=user.id,
                                            created_at=now, last_used=now, label=identity.label))

    async def of_user(self, user_id: str) -> Sequence[LinkedIdentity]:
        return await self.links.for_user(user_id)

    async def unlink(self, user: User, provider: str, subject: str) -> bool:
        """Remove one of `user`'s links; raises LastSignInMethod if it is the only way left to sign in."""
        links = await self.links.for_user(user.id)
        if not any(link.provider == provider and link.subject == subject for link in links):
            return False
        passwordless = user.password_hash is None
        if passwordless and len(links) < 2:
            raise LastSignInMethod("this account has no password and no other linked identity")
        removed = await self.links.remove(user.id, provider, subject, keep_last=passwordless)
        if passwordless and not removed:  # a racing removal took the other link first
            raise LastSignInMethod("this account has no password and no other linked identity")
        if removed:
            audit("federation_unlinked", sub=user.id, provider=provider)
        return removed

