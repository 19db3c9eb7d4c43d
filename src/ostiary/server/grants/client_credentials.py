"""client_credentials (RFC 6749 §4.4), with resource indicators (RFC 8707) and the `openid` rule."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar
from urllib.parse import urlsplit

from ...errors import InvalidScope, InvalidTarget
from ...smart.scopes import is_clinical
from ...store import Client
from ..policy.clients import OpenidRule, openid_rule
from ..policy.grants import check_grant
from ..requests import EndpointRequest
from ..scopes import grant_scopes, parse_scope
from ..tokens import TokenIssuer

__all__ = ["ClientCredentialsGrant", "resolve_audience"]


def resolve_audience(resources: Sequence[str], client: Client, default: str) -> tuple[str, ...]:
    """The token's `aud`: the requested resources, each registered for the client (RFC 8707 §2)."""
    for resource in resources:
        try:
            parts = urlsplit(resource)
        except ValueError:  # e.g. "http://[::1": not a URI at all
            raise InvalidTarget("resource must be an absolute URI (RFC 8707 §2)") from None
        if not parts.scheme or not (parts.netloc or parts.path) or parts.fragment:
            raise InvalidTarget("resource must be an absolute URI without a fragment (RFC 8707 §2)")
        if resource not in client.audiences:
            raise InvalidTarget(f"resource {resource!r} is not allowed for this client")
    if resources:
        return tuple(dict.fromkeys(resources))
    return (client.audiences[0],) if client.audiences else (default,)


class ClientCredentialsGrant:
    grant_type: ClassVar[str] = "client_credentials"
    public_clients: ClassVar[bool] = False

    def __init__(self, issuer: TokenIssuer, default_audience: str,
                 openid: OpenidRule, *, fhir_audience: str | None = None,
                 backend_lifetime: int | None = None) -> None:
        self._issuer = issuer
        self._default_audience = default_audience
        self._openid = openid
        self._fhir_audience = fhir_audience  # SMART Backend Services: FHIR scopes get the FHIR base as aud
        self._backend_lifetime = backend_lifetime

    async def handle(self, request: EndpointRequest, client: Client) -> dict[str, Any]:
        requested = parse_scope(request.get("scope"))
        rule = openid_rule(client, self._openid)  # per client if an operator set it (docs/clients.md)
        if "openid" in requested:
            # OIDC needs an end-user; with none there is no ID token. Many libraries still send
            # `openid` here, so by default it is kept in the access token and nothing more happens.
            if rule == "reject":
                raise InvalidScope("openid is not available with client_credentials")
            if rule == "ignore":
                requested = tuple(s for s in requested if s != "openid")
        allowed = client.scopes | ({"openid"} if rule == "accept" and "openid" in requested else set())
        granted = grant_scopes(requested, frozenset(allowed)) if requested else tuple(sorted(client.scopes))
        granted = check_grant(client, self.grant_type, granted, explicit=bool(requested))
        resources = request.repeated.get("resource", ())
        fhir = self._fhir_audience is not None and any(is_clinical(s) for s in granted)
        if fhir and not resources:
            audience: tuple[str, ...] = (str(self._fhir_audience),)
        else:
            audience = resolve_audience(resources, client, self._default_audience)
        token = await self._issuer.issue_access_token(
            client, subject=client.client_id, scope=granted, audience=audience,
            max_lifetime=self._backend_lifetime if fhir else None,
        )
        body: dict[str, Any] = {
            "access_token": token.value,
            "token_type": "Bearer",
            "expires_in": token.expires_in,
        }
        if granted:
            body["scope"] = " ".join(granted)
        return body
