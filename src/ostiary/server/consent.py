"""Consent: which scopes and claims the user has allowed a client, and the consent page's answer.

A consent is stored per user and client as a set of tokens: scopes as they are, and claims
consented one by one as the claim name in double quotes (`"email"`). A double quote cannot occur
in a scope token (RFC 6749 §3.3), so no scope can ever be read as a consented claim.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

from ..errors import AccessDenied, RedirectError
from ..store import Client
from ..store.identity import ConsentStore, User
from .audit import audit
from .authorize import AuthorizationRequest
from .claims import consentable_claims
from .interaction import ConsentGiven, Interaction

__all__ = ["ConsentAsk", "ConsentService", "claim_token", "client_display_name", "consented_claims", "redirect_host",
           "visible_text"]

# Control, format (bidi overrides and isolates, zero-width), separator, private and unassigned characters.
_HIDDEN = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def visible_text(raw: str, limit: int = 80) -> str:
    """Text from elsewhere as pages show it: without bidi or control characters (text that reverses or
    hides itself could pose as something else), whitespace collapsed, at most `limit` characters."""
    text = "".join(c for c in unicodedata.normalize("NFC", raw) if unicodedata.category(c) not in _HIDDEN)
    return " ".join(text.split())[:limit]


def client_display_name(client: Client | None, fallback: str) -> str:
    """The client's name as pages show it (`visible_text`: it could pose as another app)."""
    for raw in (client.client_name if client else "", fallback):
        text = visible_text(raw)
        if text:
            return text
    return "this application"


def redirect_host(redirect_uri: str) -> str:
    """Where the browser goes back to, as the consent page names it: the host (or an app's scheme)."""
    parts = urlsplit(redirect_uri)
    return parts.hostname or parts.scheme


def claim_token(name: str) -> str:
    return f'"{name}"'


def consented_claims(stored: Iterable[str]) -> frozenset[str]:
    """The claim names among stored consent tokens."""
    return frozenset(t[1:-1] for t in stored if len(t) > 2 and t[0] == t[-1] == '"')


@dataclass(frozen=True, slots=True)
class ConsentAsk:
    """What the consent page asks for: the request's scopes, and its claims not yet consented; who
    asks (its name as pages show it, whether an administrator created it) and where the user goes."""

    scopes: tuple[str, ...]
    claims: tuple[str, ...]
    client_name: str
    verified: bool
    redirect_host: str


class ConsentService:
    def __init__(self, consents: ConsentStore) -> None:
        self.consents = consents

    async def may_redirect_error(self, client: Client, user_id: str | None, interacted: bool) -> bool:
        """RFC 9700 §4.11.2: an error goes back to a client an administrator did not create only after
        the user has interacted, or when this user has consented to it before (silent renewal)."""
        if client.trust_level == "admin" or interacted:
            return True
        return user_id is not None and bool(await self.consents.get(user_id, client.client_id))

    async def ask(self, req: AuthorizationRequest, client: Client | None, user: User) -> ConsentAsk:
        stored = consented_claims(await self.consents.get(user.id, req.client_id))
        claims = tuple(c for c in consentable_claims(req.claims, req.scope) if c not in stored)
        return ConsentAsk(scopes=req.scope, claims=claims, client_name=client_display_name(client, req.client_id),
                          verified=client is not None and client.trust_level == "admin",
                          redirect_host=redirect_host(req.redirect_uri))

    async def needed(self, req: AuthorizationRequest, client: Client, user: User) -> bool:
        """True while a scope, or a claim asked for with `claims`, has not been consented."""
        if "consent" in req.prompt:
            return True
        if client.skip_consent:  # admin-only: the administrator consented for users
            return False
        stored = await self.consents.get(user.id, client.client_id)
        wanted = set(req.scope) | {claim_token(c) for c in consentable_claims(req.claims, req.scope)}
        return not wanted <= stored

    async def claims_for_grant(self, req: AuthorizationRequest, client: Client, user: User,
                               interaction: Interaction | None) -> tuple[str, ...]:
        """Claims asked for with `claims` that this grant may release beyond its scopes."""
        asked = consentable_claims(req.claims, req.scope)
        if not asked or client.skip_consent:
            return asked
        given = set(consented_claims(await self.consents.get(user.id, client.client_id)))
        if interaction is not None and interaction.consent is not None:
            given.update(interaction.consent.claims)
        released = tuple(c for c in asked if c in given)
        if len(released) < len(asked):
            audit("claims_withheld", sub=user.id, client_id=client.client_id,
                  claims=[c for c in asked if c not in given])
        return released

    async def answer(self, interaction: Interaction, user: User, approve: bool,
                     claims: Iterable[str]) -> Interaction:
        """The consent page's answer; raises RedirectError(access_denied) when the user says no.

        Only claims the page asked for can be consented; anything else in the form is ignored.
        """
        req = interaction.request
        if not approve:
            audit("consent_denied", sub=user.id, client_id=req.client_id, scope=" ".join(req.scope))
            raise RedirectError(AccessDenied("the user denied the request"), req.target)
        asked = set(consentable_claims(req.claims, req.scope))
        allowed = tuple(sorted(asked & set(claims)))
        await self.consents.grant(user.id, req.client_id,
                                  frozenset(req.scope) | {claim_token(c) for c in allowed})
        audit("consent_granted", sub=user.id, client_id=req.client_id, scope=" ".join(req.scope),
              claims=list(allowed))
        return replace(interaction, consent=ConsentGiven(scopes=req.scope, claims=allowed), interacted=True)
