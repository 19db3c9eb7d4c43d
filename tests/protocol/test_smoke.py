from tests.conftest import basic


async def test_client_credentials_smoke(running):
    cid, secret = await running.add_client(scope="api:read api:write", client_name="x")
    r = await running.http.post("/token", data={"grant_type": "client_credentials", "scope": "api:read"},
                                headers=basic(cid, secret))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "Bearer"
    r = await running.http.post("/introspect", data={"token": body["access_token"]}, headers=basic(cid, secret))
    assert r.json()["active"] is True, r.text
    r = await running.http.post("/revoke", data={"token": body["access_token"]}, headers=basic(cid, secret))
    assert r.status_code == 200
    r = await running.http.post("/introspect", data={"token": body["access_token"]}, headers=basic(cid, secret))
    assert r.json() == {"active": False}
