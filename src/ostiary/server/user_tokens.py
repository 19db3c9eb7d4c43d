"""The token response for grants that act for a user: access token, ID token, refresh token."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ..config import OidcSettings
from ..errors import InvalidGrant
from ..store import Client
from ..store.identity import UserStore
from .audit import audit
from .claims import USER_CLAIMS, AccessClaims, FhirUserLookup, releasable_claims, released_request, user_claims
from .grants.client_credentials import resolve_audience
from .id_tokens import IdTokenIssuer
from .tokens import TokenIssuer

__all__ = ["GrantFacts", "UserTokenService"]


@dataclass(frozen=True, slots=True)
class GrantFacts:
    """What one authorization decided; carried from the code into every refresh token."""

    user_id: str
    scope: tuple[str, ...]
    grant_id: str
    auth_time: int
    expires_at: int  # absolute end of the grant (refresh tokens never outlive it)
    sid: str | None = None
    acr: str | None = None
    amr: tuple[str, ...] = ()
    claims: Mapping[str, Any] = field(default_factory=dict)  # the `claims` request parameter
    # Claims outside the scopes that the user consented to one by one; a grant made before this
    # field existed has none, so its `claims` request releases nothing beyond its scopes.
    claims_consented: tuple[str, ...] = ()
    # Launch context and other token-response parameters (SMART: patient, encounter, ...).
    context: Mapping[str, Any] = field(default_factory=dict)
    # `aud` of the access tokens when the token request names no resource (SMART: the FHIR base URL).
    audience: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["scope"], data["amr"] = list(self.scope), list(self.amr)
        data["claims_consented"] = list(self.claims_consented)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GrantFacts:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        known["scope"] = tuple(known["scope"])
        known["amr"] = tuple(known.get("amr", ()))
        known["claims_consented"] = tuple(known.get("claims_consented", ()))
        known["audience"] = tuple(known.get("audience", ()))
        return cls(**known)


class UserTokenService:
    def __init__(self, issuer: TokenIssuer, id_tokens: IdTokenIssuer, users: UserStore, settings: OidcSettings,
                 default_audience: str, fhir_user: FhirUserLookup | None = None,
                 access_claims: AccessClaims | None = None) -> None:
        self._issuer = issuer
        self._id_tokens = id_tokens
        self._users = users
        self._settings = settings
        self._default_audience = default_audience
        self._fhir_user = fhir_user
        self._access_claims = access_claims

    def wants_refresh_token(self, client: Client, scope: Sequence[str]) -> bool:
        # OIDC Core §11: with `openid`, only offline_access (or SMART's online_access) yields one.
        return "refresh_token" in client.grant_types and (
            "offline_access" in scope or "online_access" in scope or "openid" not in scope
        )

    def grant_audience(self, client: Client, facts: GrantFacts, resources: Sequence[str] = ()) -> tuple[str, ...]:
        """The audiences a grant covers (RFC 8707 §2.2): the SMART `aud`, else those its code redemption
        asked for, else the client's default (also for grants recorded before audiences were)."""
        return facts.audience or resolve_audience(resources, client, self._default_audience)

    def check_resources(self, client: Client, resources: Sequence[str]) -> None:
        """Raises InvalidTarget for a resource the client may not ask for (checked before consuming)."""
        if resources:
            resolve_audience(resources, client, self._default_audience)

    async def respond(self, client: Client, facts: GrantFacts, *, granted: Sequence[str] | None = None,
                      nonce: str | None = None, resources: Sequence[str] = (),
                      new_refresh_token: bool = True) -> dict[str, Any]:
        """Token response body; raises InvalidGrant if the user is gone or disabled."""
        user = await self._users.get(facts.user_id)
        if user is None or user.disabled:
            raise InvalidGrant("the user of this grant no longer exists or is disabled")
        scope = tuple(granted if granted is not None else facts.scope)
        audience = (facts.audience if facts.audience and not resources
                    else resolve_audience(resources, client, self._default_audience))
        # Claims consent: only what this grant's scopes or the user's one-by-one consent cover.
        requested = released_request(facts.claims, releasable_claims(scope, facts.claims_consented))
        access = await self._issuer.issue_access_token(
            client, subject=user.id, scope=scope, audience=audience, grant_id=facts.grant_id,
            stored_extra={"userinfo_claims": requested["userinfo"]} if "userinfo" in requested else None,
            extra={"auth_time": facts.auth_time, **({"sid": facts.sid} if facts.sid else {}),
                   **_token_context(facts.context),
                   **_custom_claims(user.claims, scope, self._settings.custom_claims),
                   # last: fhirUser and patient_access come from access facts only, never profile claims
                   **(await self._access_claims(user.id, scope) if self._access_claims else {})},
        )
        body: dict[str, Any] = {"access_token": access.value, "token_type": "Bearer",
                                "expires_in": access.expires_in, "scope": " ".join(scope)}
        if "openid" in scope:
            # SMART §fhirUser: the claim goes into the ID token when the fhirUser scope was granted.
            fhir_user = await self._fhir_user(user.id) if self._fhir_user else None
            id_claims = user_claims(user, ("fhirUser",) if "fhirUser" in scope else (), requested.get("id_token"),
                                    fhir_user=fhir_user)
            body["id_token"] = await self._id_tokens.issue(
                client, sub=user.id, auth_time=facts.auth_time, nonce=nonce, sid=facts.sid, acr=facts.acr,
                amr=facts.amr, access_token=access.value, claims=id_claims,
            )
        if new_refresh_token and self.wants_refresh_token(client, facts.scope):
            now = int(time.time())
            body["refresh_token"] = await self._issuer.issue_refresh_token(
                client, claims=facts.to_dict(), grant_id=facts.grant_id,
                expires_at=min(now + self._settings.refresh_token_idle, facts.expires_at),
            )
        if await self._issuer.settle_grant(facts.grant_id):
            # The family was revoked while these tokens were issued (a replay raced this request):
            # they are revoked now as well, so nothing minted here outlives the detected reuse.
            audit("grant_revoked_during_issue", client_id=client.client_id, grant_id=facts.grant_id)
        body.update(facts.context)
        return body


def _token_context(context: Mapping[str, Any]) -> dict[str, Any]:
    """Launch context that also belongs in the access token (so resource servers can enforce it)."""
    return {k: context[k] for k in ("patient", "encounter") if k in context}



def _custom_claims(claims: Mapping[str, Any], scope: Sequence[str], names: Sequence[str]) -> dict[str, Any]:
    """The operator's custom profile claims (oidc.custom_claims, such as roles) for the resource servers'
    policies: with `profile` granted (the user consented to their profile), as the user has them."""
    if "profile" not in scope:
        return {}
    # OIDC's own claims (email, address, ...) follow their scopes and consent, never this list.
    return {name: claims[name] for name in names if name in claims and name not in USER_CLAIMS}
