"""The CapabilityStatement (GET /metadata), with the SMART security extension (App Launch 2.2 §conformance)."""

from __future__ import annotations

from typing import Any

from .. import __version__
from .search import SEARCH_PARAMS

__all__ = ["INTERACTIONS", "RESOURCE_TYPES", "capability_statement"]

RESOURCE_TYPES: tuple[str, ...] = tuple(SEARCH_PARAMS)
INTERACTIONS = ("read", "search-type", "create", "update")
OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
SECURITY_SERVICE = "http://terminology.hl7.org/CodeSystem/restful-security-service"


def capability_statement(base_url: str, authorize_url: str, token_url: str, date: str) -> dict[str, Any]:
    resources = [
        {
            "type": resource_type,
            "interaction": [{"code": code} for code in INTERACTIONS],
            "versioning": "versioned-update",
            "readHistory": False,
            "updateCreate": False,
            "searchParam": [{"name": name, "type": kind} for name, (kind, _paths) in params.items()],
        }
        for resource_type, params in SEARCH_PARAMS.items()
    ]
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": date,
        "kind": "instance",
        "software": {"name": "Ostiary", "version": __version__},
        "implementation": {"description": "Ostiary SMART on FHIR API", "url": base_url},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "rest": [{
            "mode": "server",
            "security": {
                "cors": True,
                "service": [{
                    "coding": [{"system": SECURITY_SERVICE, "code": "SMART-on-FHIR", "display": "SMART-on-FHIR"}],
                    "text": "OAuth2 using SMART-on-FHIR profile (see https://hl7.org/fhir/smart-app-launch/)",
                }],
                "extension": [{
                    "url": OAUTH_URIS,
                    "extension": [
                        {"url": "token", "valueUri": token_url},
                        {"url": "authorize", "valueUri": authorize_url},
                    ],
                }],
            },
            "resource": resources,
        }],
    }
