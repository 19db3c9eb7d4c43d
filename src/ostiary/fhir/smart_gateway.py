"""What makes the FHIR gateway usable by a SMART app and safe for user/ scopes (issue 8, items 6 and 7).

- Entitlements: a user/ token of this issuer carries ``patient_access`` only as ``{"all": true}`` (a
  signed claim); for anyone else the gateway asks introspection, whose answer lists the user's
  patients now. Without either, user/ scopes grant nothing (``smart.policy`` fails closed).
- Discovery: ``/.well-known/smart-configuration`` is the issuer's; ``/metadata`` is the upstream's
  CapabilityStatement with the SMART ``oauth-uris`` extension added.
- Paging: links and fullUrls of a searchset point at the gateway, never at the upstream.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import httpx
import orjson

from ..resource.principal import Principal
from ..resource.verifier import TokenVerifier
from ..smart.entitlements import REFERENCE_TYPES, entitlement_from_claim
from ..smart.policy import Decision
from .access import Access, AuthorizeToken, TokenContext, context_from_claims
from .capability import OAUTH_URIS, SECURITY_SERVICE
from .errors import FhirError

__all__ = ["SmartDiscovery", "entitled_authorizer", "require_named_patient", "rewrite_links"]


def _context(principal: Principal) -> TokenContext:
    context = context_from_claims(principal.claims)
    return replace(context, scopes=" ".join(sorted(principal.scopes)), client_id=principal.client_id)


def entitled_authorizer(verifier: TokenVerifier) -> AuthorizeToken:
    """An ``authorize_token`` over a TokenVerifier; for a user/ token without a signed ``patient_access``,
    the user's patients come from introspection (when the verifier has it)."""

    async def authorize(token: str) -> TokenContext:
        context = _context(await verifier.averify(token))  # GuardErrors become 401 / 503 OperationOutcomes
        if context.entitlement is None and verifier.introspector is not None and any(
                s.startswith("user/") for s in context.scopes.split()):
            answer = await verifier.introspector.aintrospect(token)
            context = replace(context, entitlement=entitlement_from_claim(answer.claims.get("patient_access")))
        return context

    return authorize


def require_named_patient(access: Access, decision: Decision, resource_type: str,
                          items: Sequence[tuple[str, str]]) -> None:
    """A search granted by a user/ scope of a restricted user must name one allowed patient (``patient`` /
    ``subject``, ``_id`` for Patient): the gateway cannot filter an upstream's results. Raises 403."""
    entitlement = access.context.entitlement
    if decision.scope is None or decision.scope.level != "user" or entitlement is None or entitlement.everyone:
        return
    if resource_type in REFERENCE_TYPES:
        return
    names = ("_id",) if resource_type == "Patient" else ("patient", "subject")
    values = [v for k, v in items if k in names]
    named = values[0].removeprefix("Patient/") if len(values) == 1 else None
    if named is None or "," in named or not entitlement.allows(named):
        raise FhirError(403, f"user/ scopes: a {resource_type} search must name one of your patients with "
                             f"{' or '.join(names)}")


def rewrite_links(body: bytes, upstream: str, public: str) -> bytes:
    """A searchset whose links and fullUrls point at ``public`` instead of ``upstream``; raises 502 for a
    body that is not a FHIR Bundle."""
    try:
        bundle = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise FhirError(502, "the upstream server answered a search with something other than FHIR JSON") from None
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise FhirError(502, "the upstream server did not answer a search with a Bundle")
    prefix = upstream.rstrip("/") + "/"

    def moved(url: object) -> object:
        return public.rstrip("/") + "/" + url[len(prefix):] if isinstance(url, str) and url.startswith(prefix) else url

    for link in bundle.get("link") or []:
        if isinstance(link, dict):
            url = moved(link.get("url"))
            if isinstance(url, str) and not url.startswith(public.rstrip("/") + "/"):
                link.pop("url", None)  # a link elsewhere would take the app around the gateway
            else:
                link["url"] = url
    for entry in bundle.get("entry") or []:
        if isinstance(entry, dict) and "fullUrl" in entry:
            entry["fullUrl"] = moved(entry["fullUrl"])
    return orjson.dumps(bundle)


class SmartDiscovery:
    """The issuer's SMART configuration (cached five minutes) and the CapabilityStatement that names it."""

    TTL = 300.0

    def __init__(self, issuer: str, http: httpx.AsyncClient) -> None:
        self.issuer = issuer.rstrip("/")
        self._http = http
        self._cached: tuple[float, dict[str, Any]] | None = None

    async def configuration(self) -> dict[str, Any]:
        """Raises FhirError 502 when the issuer cannot be asked."""
        if self._cached is not None and self._cached[0] > time.monotonic():
            return self._cached[1]
        try:
            answer = await self._http.get(self.issuer + "/.well-known/smart-configuration",
                                          headers={"Accept": "application/json"})
            doc = orjson.loads(answer.content) if answer.status_code == 200 else None
        except (httpx.HTTPError, orjson.JSONDecodeError):
            doc = None
        if not isinstance(doc, dict) or doc.get("issuer") != self.issuer or not isinstance(
                doc.get("authorization_endpoint"), str) or not isinstance(doc.get("token_endpoint"), str):
            raise FhirError(502, "the authorization server's SMART configuration cannot be read")
        self._cached = (time.monotonic() + self.TTL, doc)
        return doc

    async def capability(self, upstream_body: bytes) -> dict[str, Any]:
        """The upstream's CapabilityStatement with SMART security (oauth-uris) naming the issuer."""
        try:
            statement = orjson.loads(upstream_body)
        except orjson.JSONDecodeError:
            statement = None
        if not isinstance(statement, dict) or statement.get("resourceType") != "CapabilityStatement":
            raise FhirError(502, "the upstream server did not answer /metadata with a CapabilityStatement")
        config = await self.configuration()
        security = {
            "service": [{"coding": [{"system": SECURITY_SERVICE, "code": "SMART-on-FHIR"}]}],
            "extension": [{"url": OAUTH_URIS, "extension": [
                {"url": "token", "valueUri": config["token_endpoint"]},
                {"url": "authorize", "valueUri": config["authorization_endpoint"]},
            ]}],
        }
        rests = [r for r in statement.get("rest") or [] if isinstance(r, dict)] or [{"mode": "server"}]
        statement["rest"] = [{**r, "security": _merged(r.get("security"), security)} for r in rests]
        return statement


def _merged(current: object, smart: Mapping[str, Any]) -> dict[str, Any]:
    """The upstream's security element without its own oauth-uris (the gateway's tokens are the issuer's)."""
    base = dict(current) if isinstance(current, Mapping) else {}
    others = [e for e in base.get("extension") or [] if not (isinstance(e, dict) and e.get("url") == OAUTH_URIS)]
    return {**base, "service": smart["service"], "extension": [*others, *smart["extension"]]}
