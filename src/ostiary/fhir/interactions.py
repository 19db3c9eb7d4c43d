"""The FHIR interactions (read, search, create, update), each checked with SMART before and after loading.

A resource outside what the token may see is refused with 403 (its existence is not hidden: a
patient/ token cannot tell which ids exist through this, only that it may not read them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from starlette.responses import Response

from ..smart.policy import Decision, in_patient_compartment, matches_query
from .access import Access
from .errors import FhirError, fhir_response
from .search import Search, matches, parse_search
from .store import FhirStore, Json, compartment_of
from .validation import parse_resource, validate_resource

__all__ = ["Interactions"]


def _relative(node: Any, base: str) -> Any:
    """References to this server's own base made relative (Patient/1), as compartments need."""
    if isinstance(node, dict):
        return {k: (v.removeprefix(base) if k == "reference" and isinstance(v, str) and v.startswith(base)
                    else _relative(v, base)) for k, v in node.items()}
    if isinstance(node, list):
        return [_relative(v, base) for v in node]
    return node


def _version_headers(resource: Json, location: str | None = None) -> dict[str, str]:
    meta = resource.get("meta") or {}
    headers = {"ETag": f'W/"{meta.get("versionId", "1")}"'}
    if location:
        headers["Location"] = location
    return headers


@dataclass(frozen=True, slots=True)
class Interactions:
    store: FhirStore
    base_url: str

    async def read(self, access: Access, resource_type: str, resource_id: str) -> Response:
        own = access.reads_own_identity(self.base_url, resource_type, resource_id)
        if not own:
            access.require_type("r", resource_type)
        resource = await self.store.read(resource_type, resource_id)
        if resource is None:
            raise FhirError(404, f"{resource_type}/{resource_id} is not known")
        if not own:
            access.check("r", resource_type, resource=resource)
        return fhir_response(resource, headers=_version_headers(resource))

    async def search(self, access: Access, resource_type: str, items: Sequence[tuple[str, str]]) -> Response:
        access.require_type("s", resource_type)
        search = parse_search(resource_type, items)
        names = [k for k, _ in search.params]
        single = {k: v for k, v in search.params if names.count(k) == 1}
        decision = access.check("s", resource_type, search_params=single)
        found = [r for r in await self._candidates(resource_type, search, decision) if matches(r, search.params)]
        if decision.required_filters:  # SMART v2: results must match one of the scopes' restrictions
            found = [r for r in found if any(matches_query(r, q) for q in decision.required_filters)]
        found = [r for r in found if access.visible(decision, r)]  # user/: only the user's patients
        return fhir_response(self._bundle(resource_type, search, found))

    async def _candidates(self, resource_type: str, search: Search, decision: Decision) -> list[Json]:
        if decision.compartment is not None:
            rows = await self.store.scan(resource_type, decision.compartment)
            return [r for r in rows if in_patient_compartment(r, decision.compartment)]
        pinned = search.patients()
        if len(pinned) == 1 and resource_type != "Patient":
            return await self.store.scan(resource_type, pinned.pop())  # uses the (type, patient) index
        return await self.store.scan(resource_type)

    def _bundle(self, resource_type: str, search: Search, found: list[Json]) -> dict[str, Any]:
        page = found[search.offset: search.offset + search.count] if search.count else []

        def link(relation: str, offset: int) -> dict[str, str]:
            query = urlencode([*search.params, ("_count", str(search.count)), ("_offset", str(offset))])
            return {"relation": relation, "url": f"{self.base_url}/{resource_type}?{query}"}

        links = [link("self", search.offset)]
        if search.count and search.offset + search.count < len(found):
            links.append(link("next", search.offset + search.count))
        if search.count and search.offset > 0:
            links.append(link("previous", max(search.offset - search.count, 0)))
        return {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": len(found),
            "link": links,
            "entry": [
                {"fullUrl": f"{self.base_url}/{resource_type}/{r['id']}", "resource": r, "search": {"mode": "match"}}
                for r in page
            ],
        }

    def _incoming(self, body: bytes, resource_type: str) -> Json:
        resource: Json = _relative(parse_resource(body, resource_type), self.base_url + "/")
        validate_resource(resource)
        return resource

    async def _patient_exists(self, resource: Mapping[str, Any]) -> None:
        patient = compartment_of(resource)
        if resource.get("resourceType") != "Patient" and patient is not None:
            if await self.store.read("Patient", patient) is None:  # FHIR: a business rule -> 422
                raise FhirError(422, f"the resource refers to Patient/{patient}, which does not exist")

    async def create(self, access: Access, resource_type: str, body: bytes) -> Response:
        access.require_type("c", resource_type)
        resource = self._incoming(body, resource_type)
        resource.pop("id", None)  # FHIR R4 create: the server assigns the id
        access.check("c", resource_type, resource=resource)
        await self._patient_exists(resource)
        stored = await self.store.create(resource)
        location = f"{self.base_url}/{resource_type}/{stored['id']}/_history/1"
        return fhir_response(stored, 201, _version_headers(stored, location))

    async def update(
        self, access: Access, resource_type: str, resource_id: str, body: bytes, if_match: str | None
    ) -> Response:
        access.require_type("u", resource_type)
        resource = self._incoming(body, resource_type)
        if resource.get("id") != resource_id:  # FHIR R4 update: the body's id must be the URL's
            raise FhirError(400, "the resource id must equal the id in the URL")
        stored = await self.store.read(resource_type, resource_id)
        if stored is None:
            raise FhirError(404, f"{resource_type}/{resource_id} is not known (update does not create)")
        access.check("u", resource_type, resource=stored)  # may change what is there ...
        access.check("u", resource_type, resource=resource)  # ... into what is sent
        version = int(stored["meta"]["versionId"])
        if if_match is not None and if_match.strip() not in (f'W/"{version}"', f'"{version}"'):
            raise FhirError(412, f"version conflict: the current version is {version}")
        await self._patient_exists(resource)
        updated = await self.store.update(resource, version)
        if updated is None:
            raise FhirError(409, "the resource changed meanwhile; read it and try again")
        return fhir_response(updated, 200, _version_headers(updated))
