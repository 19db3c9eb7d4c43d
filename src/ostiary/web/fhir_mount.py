"""The built-in FHIR API at /fhir, checking this server's own tokens (opaque or JWT, with revocation)."""

from __future__ import annotations

from dataclasses import replace

from starlette.types import ASGIApp, Receive, Scope, Send

from ..app.provider import Provider
from ..fhir.access import TokenContext, context_from_claims
from ..fhir.app import make_fhir_app
from ..server.audit import audit
from ..smart.entitlements import NO_ACCESS

__all__ = ["FhirMount", "build_fhir_app"]


def build_fhir_app(provider: Provider) -> ASGIApp:
    base = provider.settings.fhir_base_url

    async def authorize(token: str) -> TokenContext | None:
        found = await provider.inspector.find(token)
        if found is None or not found.active or found.kind != "access_token":
            return None
        aud = found.claims.get("aud")
        audiences = [aud] if isinstance(aud, str) else list(aud or [])
        if base not in audiences:  # RFC 9068 §4: a resource server accepts only tokens meant for it
            return None
        context = context_from_claims(found.claims)
        user_scoped = any(s.startswith("user/") for s in context.scopes.split())
        if not user_scoped and context.patient is None:
            return context
        # The user's entitlement now (access facts apply to live tokens): user/ scopes are cut to it, and a
        # patient in context the user may no longer see is no context at all (patient/ scopes then fail).
        subject = found.claims.get("sub")
        entitlement = await provider.patient_access.entitlement(subject) if isinstance(subject, str) else NO_ACCESS
        if context.patient is not None and not entitlement.allows(context.patient):
            audit("patient_context_refused", sub=subject, client_id=context.client_id, patient=context.patient)
            context = replace(context, patient=None)
        return replace(context, entitlement=entitlement if user_scoped else None)

    assert provider.fhir_store is not None  # mounted only when SMART is on, and then the provider has it
    return make_fhir_app(provider.fhir_store, authorize, base,
                         authorize_url=provider.url("authorization_endpoint"), token_url=provider.url("token_endpoint"))


class FhirMount:
    """Built on first use: the provider exists only once the application has started."""

    def __init__(self) -> None:
        self._app: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._app is None:
            self._app = build_fhir_app(scope["app"].state.provider)
        await self._app(scope, receive, send)
