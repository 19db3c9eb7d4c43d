"""SMART launch context (App Launch 2.2 §"Launch context"): EHR launch values and what a token carries."""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from ..errors import InvalidRequest
from ..store.grants import InteractionStore
from ..store.protocols import ReplayCache
from .directory import ClinicalDirectory

__all__ = ["LaunchContext", "LaunchService", "parse_launch_request", "verify_context"]

_PREFIX = "launch:"
_REFERENCE = re.compile(r"[A-Z][A-Za-z]{1,63}/[A-Za-z0-9\-.]{1,64}")
_CANONICAL = re.compile(r"(https?://[^\s|]+|urn:[a-z0-9][a-z0-9-]{0,31}:[^\s|]+)(\|[^\s|]+)?")


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


def _fhir_context(value: Any) -> tuple[Mapping[str, Any], ...]:
    """SMART 2.2 §fhirContext: each entry has exactly one of reference (``Type/id`` on this FHIR base),
    canonical (an absolute URL, ``|version`` allowed) or identifier (``{system?, value}``)."""
    if not isinstance(value, list) or len(value) > 20:
        raise InvalidRequest("fhirContext must be an array (at most 20 entries)")
    for entry in value:
        kinds = [k for k in ("reference", "canonical", "identifier") if isinstance(entry, dict) and k in entry]
        if len(kinds) != 1:
            raise InvalidRequest("each fhirContext entry needs exactly one of reference, canonical or identifier")
        item = entry[kinds[0]]
        if kinds[0] == "reference" and not (isinstance(item, str) and _REFERENCE.fullmatch(item)):
            raise InvalidRequest("a fhirContext reference must be Type/id on this FHIR server")
        if kinds[0] == "canonical" and not (isinstance(item, str) and _CANONICAL.fullmatch(item)):
            raise InvalidRequest("a fhirContext canonical must be an absolute URL (|version allowed)")
        if kinds[0] == "identifier" and not _identifier(item):
            raise InvalidRequest("a fhirContext identifier must be an object with a string value (and system URI)")
        if any(not isinstance(entry.get(k), str) for k in ("type", "role") if k in entry):
            raise InvalidRequest("fhirContext type and role must be strings")
    return tuple(value)


def _identifier(item: Any) -> bool:
    if not isinstance(item, dict) or not isinstance(item.get("value"), str) or not item["value"]:
        return False
    system = item.get("system")
    return system is None or (isinstance(system, str) and bool(_CANONICAL.fullmatch(system)))


def parse_launch_request(body: Any) -> LaunchContext:
    """Validate the JSON an EHR posts to create a launch; raises InvalidRequest."""
    if not isinstance(body, dict):
        raise InvalidRequest("the launch request must be a JSON object")
    fhir_context = _fhir_context(body.get("fhirContext") or [])
    for name in ("intent", "smart_style_url", "user", "client_id"):
        if body.get(name) is not None and not isinstance(body[name], str):
            raise InvalidRequest(f"{name} must be a string")
    if not body.get("client_id"):  # a launch value is bound to one app
        raise InvalidRequest("client_id is required: the app this launch is for")
    banner = body.get("need_patient_banner")
    if banner is not None and not isinstance(banner, bool):
        raise InvalidRequest("need_patient_banner must be true or false")
    return LaunchContext(
        patient=_id(body.get("patient"), "Patient"), encounter=_id(body.get("encounter"), "Encounter"),
        user=body.get("user"), fhir_context=tuple(fhir_context), intent=body.get("intent"),
        need_patient_banner=banner, smart_style_url=body.get("smart_style_url"), client_id=body.get("client_id"),
    )


async def verify_context(context: LaunchContext, directory: ClinicalDirectory) -> None:
    """The launch names data of this FHIR base: the patient exists, the encounter is that patient's, and
    every fhirContext reference resolves. Raises InvalidRequest."""
    if context.patient and await directory.patient(context.patient) is None:
        raise InvalidRequest(f"no Patient/{context.patient}")
    if context.encounter:
        encounter = await directory.resource("Encounter", context.encounter)
        subject = (encounter or {}).get("subject") or {}
        if not context.patient or not isinstance(subject, Mapping) or (
                subject.get("reference") != f"Patient/{context.patient}"):
            raise InvalidRequest(f"Encounter/{context.encounter} is not an encounter of the launch's patient")
    for entry in context.fhir_context:
        reference = entry.get("reference")
        if isinstance(reference, str):
            kind, _, ident = reference.partition("/")
            if await directory.resource(kind, ident) is None:
                raise InvalidRequest(f"fhirContext {reference} does not exist on this FHIR server")


class LaunchService:
    """Opaque `launch` values for EHR launches, kept with the pending interactions (short-lived).

    A value is looked up (not used) at /authorize, so a reload or a wrong password does not burn it;
    it is consumed once, atomically, when the authorization code is issued (``consume``).
    """

    def __init__(self, store: InteractionStore, lifetime: int, fhir_base_url: str, used: ReplayCache,
                 gateways: tuple[str, ...] = ()) -> None:
        self._store = store
        self._lifetime = lifetime
        self._used = used
        self.fhir_base_url = fhir_base_url
        self.audiences = frozenset({fhir_base_url, *(g.rstrip("/") for g in gateways)})

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

    async def consume(self, value: str, client_id: str) -> LaunchContext:
        """Use the launch value once (DESIGN: validate, then one conditional statement); raises InvalidRequest
        when it is unknown, expired, for another app or already used."""
        context = await self.resolve(value, client_id)
        if not await self._used.first_use("launch-used:" + _digest(value), int(time.time()) + self._lifetime):
            raise InvalidRequest("the launch value has already been used")
        await self._store.delete(_PREFIX + value)
        return context


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()
