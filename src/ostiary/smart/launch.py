"""SMART launch context (App Launch 2.2 §"Launch context"): EHR launch values and what a token carries."""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from ..errors import InvalidRequest
from ..store.grants import InteractionStore

__all__ = ["LaunchContext", "LaunchService", "parse_launch_request"]

_PREFIX = "launch:"
_REFERENCE_TYPES = ("Patient", "Encounter")


@dataclass(frozen=True, slots=True)
class LaunchContext:
    """What an EHR tells an app at launch; returned in the token response (SMART §Launch context)."""

    patient: str | None = None
    encounter: str | None = None
    user: str | None = None  # the EHR user (a username here), shown for information
    fhir_context: tuple[Mapping[str, Any], ...] = ()
    intent: str | None = None
    need_patient_banner: bool | None = None
    smart_style_url: str | None = None
    client_id: str | None = None  # when set, only this app may use the launch value

    def token_response(self) -> dict[str, Any]:
        """Token response parameters (SMART §"Launch context arrives with your access_token")."""
        out: dict[str, Any] = {}
        if self.patient:
            out["patient"] = self.patient
        if self.encounter:
            out["encounter"] = self.encounter
        if self.fhir_context:
            out["fhirContext"] = [dict(c) for c in self.fhir_context]
        if self.intent:
            out["intent"] = self.intent
        if self.need_patient_banner is not None:
            out["need_patient_banner"] = self.need_patient_banner
        if self.smart_style_url:
            out["smart_style_url"] = self.smart_style_url
        return out

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["fhir_context"] = [dict(c) for c in self.fhir_context]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LaunchContext:
        values = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        values["fhir_context"] = tuple(values.get("fhir_context") or ())
        return cls(**values)


def _id(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > 64 or "/" in value.removeprefix(f"{name}/"):
        raise InvalidRequest(f"{name.lower()} must be a {name} id")
    return value.removeprefix(f"{name}/")


def parse_launch_request(body: Any) -> LaunchContext:
    """Validate the JSON an EHR posts to create a launch; raises InvalidRequest."""
    if not isinstance(body, dict):
        raise InvalidRequest("the launch request must be a JSON object")
    fhir_context = body.get("fhirContext") or []
    if not isinstance(fhir_context, list) or not all(
        isinstance(c, dict) and ("reference" in c or "canonical" in c or "identifier" in c) for c in fhir_context
    ):
        raise InvalidRequest("fhirContext must be an array of objects with reference, canonical or identifier")
    for name in ("intent", "smart_style_url", "user", "client_id"):
        if body.get(name) is not None and not isinstance(body[name], str):
            raise InvalidRequest(f"{name} must be a string")
    banner = body.get("need_patient_banner")
    if banner is not None and not isinstance(banner, bool):
        raise InvalidRequest("need_patient_banner must be true or false")
    return LaunchContext(
        patient=_id(body.get("patient"), "Patient"), encounter=_id(body.get("encounter"), "Encounter"),
        user=body.get("user"), fhir_context=tuple(fhir_context), intent=body.get("intent"),
        need_patient_banner=banner, smart_style_url=body.get("smart_style_url"), client_id=body.get("client_id"),
    )


class LaunchService:
    """Opaque `launch` values for EHR launches, kept with the pending interactions (short-lived)."""

    def __init__(self, store: InteractionStore, lifetime: int, fhir_base_url: str) -> None:
        self._store = store
        self._lifetime = lifetime
        self.fhir_base_url = fhir_base_url

    async def create(self, context: LaunchContext) -> str:
        value = secrets.token_urlsafe(24)
        await self._store.save(_PREFIX + value, context.to_dict(), int(time.time()) + self._lifetime)
        return value

    async def resolve(self, value: str, client_id: str) -> LaunchContext:
        """The context bound to `value`; raises InvalidRequest if unknown, expired or for another app."""
        data = await self._store.get(_PREFIX + value, int(time.time())) if len(value) <= 48 else None
        if data is None:
            raise InvalidRequest("the launch value is unknown or has expired")
        context = LaunchContext.from_dict(data)
        if context.client_id and context.client_id != client_id:
            raise InvalidRequest("the launch value was created for another app")
        return context
