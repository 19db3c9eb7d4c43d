"""Authlib's OAuth 2.0 clients (httpx and requests integrations) against a real server."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from authlib.integrations.httpx_client import AsyncOAuth2Client, OAuth2Client
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7523 import ClientSecretJWT, PrivateKeyJWT
from joserfc.jwk import ECKey

from tests.e2e._server import ServerProcess, jwks_verify
from tests.interop.conftest import Clients, register

pytestmark = [pytest.mark.interop]


def endpoints(server: ServerProcess) -> dict[str, Any]:
    with server.http() as http:
        meta: dict[str, Any] = http.get("/.well-known/oauth-authorization-server").json()
    return meta


def check_token(server: ServerProcess, token: dict[str, Any], scope: str) -> None:
    assert token["token_type"].lower() == "bearer"
    assert token["scope"] == scope
    assert token["expires_at"] > token["expires_in"]  # Authlib computed an absolute expiry
    with server.http() as http:
        jwks_verify(token["access_token"], http.get("/jwks").json(), issuer=server.issuer, audience=server.issuer)


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_fetch_token_with_client_secret(es256_server: ServerProcess, clients: Clients, method: str) -> None:
    c = clients.basic if method == "client_secret_basic" else clients.post
    meta = endpoints(es256_server)
    with OAuth2Client(c.client_id, c.client_secret, token_endpoint_auth_method=method, scope="api:read",
                      timeout=10) as client:
        token = client.fetch_token(meta["token_endpoint"], grant_type="client_credentials")
    check_token(es256_server, token, "api:read")


def test_fetch_token_with_private_key_jwt(es256_server: ServerProcess, clients: Clients) -> None:
    c = clients.private_key_jwt
    assert c.private_jwk is not None
    meta = endpoints(es256_server)
    key = ECKey.import_key(c.private_jwk)
    auth = PrivateKeyJWT(meta["token_endpoint"], alg="ES256", headers={"kid": key.kid})
    with OAuth2Client(c.client_id, key, token_endpoint_auth_method=auth, scope="api:write", timeout=10) as client:
        token = client.fetch_token(meta["token_endpoint"], grant_type="client_credentials")
        check_token(es256_server, token, "api:write")
        # Every assertion carries a new jti, so the same client can authenticate again at once.
        again = client.fetch_token(meta["token_endpoint"], grant_type="client_credentials")
    assert again["access_token"] != token["access_token"]


def test_fetch_token_with_client_secret_jwt(es256_server: ServerProcess, clients: Clients) -> None:
    c = clients.secret_jwt
    meta = endpoints(es256_server)
    with OAuth2Session(c.client_id, c.client_secret, token_endpoint_auth_method="client_secret_jwt",
                       scope="api:read") as session:
        session.register_client_auth_method(ClientSecretJWT(meta["token_endpoint"]))
        token = session.fetch_token(meta["token_endpoint"], grant_type="client_credentials", timeout=10)
    check_token(es256_server, token, "api:read")


async def test_async_client_introspects_and_revokes(es256_server: ServerProcess, clients: Clients) -> None:
    c = clients.basic
    meta = endpoints(es256_server)
    async with AsyncOAuth2Client(c.client_id, c.client_secret, scope="api:read api:write", timeout=10,
                                 verify=es256_server.verify) as client:
        token = await client.fetch_token(meta["token_endpoint"], grant_type="client_credentials")
        access = token["access_token"]
        r = await client.introspect_token(meta["introspection_endpoint"], token=access)
        assert r.status_code == 200, r.text
        info = r.json()
        assert info["active"] is True
        assert info["client_id"] == c.client_id and info["scope"] == "api:read api:write"
        assert info["iss"] == es256_server.issuer and info["token_type"] == "Bearer"
        r = await client.revoke_token(meta["revocation_endpoint"], token=access, token_type_hint="access_token")
        assert r.status_code == 200, r.text
        r = await client.introspect_token(meta["introspection_endpoint"], token=access)
        assert r.json() == {"active": False}


def test_requests_session_introspects_with_client_secret_post(es256_server: ServerProcess, clients: Clients) -> None:
    c = clients.post
    meta = endpoints(es256_server)
    with OAuth2Session(c.client_id, c.client_secret, token_endpoint_auth_method="client_secret_post") as session:
        token = session.fetch_token(meta["token_endpoint"], grant_type="client_credentials", timeout=10)
        r = session.introspect_token(meta["introspection_endpoint"], token=token["access_token"], timeout=10)
        assert r.json()["active"] is True, r.text
        r = session.revoke_token(meta["revocation_endpoint"], token=token["access_token"], timeout=10)
        assert r.status_code == 200, r.text
        r = session.introspect_token(meta["introspection_endpoint"], token=token["access_token"], timeout=10)
        assert r.json() == {"active": False}


def test_wrong_secret_is_an_oauth_error(es256_server: ServerProcess, clients: Clients) -> None:
    from authlib.integrations.base_client import OAuthError

    meta = endpoints(es256_server)
    with OAuth2Client(clients.basic.client_id, "wrong", timeout=10) as client, pytest.raises(OAuthError) as info:
        client.fetch_token(meta["token_endpoint"], grant_type="client_credentials")
    assert info.value.error == "invalid_client"


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_rfc6749_5_2_invalid_client_status_follows_the_method(es256_server: ServerProcess, clients: Clients,
                                                              method: str) -> None:
    """Issue 9 item 1: Basic -> 401 with a Basic challenge naming the error; POST -> 400, no challenge."""
    from authlib.integrations.base_client import OAuthError

    meta = endpoints(es256_server)
    client_id = (clients.basic if method == "client_secret_basic" else clients.post).client_id
    seen: list[httpx.Response] = []
    with OAuth2Client(client_id, "wrong", token_endpoint_auth_method=method, timeout=10,
                      event_hooks={"response": [seen.append]}) as client, pytest.raises(OAuthError) as info:
        client.fetch_token(meta["token_endpoint"], grant_type="client_credentials")
    assert info.value.error == "invalid_client"
    (response,) = seen
    if method == "client_secret_basic":
        assert response.status_code == 401
        assert 'error="invalid_client"' in response.headers["www-authenticate"]
    else:
        assert response.status_code == 400 and "www-authenticate" not in response.headers


def test_private_key_jwt_with_authlib_defaults(es256_server: ServerProcess) -> None:
    """RS256 (Authlib's default alg), the key given as PEM, registered by RFC 7591 with its JWKS."""
    from joserfc.jwk import RSAKey

    key = RSAKey.generate_key(2048)
    c = register(es256_server, token_endpoint_auth_method="private_key_jwt",
                 jwks={"keys": [key.as_dict(private=False)]})
    meta = endpoints(es256_server)
    pem = key.as_pem(private=True)
    with OAuth2Client(c.client_id, pem, token_endpoint_auth_method=PrivateKeyJWT(meta["token_endpoint"]),
                      timeout=10) as client:
        token = client.fetch_token(meta["token_endpoint"], grant_type="client_credentials", scope="api:read")
    check_token(es256_server, token, "api:read")
