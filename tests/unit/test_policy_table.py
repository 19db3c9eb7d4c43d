"""The authorization policy as one table: trust level x grant type x scope -> granted (docs/security.md).

Written out by hand from the documented rules, not computed from the code under test."""

from __future__ import annotations

import pytest

from ostiary.config import RegistrationSettings
from ostiary.server.policy.clients import ClientRules, SelfServiceApi
from ostiary.store import Client

AC, RT, CC = "authorization_code", "refresh_token", "client_credentials"
RULES = ClientRules.from_settings(RegistrationSettings(api_scopes=("api:read",)),
                                  [SelfServiceApi("https://api.example", ("api:read",))])

# scope -> trust level -> the grant types through which a confidential private_key_jwt client gets it
GRANTED: dict[str, dict[str, set[str]]] = {
    "system/*.rs": {"admin": {CC}, "registrant": set(), "open": set(), "portal": set()},
    "system/Patient.cruds": {"admin": {CC}, "registrant": set(), "open": set(), "portal": set()},
    "patient/*.rs": {"admin": {AC, RT}, "registrant": {AC, RT}, "open": {AC, RT}, "portal": set()},
    "patient/Observation.cruds": {"admin": {AC, RT}, "registrant": {AC, RT}, "open": set(), "portal": set()},
    "user/*.rs": {"admin": {AC, RT}, "registrant": set(), "open": set(), "portal": set()},
    "user/*.cruds": {"admin": {AC, RT}, "registrant": set(), "open": set(), "portal": set()},
    # identity, launch and refresh scopes: the user consents; the level does not limit them (OIDC Core §5.4)
    "openid": {"admin": {AC, RT, CC}, "registrant": {AC, RT, CC}, "open": {AC, RT}, "portal": {AC, RT, CC}},
    "profile": {"admin": {AC, RT}, "registrant": {AC, RT}, "open": {AC, RT}, "portal": {AC, RT}},
    "fhirUser": {"admin": {AC, RT}, "registrant": {AC, RT}, "open": {AC, RT}, "portal": {AC, RT}},
    "launch": {"admin": {AC, RT}, "registrant": {AC, RT}, "open": {AC, RT}, "portal": {AC, RT}},
    "launch/patient": {"admin": {AC, RT}, "registrant": {AC, RT}, "open": {AC, RT}, "portal": {AC, RT}},
    "offline_access": {"admin": {AC, RT}, "registrant": {AC, RT}, "open": {AC, RT}, "portal": {AC, RT}},
    "ehr:launch": {"admin": {AC, RT, CC}, "registrant": set(), "open": set(), "portal": set()},
    "api:read": {"admin": {AC, RT, CC}, "registrant": {AC, RT, CC}, "open": set(), "portal": {AC, RT, CC}},
    "api:write": {"admin": {AC, RT, CC}, "registrant": set(), "open": set(), "portal": set()},
}
ROWS = [(level, grant, scope, grant in levels[level])
        for scope, levels in GRANTED.items() for level in levels for grant in (AC, RT, CC)]


@pytest.mark.parametrize(("level", "grant_type", "scope", "granted"), ROWS)
def test_policy_table_trust_level_grant_type_scope(level, grant_type, scope, granted):
    client = Client("c", trust_level=level, token_endpoint_auth_method="private_key_jwt")
    assert (RULES.refusal(client, scope, grant_type) is None) is granted


@pytest.mark.parametrize(("method", "with_secret", "granted"), [
    ("private_key_jwt", False, True), ("client_secret_basic", False, False), ("client_secret_jwt", False, False),
    ("client_secret_basic", True, True), ("none", True, False),
])
def test_policy_table_system_scopes_by_client_authentication(method, with_secret, granted):
    client = Client("c", token_endpoint_auth_method=method, system_scopes_with_secret=with_secret)
    assert (RULES.refusal(client, "system/*.rs", CC) is None) is granted
