"""Which client may be registered with what: trust levels, scope allow-lists, admin-only metadata.

The rules are tables (docs/security.md "Client trust levels and scope rules"): `ADMIN_ONLY` names
the metadata only an operator sets and the threat each stops; `ClientRules` holds, per trust level,
the scopes a client may hold, its default scope and what else it may not do.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, get_args

from ...config import RegistrationSettings, Settings
from ...errors import InvalidClientMetadata, InvalidScope
from ...smart.scopes import is_clinical, parse_clinical
from ...store import Client, TrustLevel
from ..audit import audit
from .grants import ScopeKind, may_carry, scope_kind, system_scope_refusal

__all__ = ["ADMIN_ONLY", "OPENID_RULES", "ClientRules", "ClientUpgrade", "LevelRule", "OpenidRule", "SelfServiceApi",
           "openid_rule"]

# What `scope=openid` on client_credentials does (no end-user, so never an ID token): "accept" keeps
# it in the access token, "ignore" drops it, "reject" is invalid_scope. Platforms differ exactly here.
OpenidRule = Literal["accept", "ignore", "reject"]
OPENID_RULES: tuple[OpenidRule, ...] = get_args(OpenidRule)

# Metadata a client never sets for itself (issue: "Admin-only metadata"), with the attack each stops.
ADMIN_ONLY: Mapping[str, str] = {
    "skip_consent": "a registrant skipping the consent page takes a user's data with one click",
    "audiences": "a client asking for tokens to APIs it was never meant to call",
    "access_token_lifetime": "a client choosing week-long access tokens for itself",
    "access_token_format": "a client choosing the token format the resource servers expect",
    "openid_on_client_credentials": "a client changing how the server treats openid without a user",
    "resource_server": "a client introspecting other clients' tokens",
    "system_scopes_with_secret": "a backend client getting system/ scopes without a private key",
    "sector_identifier_uri": "a client joining another sector's pairwise subjects",
    "trust_level": "a client promoting itself to a higher trust level",
    "minimum_acr": "a client lowering (or removing) the sign-in level its administrator demands of its users",
}
LEVEL_GOVERNED: frozenset[ScopeKind] = frozenset({"system", "patient", "user", "api"})
# What an unset admin-only field reads as (so a client may send back a default it was shown).
_UNSET: Mapping[str, Any] = {"skip_consent": False, "resource_server": False, "system_scopes_with_secret": False,
                             "audiences": []}


def openid_rule(client: Client, default: OpenidRule) -> OpenidRule:
    """The client's openid-on-client_credentials rule as an operator set it, else the server's `default`."""
    value = client.extra.get("openid_on_client_credentials")
    return next((rule for rule in OPENID_RULES if rule == value), default)


@dataclass(frozen=True, slots=True)
class SelfServiceApi:
    """An API the operator offers on the developer portal: its audience and the scopes it defines."""

    audience: str
    scopes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LevelRule:
    """What a client of one trust level may hold."""

    scopes: tuple[str, ...]  # allow-list; a SMART resource scope here covers narrower ones
    client_credentials: bool = True  # may the client use the client_credentials grant at all
    audiences: tuple[str, ...] = ()  # audiences the client may choose (the portal's APIs)

    def allows(self, token: str) -> bool:
        if token in self.scopes:
            return True
        if not is_clinical(token):
            return False
        try:
            wanted = parse_clinical(token)
        except InvalidScope:
            return False
        return any(parse_clinical(a).covers(wanted) for a in self.scopes if is_clinical(a))


@dataclass(frozen=True, slots=True)
class ClientRules:
    """The trust-level table; admin-created clients (no entry) may hold anything."""

    levels: Mapping[TrustLevel, LevelRule] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: RegistrationSettings,
                      self_service: Sequence[SelfServiceApi] = ()) -> ClientRules:
        return cls({
            "registrant": LevelRule((*settings.registrant_scopes, *settings.api_scopes)),
            # An anonymous party never gets a client of its own without a user (client_credentials).
            "open": LevelRule(tuple(settings.open_scopes), client_credentials=False),
        }).with_self_service(self_service)

    def with_self_service(self, apis: Sequence[SelfServiceApi]) -> ClientRules:
        """These rules with the portal level: exactly the scopes and audiences of `apis`."""
        portal = LevelRule(tuple(dict.fromkeys(s for api in apis for s in api.scopes)),
                           audiences=tuple(dict.fromkeys(api.audience for api in apis)))
        return replace(self, levels={**self.levels, "portal": portal})

    def allows(self, level: TrustLevel, token: str) -> bool:
        rule = self.levels.get(level)
        return rule is None or rule.allows(token)

    def default_scope(self, level: TrustLevel, grant_types: Collection[str]) -> str:
        """The scope of a registration that names none: the level's list, as far as its grants can carry it."""
        rule = self.levels.get(level)
        if rule is None:
            return ""
        # openid is only tolerated on client_credentials (tokens.openid_on_client_credentials), never a default
        def carried(grant_type: str, token: str) -> bool:
            return may_carry(grant_type, token) and (grant_type != "client_credentials" or token != "openid")

        return " ".join(s for s in rule.scopes if any(carried(g, s) for g in grant_types))

    def rule_for(self, level: TrustLevel, editing_itself: Client | None = None) -> LevelRule | None:
        """The rule for `level`; None: anything (an operator). A client editing itself (RFC 7592)
        is never an operator: at the admin level it keeps what the operator gave it and may narrow
        its scope, never widen it or set admin-only metadata (a raised level is not the client's)."""
        rule = self.levels.get(level)
        if rule is None and editing_itself is not None:
            return LevelRule(tuple(editing_itself.scope.split()),
                             client_credentials="client_credentials" in editing_itself.grant_types)
        return rule

    def check_admin_only(self, rule: LevelRule | None, metadata: Mapping[str, Any],
                         current: Mapping[str, Any] | None) -> dict[str, Any]:
        """Metadata without admin-only fields, the stored values kept (RFC 7592 PUT).

        An admin-only field sent with its stored (or unset) value is accepted and changes nothing;
        any other value raises InvalidClientMetadata naming the field. `rule` from `rule_for`.
        """
        if rule is None:
            return dict(metadata)
        stored = current or {}
        out = {k: v for k, v in metadata.items() if k not in ADMIN_ONLY}
        for name in ADMIN_ONLY:
            portal_choice = name == "audiences" and rule.audiences
            if name in metadata and not portal_choice and metadata[name] != stored.get(name, _UNSET.get(name)):
                audit("registration_refused", level=logging.WARNING, field=name)
                raise InvalidClientMetadata(f"{name} can only be set by an administrator")
            if portal_choice and name in metadata:
                out[name] = metadata[name]
            elif name in stored:
                out[name] = stored[name]
        return out

    def check_fields(self, level: TrustLevel, fields: Mapping[str, Any], rule: LevelRule | None = None) -> None:
        """Refuse validated metadata outside the level (or `rule`): scopes, grant types, audiences."""
        rule = rule if rule is not None else self.levels.get(level)
        if rule is None:
            return
        for token in str(fields["scope"]).split():
            if not rule.allows(token):
                self._refuse(level, f"scope {token!r} is not available to clients registered this way")
        if not rule.client_credentials and "client_credentials" in fields["grant_types"]:
            self._refuse(level, "client_credentials is not available to clients registered this way")
        for audience in fields["audiences"]:
            if audience not in rule.audiences:
                self._refuse(level, f"audience {audience!r} is not available to clients registered this way")

    @staticmethod
    def _refuse(level: TrustLevel, reason: str) -> None:
        audit("registration_refused", level=logging.WARNING, trust_level=level, reason=reason)
        raise InvalidClientMetadata(reason)

    def narrow_client(self, client: Client) -> tuple[Client, tuple[str, ...]]:
        """The client reduced to what its level allows now, and what was removed (empty: unchanged)."""
        rule = self.levels.get(client.trust_level)
        if rule is None:
            return client, ()
        removed: list[str] = [f"scope {s}" for s in client.scope.split() if not rule.allows(s)]
        changes: dict[str, Any] = {"scope": " ".join(s for s in client.scope.split() if rule.allows(s))}
        if not rule.client_credentials and "client_credentials" in client.grant_types:
            removed.append("grant type client_credentials")
            changes["grant_types"] = tuple(g for g in client.grant_types if g != "client_credentials")
        kept = tuple(a for a in client.audiences if a in rule.audiences)
        removed += [f"audience {a}" for a in client.audiences if a not in kept]
        admin_values = {"skip_consent": False, "resource_server": False, "system_scopes_with_secret": False,
                        "access_token_lifetime": None, "access_token_format": None}
        for name, unset in admin_values.items():
            if getattr(client, name) != unset:
                removed.append(name)
                changes[name] = unset
        extra = {k: v for k, v in client.extra.items() if k not in ADMIN_ONLY}
        removed += [k for k in client.extra if k in ADMIN_ONLY]
        if not removed:
            return client, ()
        return replace(client, **changes, audiences=kept, extra=extra), tuple(removed)

    def refusal(self, client: Client, token: str, grant_type: str | None = None) -> str | None:
        """Why `client` may not be granted `token` (through `grant_type`, if given); None if it may."""
        rule = self.levels.get(client.trust_level)
        # Identity, launch and refresh scopes are the user's to consent to: any user-facing client may
        # ask for them at /authorize (OIDC Core §5.4), so the level governs resource and API scopes.
        if rule is not None and scope_kind(token) in LEVEL_GOVERNED and not rule.allows(token):
            return f"{client.trust_level} clients may not hold {token!r}"
        if grant_type == "client_credentials" and rule is not None and not rule.client_credentials:
            return f"{client.trust_level} clients may not use client_credentials"
        if grant_type is not None and not may_carry(grant_type, token):
            return f"scope {token!r} cannot be granted through {grant_type}"
        return system_scope_refusal(client) if scope_kind(token) == "system" else None

    def still_held(self, client: Client, scope: Sequence[str], grant_type: str | None = None) -> tuple[str, ...]:
        """The part of an earlier grant the client may still hold (at refresh and introspection).

        Scopes its trust level no longer allows, system/ scopes it may no longer hold and, with
        `grant_type`, scopes that grant may not carry are dropped, each with an audit event.
        """
        kept: list[str] = []
        for token in scope:
            reason = self.refusal(client, token, grant_type)
            if reason is None:
                kept.append(token)
            else:
                audit("scope_reduced", level=logging.WARNING, client_id=client.client_id, scope=token, reason=reason)
        return tuple(kept)


@dataclass(frozen=True, slots=True)
class ClientUpgrade:
    """Re-checks a client registered before trust levels existed (migration 0006).

    A client that came through /register (it has a registration access token) gets the level
    registration gave at the time; an operator's client is `admin`. What that level does not allow
    is removed; the caller reports it.
    """

    rules: ClientRules
    registered_level: TrustLevel = "registrant"

    @classmethod
    def from_settings(cls, settings: Settings, rules: ClientRules | None = None) -> ClientUpgrade:
        initial = settings.registration_token or settings.registration.initial_access_token
        return cls(rules or ClientRules.from_settings(settings.registration),
                   "open" if settings.registration.open and not initial else "registrant")

    def __call__(self, client: Client) -> tuple[Client, tuple[str, ...]]:
        level: TrustLevel = self.registered_level if client.registration_token_digest else "admin"
        # skip_consent used to live in `extra`: an operator's setting becomes the typed field
        skip = client.skip_consent or client.extra.get("skip_consent") is True
        extra = {k: v for k, v in client.extra.items() if k != "skip_consent"}
        classified = replace(client, trust_level=level, skip_consent=skip, extra=extra)
        narrowed, removed = self.rules.narrow_client(classified)
        if removed:
            audit("client_narrowed", level=logging.WARNING, client_id=client.client_id, trust_level=level,
                  removed=list(removed))
        return narrowed, removed
