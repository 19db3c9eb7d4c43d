"""The patient rules of the front channel and the token path: scopes reduced to the user's entitlement,
the patient in context (none, the only one, or the picker), and the fhirUser claim from access facts.

The decisions are ``server.policy.patients``; this service applies them to one authorization request.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from ..errors import AccessDenied, InteractionRequired, RedirectError
from ..smart.directory import ClinicalDirectory
from ..smart.entitlements import NO_ACCESS, Entitlement
from ..store import Client
from ..store.access import AccessFacts, AccessStore
from ..store.identity import User
from .audit import audit
from .authorize import AuthorizationRequest
from .policy.patients import entitlement_of, patient_context, reduce_scopes

__all__ = ["PatientAccess"]


def _needs_patient(scope: tuple[str, ...]) -> bool:
    """launch/patient, or any patient/ scope: never a patient/ token without a patient in context."""
    return any(s == "launch/patient" or s.startswith("patient/") for s in scope)


class PatientAccess:
    """Entitlements of users from their access facts, over this server's FHIR data (``directory``)."""

    def __init__(self, facts: AccessStore, fhir_base_url: str, directory: ClinicalDirectory | None = None) -> None:
        self.facts = facts
        self.fhir_base_url = fhir_base_url
        self.directory = directory  # None when this server serves no FHIR data: nobody has clinical access

    async def entitlement(self, user_id: str) -> Entitlement:
        if self.directory is None:
            return NO_ACCESS
        return await entitlement_of(await self.facts.get(user_id), self.directory)

    async def fhir_user(self, user_id: str) -> str | None:
        """The fhirUser claim (an absolute URL on this FHIR base), from the access facts only."""
        facts = await self.facts.get(user_id)
        return f"{self.fhir_base_url}/{facts.fhir_user}" if facts and facts.fhir_user else None

    async def token_claims(self, user_id: str, scope: Sequence[str]) -> dict[str, Any]:
        """Access-token claims: ``fhirUser`` with that scope, and for other resource servers (the FHIR
        gateway) ``patient_access: {"all": true}`` in a user/ token of a user who may see every patient.
        Never a list of patient ids in a JWT: for anyone else a resource server asks introspection
        (``introspection_claims``)."""
        out: dict[str, Any] = {}
        if "fhirUser" in scope and (fhir_user := await self.fhir_user(user_id)):
            out["fhirUser"] = fhir_user  # SMART §fhirUser: resource servers may let the app read it
        if any(s.startswith("user/") for s in scope) and (await self.entitlement(user_id)).everyone:
            out["patient_access"] = {"all": True}
        return out

    async def introspection_claims(self, answer: Mapping[str, Any]) -> dict[str, Any]:
        """For an active access token (its introspection answer so far): ``fhirUser`` when that scope was
        granted, and for user/ scopes the user's patients now (``patient_access``), so a resource server
        enforces them with current facts."""
        scope, subject = answer.get("scope"), answer.get("sub")
        scopes = scope.split() if isinstance(scope, str) else []
        if not isinstance(subject, str):
            return {}
        out: dict[str, Any] = {}
        if "fhirUser" in scopes and "fhirUser" not in answer and (fhir_user := await self.fhir_user(subject)):
            out["fhirUser"] = fhir_user
        if any(s.startswith("user/") for s in scopes):
            out["patient_access"] = (await self.entitlement(subject)).to_claim()
        return out

    async def reduce(self, req: AuthorizationRequest, client: Client, user: User) -> AuthorizationRequest:
        """The request with only the scopes this user may give this client (what consent asks for)."""
        return replace(req, scope=reduce_scopes(req.scope, await self.entitlement(user.id), client, user.id))

    async def settle(self, req: AuthorizationRequest, client: Client,
                     user: User) -> tuple[AuthorizationRequest, bool]:
        """The request with scopes this user may give and the patient in context, and whether the user
        must pick the patient (the picker lists exactly the allowed patients).

        Raises RedirectError: access_denied for a launch patient the user may not see,
        interaction_required when a patient must be picked under prompt=none.
        """
        facts = await self.facts.get(user.id)
        bound = req.context.get("user")
        if bound is not None and bound not in self._names(user, facts):
            audit("launch_user_refused", sub=user.id, client_id=client.client_id)
            raise RedirectError(AccessDenied("this launch was made for another user"), req.target)
        entitlement = NO_ACCESS if self.directory is None else await entitlement_of(facts, self.directory)
        req = replace(req, scope=reduce_scopes(req.scope, entitlement, client, user.id))
        patient = req.context.get("patient")
        if patient is not None:  # an EHR launch's patient, or one picked in this interaction: fixed
            if not entitlement.allows(str(patient)):
                audit("patient_context_refused", sub=user.id, client_id=client.client_id, patient=patient)
                raise RedirectError(AccessDenied("the user may not see the patient of this launch"), req.target)
            return req, False
        if not _needs_patient(req.scope):
            return req, False
        choice = await patient_context(entitlement, self.directory)
        if choice.patient is not None:
            return replace(req, context={**req.context, "patient": choice.patient}), False
        if choice.ask:
            if "none" in req.prompt:
                raise RedirectError(InteractionRequired("a patient must be chosen"), req.target)
            return req, True
        audit("scope_reduced_for_user", sub=user.id, client_id=client.client_id, removed="patient context")
        return replace(req, scope=tuple(s for s in req.scope if not _needs_patient((s,)))), False

    def _names(self, user: User, facts: AccessFacts | None) -> set[str]:
        """What a launch's `user` is compared with: the username, or the fhirUser (relative or absolute)."""
        names = {user.username}
        if facts is not None and facts.fhir_user:
            names |= {facts.fhir_user, f"{self.fhir_base_url}/{facts.fhir_user}"}
        return names

    async def may_pick(self, user_id: str, patient_id: str) -> bool:
        """A picker answer: a patient this user may see that exists on this FHIR base."""
        if self.directory is None or not (await self.entitlement(user_id)).allows(patient_id):
            return False
        return await self.directory.patient(patient_id) is not None
