"""Issue 4: the guard and the client toolkit against Ostiary itself (a real `ostiary serve`), the
other half of 'tokens from Ostiary and from a second, independent issuer' (the test issuer of
tests/unit/_guard_helpers.py is the independent one)."""

from __future__ import annotations

from contextlib import closing

import pytest

from ostiary.client import ClientCredentials
from ostiary.client.auth_methods import ClientSecretBasic
from ostiary.client.secret import Secret
from ostiary.resource.errors import InvalidToken
from ostiary.resource.introspection import Introspection
from ostiary.resource.verifier import TokenVerifier

from .conftest import create_with_cli

pytestmark = pytest.mark.interop

API = "https://notes.api.example"


@pytest.fixture(scope="module")
def service(es256_server):
    """A service allowed to call the notes API (RFC 8707 audience), with JWT and with opaque tokens."""
    jwt_client = create_with_cli(es256_server, "notes caller", "--scope", "notes:read", "--audience", API)
    opaque_client = create_with_cli(es256_server, "notes caller (opaque)", "--scope", "notes:read",
                                    "--audience", API, "--token-format", "opaque")
    return jwt_client, opaque_client


def _source(server, created, **kwargs) -> ClientCredentials:
    auth = ClientSecretBasic(created["client_id"], Secret(created["client_secret"]))
    return ClientCredentials(auth, issuer=server.issuer, scope="notes:read", resource=API, **kwargs)


def test_rfc9068_guard_verifies_a_jwt_from_ostiary_found_by_discovery(es256_server, service):
    jwt_client, _ = service
    with closing(_source(es256_server, jwt_client)) as source:
        token = source.get_token().access_token
    principal = TokenVerifier(es256_server.issuer, API).verify(token)
    assert principal.client_id == jwt_client["client_id"] and "notes:read" in principal.scopes
    assert principal.claims["aud"] == API


def test_rfc9068_4_guard_refuses_an_ostiary_token_for_another_audience(es256_server, service):
    jwt_client, _ = service
    with closing(_source(es256_server, jwt_client)) as source:
        token = source.get_token().access_token
    with pytest.raises(InvalidToken):
        TokenVerifier(es256_server.issuer, "https://other.api.example").verify(token)


def test_rfc7662_guard_introspects_an_opaque_ostiary_token_and_sees_its_revocation(es256_server, service):
    _, opaque_client = service
    with closing(_source(es256_server, opaque_client)) as source:
        token = source.get_token().access_token
    assert token.count(".") != 2  # opaque: only introspection can read it
    # the notes API registered as docs/resource-server.md says: a resource server for its audience
    api = create_with_cli(es256_server, "notes API", "--resource-server", "--audience", API)
    rs_auth = ClientSecretBasic(api["client_id"], Secret(api["client_secret"]))
    verifier = TokenVerifier(es256_server.issuer, API,
                             introspection=Introspection(rs_auth, max_cache_ttl=0, negative_cache_ttl=0))
    assert verifier.verify(token).client_id == opaque_client["client_id"]
    with es256_server.http() as http:
        r = http.post("/revoke", data={"token": token},
                      auth=(opaque_client["client_id"], opaque_client["client_secret"]))
        assert r.status_code == 200
    with pytest.raises(InvalidToken):
        verifier.verify(token)
