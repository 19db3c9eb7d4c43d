"""The developer portal (issue 10 item 8) in-process: who may register what, and whose apps they may touch.

The portal lists the gateway's self-service APIs and registers apps at the policy's *portal* trust level
(exactly those APIs' scopes and audiences); only signed-in users with the `develop` role may register, and each
sees, rotates and deletes only their own apps.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator

import httpx
import pytest

from ostiary.config import PortalSettings
from ostiary.server.credentials import digest
from ostiary.store.access import AccessFacts
from tests.conftest import ISSUER, RunningApp, basic, settings_for, start_app
from tests.e2e.gateway_fixtures import NOTES, notes_routes
from tests.protocol._oidc_flow import PASSWORD, sign_in_locally

ADMIN = "https://admin.example.com"
GATEWAY = notes_routes("https://issuer.example", "http://127.0.0.1:9",
                       'self_service = true\nname = "Notes API"\ndescription = "The team\'s notes"') + f"""
[[routes]]
path = "/admin"
upstream = "http://127.0.0.1:9"
audience = "{ADMIN}"
scopes = {{ "*" = "admin:all" }}
"""


@pytest.fixture(scope="module")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """SQLite only: the portal adds no SQL of its own (the stores' contract tests cover both backends)."""
    return f"sqlite:///{tmp_path_factory.mktemp('portal-db') / 'ostiary.db'}"


@pytest.fixture(scope="module")
async def portal(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningApp]:
    path = tmp_path_factory.mktemp("portal") / "gateway.toml"
    path.write_text(GATEWAY)
    async for running in start_app(settings_for(database_url, portal=PortalSettings(gateway_config=str(path)))):
        yield running


async def signed_in(portal: RunningApp, *, developer: bool) -> httpx.AsyncClient:
    """A browser-like client of a new user, signed in on the portal (with or without the develop role)."""
    user = await portal.provider.user_service.create(f"dev-{secrets.token_hex(4)}", PASSWORD)
    if developer:
        await portal.provider.patient_access.facts.put(AccessFacts(user.id, roles=frozenset({"develop"})))
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=portal.app), base_url=ISSUER)
    page = await http.get("/developers")
    assert 'href="/signin?return_to=/developers"' in page.text  # the local sign-in, second factor included
    _, r = await sign_in_locally(http, user.username, "/developers")
    assert r.headers["location"] == "/developers", r.text
    return http


@pytest.fixture(scope="module")
async def alice(portal: RunningApp) -> httpx.AsyncClient:
    return await signed_in(portal, developer=True)


@pytest.fixture(scope="module")
async def mallory(portal: RunningApp) -> httpx.AsyncClient:
    return await signed_in(portal, developer=True)


@pytest.fixture(scope="module")
async def nobody(portal: RunningApp) -> httpx.AsyncClient:
    return await signed_in(portal, developer=False)


async def csrf_of(http: httpx.AsyncClient) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', (await http.get("/developers")).text)
    assert found
    return found.group(1)


async def register(http: httpx.AsyncClient, name: str = "My app", api: str = "0") -> httpx.Response:
    return await http.post("/developers/apps", data={"csrf_token": await csrf_of(http), "client_name": name,
                                                     "api": api})


def issued(r: httpx.Response) -> tuple[str, str]:
    cid = re.search(r'id="issued-client-id">([^<]+)<', r.text)
    secret = re.search(r'id="issued-client-secret">([^<]+)<', r.text)
    assert cid and secret, r.text
    return cid.group(1), secret.group(1)


async def test_item8_portal_lists_only_self_service_apis_to_anyone(portal: RunningApp) -> None:
    r = await portal.http.get("/developers")
    assert r.status_code == 200
    assert "Notes API" in r.text and "notes:write" in r.text and NOTES in r.text
    assert ADMIN not in r.text and "admin:all" not in r.text


async def test_item8_a_developer_app_gets_exactly_the_self_service_scopes_and_audience(
        portal: RunningApp, alice: httpx.AsyncClient) -> None:
    http = alice
    r = await register(http)
    assert r.status_code == 200, r.text
    cid, secret = issued(r)
    client = await portal.provider.clients.get(cid)
    assert client.trust_level == "portal" and set(client.scope.split()) == {"notes:read", "notes:write"}
    assert list(client.audiences) == [NOTES]
    token = await portal.http.post("/token", data={"grant_type": "client_credentials", "scope": "notes:read",
                                                   "resource": NOTES}, headers=basic(cid, secret))
    assert token.status_code == 200, token.text
    for form in ({"scope": "admin:all"}, {"scope": "notes:read", "resource": ADMIN}):  # not on the portal
        refused = await portal.http.post("/token", data={"grant_type": "client_credentials", **form},
                                         headers=basic(cid, secret))
        assert refused.status_code == 400, refused.text
    assert cid in (await http.get("/developers")).text


async def test_item8_without_the_develop_role_nothing_is_registered(portal: RunningApp,
                                                                    nobody: httpx.AsyncClient) -> None:
    http = nobody
    page = await http.get("/developers")
    assert "does not have the developer role" in page.text and 'action="/developers/apps"' not in page.text
    before = len(await portal.provider.clients.list())
    # the form's CSRF value, as if the page had offered one: only the role is missing
    csrf = portal.provider.sealer.mac("developers", digest(http.cookies["ostiary_session"]))
    r = await http.post("/developers/apps", data={"csrf_token": csrf, "client_name": "x", "api": "0"})
    assert r.status_code == 403 and "developer role" in r.text
    assert len(await portal.provider.clients.list()) == before


async def test_item8_csrf_a_forged_form_registers_nothing(alice: httpx.AsyncClient) -> None:
    r = await alice.post("/developers/apps", data={"csrf_token": "forged", "client_name": "x", "api": "0"})
    assert r.status_code == 403


async def test_item8_an_api_index_off_the_list_picks_nothing(alice: httpx.AsyncClient) -> None:
    assert (await register(alice, api="7")).status_code == 400


async def test_item8_developers_cannot_rotate_or_delete_each_others_apps(
        portal: RunningApp, alice: httpx.AsyncClient, mallory: httpx.AsyncClient) -> None:
    cid, secret = issued(await register(alice, "Alice's app"))
    assert cid not in (await mallory.get("/developers")).text
    for action in ("rotate", "delete"):
        r = await mallory.post(f"/developers/apps/{cid}/{action}", data={"csrf_token": await csrf_of(mallory)})
        assert r.status_code == 404
    assert await portal.provider.clients.get(cid) is not None
    rotated = await alice.post(f"/developers/apps/{cid}/rotate", data={"csrf_token": await csrf_of(alice)})
    assert rotated.status_code == 200 and issued(rotated)[1] != secret
    deleted = await alice.post(f"/developers/apps/{cid}/delete", data={"csrf_token": await csrf_of(alice)})
    assert deleted.status_code == 303 and await portal.provider.clients.get(cid) is None


async def test_item8_an_admin_made_client_is_never_a_portal_app(portal: RunningApp,
                                                                 alice: httpx.AsyncClient) -> None:
    admin_cid, _ = await portal.add_client(scope="notes:read")
    r = await alice.post(f"/developers/apps/{admin_cid}/delete", data={"csrf_token": await csrf_of(alice)})
    assert r.status_code == 404 and await portal.provider.clients.get(admin_cid) is not None


async def test_the_global_required_acr_guards_the_portal_too(database_url: str,
                                                              tmp_path_factory: pytest.TempPathFactory) -> None:
    """Attack (red team): with `[signin] required_acr` = multi-factor, a developer who has only a password
    (stolen, say) signed in through the local sign-in to the portal, or reused a password session of the
    account page (exempt: factors are enrolled there), and registered apps and rotated secrets. The
    portal is not where factors are enrolled: it needs the level applications need."""
    from ostiary.config import SigninSettings
    from tests.protocol._factors import FakeFactor, registered
    from tests.protocol._oidc_flow import make_user

    path = tmp_path_factory.mktemp("portal-acr") / "gateway.toml"
    path.write_text(GATEWAY)
    settings = settings_for(database_url, portal=PortalSettings(gateway_config=str(path)),
                            signin=SigninSettings(required_acr="urn:ostiary:acr:mfa"))
    async for strict in start_app(settings):
        user = await make_user(strict)
        await strict.provider.patient_access.facts.put(AccessFacts(user.id, roles=frozenset({"develop"})))
        transport = httpx.ASGITransport(app=strict.app, client=("10.9.8.7", 1234))
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
            r = await http.get("/signin", params={"return_to": "/developers"})
            assert r.status_code == 303 and r.headers["location"].startswith("/interaction/")
            interaction = r.headers["location"]
            page = await http.get(interaction)
            r = await http.post(interaction + "/login", data={"csrf_token": re.search(
                r'name="csrf_token" value="([^"]+)"', page.text).group(1), "username": user.username,  # type: ignore[union-attr]
                "password": PASSWORD})
            r = await http.get(interaction)
            assert r.status_code == 400 and "unmet_authentication_requirements" in r.text
            # a password session of the account page (exempt) does not open the portal either
            _, r = await sign_in_locally(http, user.username, "/account")
            assert r.headers["location"] == "/account"
            page = await http.get("/developers")
            assert 'href="/signin?return_to=/developers"' in page.text and "csrf_token" not in page.text
            r = await http.post("/developers/apps", data={"client_name": "x", "api": "notes"})
            assert r.status_code == 401
            # with a second factor the portal opens (step-up: only the factor is asked)
            factor = FakeFactor()
            factor.users.add(user.id)
            with registered(strict, factor):
                r = await http.get("/signin", params={"return_to": "/developers"})
                interaction = r.headers["location"]
                page = await http.get(interaction)
                assert 'name="password"' not in page.text and "/factor" in page.text
                r = await http.post(interaction + "/factor", data={"csrf_token": re.search(
                    r'name="csrf_token" value="([^"]+)"', page.text).group(1), "factor": "fake",  # type: ignore[union-attr]
                    "code": "123456"})
                r = await http.get(interaction)
                assert r.headers["location"] == "/developers"
                assert "csrf_token" in (await http.get("/developers")).text
