"""The client toolkit against the server in-process (issue 9 item 5): ClientSecretJwt gets tokens."""

from __future__ import annotations

import httpx

from ostiary.client import ClientCredentials, ClientSecretJwt, Secret, TokenError
from tests.conftest import ISSUER, RunningApp


async def test_oidc_core_9_toolkit_client_secret_jwt_gets_a_token(running: RunningApp) -> None:
    cid, secret = await running.add_client(token_endpoint_auth_method="client_secret_jwt", scope="api:read")
    assert secret is not None
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=running.app), base_url=ISSUER)
    source = ClientCredentials(ClientSecretJwt(cid, Secret(secret)), issuer=ISSUER, scope="api:read",
                               async_http=http)
    token = await source.aget_token()
    assert token.scope == "api:read" and token.access_token
    # The attack it stops: an assertion MACed with a guessed secret gets nothing.
    wrong = ClientCredentials(ClientSecretJwt(cid, Secret("guessed-" + "x" * 40)), issuer=ISSUER, async_http=http)
    try:
        await wrong.aget_token()
        raise AssertionError("a wrong secret got a token")
    except TokenError as exc:
        assert exc.error == "invalid_client"
    await http.aclose()
