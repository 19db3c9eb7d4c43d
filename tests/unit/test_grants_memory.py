"""The grants of the token endpoint (server/grants/) as units, over the in-memory store: no HTTP, no
database. Each test names its rule and the attack it stops; races run 50 redemptions at once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from ostiary.app.bootstrap import bootstrap
from ostiary.app.provider import Provider, open_provider
from ostiary.config import SmartSettings
from ostiary.errors import InvalidGrant, InvalidRequest, InvalidScope, InvalidTarget
from ostiary.server.credentials import digest, new_token
from ostiary.server.grants.authorization_code import s256
from ostiary.server.requests import EndpointRequest
from ostiary.server.user_tokens import GrantFacts
from ostiary.store import Client
from ostiary.store.grants import AuthorizationCode
from ostiary.store.identity import User
from ostiary.store.memory import MemoryDatabase
from tests.conftest import settings_for

REDIRECT = "https://rp.example/cb"
VERIFIER = "v" * 43
RACERS = 50


@pytest.fixture(scope="module")
async def provider() -> AsyncIterator[Provider]:
    p = await open_provider(settings_for("memory:", smart=SmartSettings(enabled=False)))
    await bootstrap(p)
    assert isinstance(p.database, MemoryDatabase)
    try:
        yield p
    finally:
        await p.aclose()


async def new_client(p: Provider, **fields: Any) -> Client:
    fields.setdefault("grant_types", ("authorization_code", "refresh_token"))
    client = Client(client_id=new_token(8), redirect_uris=(REDIRECT,), scope="openid profile offline_access api:read",
                    audiences=("https://api.example.com",), **fields)
    await p.clients.create(client)
    return client


async def new_code(p: Provider, client: Client, *, scope: str = "openid offline_access", lifetime: int = 60) -> str:
    user = User(id=new_token(8), username=new_token(8), claims={"name": "Ada"})
    await p.users.create(user)
    now = int(time.time())
    facts = GrantFacts(user_id=user.id, scope=tuple(scope.split()), grant_id=new_token(16), auth_time=now,
                       expires_at=now + 3600, amr=("pwd",))
    code = new_token(32)
    await p.stores.codes.save(AuthorizationCode(
        digest=digest(code), client_id=client.client_id, grant_id=facts.grant_id, expires_at=now + lifetime,
        data={"redirect_uri": REDIRECT, "redirect_uri_given": True, "code_challenge": s256(VERIFIER),
              "nonce": "n-1", "facts": facts.to_dict()}))
    return code


def form(**fields: str) -> EndpointRequest:
    return EndpointRequest(endpoint_url="http://127.0.0.1:8000/token", form=fields)


def code_form(code: str, **changes: str) -> EndpointRequest:
    fields = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": VERIFIER}
    fields.update(changes)
    return form(**fields)


async def redeem(p: Provider, client: Client, code: str, **changes: str) -> dict[str, Any]:
    return await p.grants["authorization_code"].handle(code_form(code, **changes), client)


async def refresh(p: Provider, client: Client, token: str, **extra: str) -> dict[str, Any]:
    return await p.grants["refresh_token"].handle(form(grant_type="refresh_token", refresh_token=token, **extra),
                                                  client)


# -- authorization_code (RFC 6749 §4.1.3, RFC 7636 §4.6) -------------------------------------------


async def test_rfc6749_4_1_3_code_gives_tokens(provider: Provider) -> None:
    client = await new_client(provider)
    body = await redeem(provider, client, await new_code(provider, client))
    assert body["token_type"] == "Bearer" and body["scope"] == "openid offline_access"
    assert {"access_token", "refresh_token", "id_token"} <= body.keys()


async def test_rfc6749_4_1_2_replayed_code_revokes_what_it_gave(provider: Provider) -> None:
    client = await new_client(provider)
    code = await new_code(provider, client)
    first = await redeem(provider, client, code)
    with pytest.raises(InvalidGrant, match="already been used"):
        await redeem(provider, client, code)  # the attacker's replay
    found = await provider.tokens.find(digest(first["refresh_token"]))
    assert found is not None and found.revoked  # the first redemption's tokens died with it
    with pytest.raises(InvalidGrant):
        await refresh(provider, client, first["refresh_token"])


async def test_code_redeemed_at_once_gives_exactly_one_token_response(provider: Provider) -> None:
    client = await new_client(provider)
    code = await new_code(provider, client)
    results = await asyncio.gather(*(redeem(provider, client, code) for _ in range(RACERS)), return_exceptions=True)
    winners = [r for r in results if isinstance(r, dict)]
    assert len(winners) == 1
    assert all(isinstance(r, InvalidGrant) for r in results if not isinstance(r, dict))  # 4xx, never a 5xx


@pytest.mark.parametrize(("attack", "changes", "error"), [
    ("another client", {}, "issued to another client"),
    ("no verifier", {"code_verifier": ""}, "code_verifier is required"),
    ("wrong verifier", {"code_verifier": "w" * 43}, "does not match the code_challenge"),
    ("other redirect_uri", {"redirect_uri": "https://evil.example/cb"}, "redirect_uri does not match"),
])
async def test_a_refused_redemption_does_not_burn_the_code(provider: Provider, attack: str, changes: dict[str, str],
                                                            error: str) -> None:
    client = await new_client(provider)
    code = await new_code(provider, client)
    presenter = await new_client(provider) if attack == "another client" else client
    request = code_form(code, **changes)
    if request.form.get("code_verifier") == "":
        request = form(**{k: v for k, v in request.form.items() if k != "code_verifier"})
    with pytest.raises(InvalidGrant, match=error):
        await provider.grants["authorization_code"].handle(request, presenter)
    assert "access_token" in await redeem(provider, client, code)  # the real client still gets its tokens


async def test_expired_or_unknown_code_is_invalid_grant(provider: Provider) -> None:
    client = await new_client(provider)
    expired = await new_code(provider, client, lifetime=0)
    for code in (expired, new_token(32)):
        with pytest.raises(InvalidGrant, match="invalid or has expired"):
            await redeem(provider, client, code)
    with pytest.raises(InvalidRequest):
        await provider.grants["authorization_code"].handle(form(grant_type="authorization_code"), client)


# -- refresh_token (RFC 6749 §6, RFC 9700 §4.14.2) ----------------------------------------------------


async def test_rfc9700_4_14_2_rotation_and_reuse_revokes_the_family(provider: Provider) -> None:
    client = await new_client(provider, token_endpoint_auth_method="none")  # public: always rotated
    first = await redeem(provider, client, await new_code(provider, client))
    second = await refresh(provider, client, first["refresh_token"])
    assert second["refresh_token"] != first["refresh_token"]
    with pytest.raises(InvalidGrant, match="already used"):
        await refresh(provider, client, first["refresh_token"])  # the stolen, older token
    with pytest.raises(InvalidGrant):
        await refresh(provider, client, second["refresh_token"])  # the legitimate successor died too


async def test_refresh_at_once_gives_exactly_one_successor(provider: Provider) -> None:
    client = await new_client(provider, token_endpoint_auth_method="none")
    token = (await redeem(provider, client, await new_code(provider, client)))["refresh_token"]
    results = await asyncio.gather(*(refresh(provider, client, token) for _ in range(RACERS)), return_exceptions=True)
    assert len([r for r in results if isinstance(r, dict)]) == 1
    assert all(isinstance(r, InvalidGrant) for r in results if not isinstance(r, dict))


async def test_rfc6749_6_refresh_may_narrow_never_widen_and_a_refusal_burns_nothing(provider: Provider) -> None:
    client = await new_client(provider, token_endpoint_auth_method="none")
    token = (await redeem(provider, client, await new_code(provider, client)))["refresh_token"]
    with pytest.raises(InvalidScope):
        await refresh(provider, client, token, scope="openid offline_access profile")
    narrowed = await refresh(provider, client, token, scope="openid")
    assert narrowed["scope"] == "openid"


async def test_another_clients_refresh_token_is_invalid(provider: Provider) -> None:
    owner, thief = await new_client(provider), await new_client(provider)
    token = (await redeem(provider, owner, await new_code(provider, owner)))["refresh_token"]
    with pytest.raises(InvalidGrant, match="invalid"):
        await refresh(provider, thief, token)
    assert "access_token" in await refresh(provider, owner, token)  # not burned by the thief


# -- client_credentials (RFC 6749 §4.4, RFC 8707) ---------------------------------------------------


async def service_client(p: Provider) -> Client:
    return await new_client(p, grant_types=("client_credentials",), token_endpoint_auth_method="client_secret_basic")


async def test_rfc6749_4_4_client_credentials_grants_what_was_asked_and_allowed(provider: Provider) -> None:
    client = await service_client(provider)
    grant = provider.grants["client_credentials"]
    body = await grant.handle(form(grant_type="client_credentials", scope="api:read"), client)
    assert body["scope"] == "api:read" and body["token_type"] == "Bearer"
    with pytest.raises(InvalidScope):
        await grant.handle(form(grant_type="client_credentials", scope="api:write"), client)  # not registered


async def test_rfc8707_2_resource_must_be_registered_for_the_client(provider: Provider) -> None:
    client = await service_client(provider)
    grant = provider.grants["client_credentials"]
    ok = EndpointRequest(endpoint_url="t", form={"grant_type": "client_credentials"},
                         repeated={"resource": ("https://api.example.com",)})
    assert "access_token" in await grant.handle(ok, client)
    for resource in ("https://evil.example", "not a uri", "https://api.example.com#frag"):
        bad = EndpointRequest(endpoint_url="t", form={"grant_type": "client_credentials"},
                              repeated={"resource": (resource,)})
        with pytest.raises(InvalidTarget):
            await grant.handle(bad, client)
