"""/.well-known/smart-configuration (SMART App Launch 2.2 §"SMART on FHIR configuration")."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["CAPABILITIES", "smart_configuration"]

# Only what this server really does (each one is exercised by the tests).
CAPABILITIES = (
    "launch-ehr", "launch-standalone", "authorize-post",
    "client-public", "client-confidential-symmetric", "client-confidential-asymmetric",
    "sso-openid-connect",
    "context-ehr-patient", "context-ehr-encounter", "context-standalone-patient",
    "permission-offline", "permission-online", "permission-patient", "permission-user",
    "permission-v1", "permission-v2",
)


def smart_configuration(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The SMART document, derived from the RFC 8414 metadata so the two never disagree."""
    keys = ("issuer", "jwks_uri", "authorization_endpoint", "token_endpoint", "grant_types_supported",
            "token_endpoint_auth_methods_supported", "token_endpoint_auth_signing_alg_values_supported",
            "registration_endpoint", "introspection_endpoint", "revocation_endpoint", "userinfo_endpoint",
            "response_types_supported", "code_challenge_methods_supported")
    doc = {k: metadata[k] for k in keys if k in metadata}
    doc["scopes_supported"] = [
        *metadata.get("scopes_supported", []), "fhirUser", "launch", "launch/patient", "launch/encounter",
        "online_access", "patient/*.rs", "user/*.rs", "system/*.rs", "patient/*.read", "user/*.read",
        "system/*.read", "patient/*.cruds", "user/*.cruds", "system/*.cruds",
    ]
    doc["capabilities"] = list(CAPABILITIES)
    # SMART 2.2: where a user manages the apps they authorized (the account page).
    doc["management_endpoint"] = str(metadata["issuer"]) + "/account"
    return doc
