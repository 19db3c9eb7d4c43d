"""The JWT access tokens (RFC 9068) verify with libraries we did not write: joserfc and panva's jose."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.e2e._server import ServerProcess, token_response
from tests.interop.conftest import NODE, NODE_DIR, needs_node, register, run_node

pytestmark = [pytest.mark.interop]


@pytest.fixture(scope="module", params=["ES256", "RS256"])
def signed(request: pytest.FixtureRequest) -> Iterator[tuple[str, ServerProcess, str]]:
    """(alg, server, a fresh access token signed with alg)."""
    server: ServerProcess = request.getfixturevalue(f"{request.param.lower()}_server")
    client = register(server)
    assert client.client_secret is not None
    with server.http() as http:
        r = token_response(http, client.client_id, client.client_secret, scope="api:read")
    assert r.status_code == 200, r.text
    yield request.param, server, r.json()["access_token"]


def metadata(server: ServerProcess) -> dict[str, Any]:
    with server.http() as http:
        meta: dict[str, Any] = http.get("/.well-known/oauth-authorization-server").json()
    return meta


def test_joserfc_verifies_with_the_published_jwks(signed: tuple[str, ServerProcess, str]) -> None:
    alg, server, token = signed
    meta = metadata(server)
    assert meta["access_token_signing_alg_values_supported"] == [alg]
    with server.http() as http:
        keys = KeySet.import_key_set(http.get(meta["jwks_uri"]).json())
    decoded = jwt.decode(token, keys, algorithms=[alg])
    assert decoded.header["alg"] == alg and decoded.header["typ"] == "at+jwt"
    # RFC 9068 §2.2: the required claims.
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": server.issuer}, aud={"essential": True, "value": server.issuer},
        exp={"essential": True}, iat={"essential": True}, sub={"essential": True}, jti={"essential": True},
        client_id={"essential": True},
    ).validate(decoded.claims)


@needs_node
def test_panva_jose_verifies_with_remote_jwks(signed: tuple[str, ServerProcess, str]) -> None:
    alg, server, token = signed
    meta = metadata(server)
    out = run_node("verify.mjs", {"jwksUri": meta["jwks_uri"], "token": token, "issuer": server.issuer,
                                  "audience": server.issuer, "algorithms": [alg]})
    assert out["header"]["alg"] == alg and out["header"]["typ"] == "at+jwt"
    assert out["payload"]["iss"] == server.issuer


@needs_node
def test_panva_jose_rejects_a_tampered_token(signed: tuple[str, ServerProcess, str]) -> None:
    _, server, token = signed
    head, payload, sig = token.split(".")
    middle = len(sig) // 2
    tampered = ".".join([head, payload, sig[:middle] + ("A" if sig[middle] != "A" else "B") + sig[middle + 1:]])
    meta = metadata(server)
    assert NODE is not None
    result = subprocess.run([NODE, "verify.mjs"], cwd=NODE_DIR, capture_output=True, text=True, timeout=60,
                            input=json.dumps({"jwksUri": meta["jwks_uri"], "token": tampered,
                                              "issuer": server.issuer, "audience": server.issuer}))
    assert result.returncode == 1
    assert json.loads(result.stdout)["code"] == "ERR_JWS_SIGNATURE_VERIFICATION_FAILED"
