"""Issue 9 item 9: the sample SMART app (examples/smart_app.py) starts with one command and completes an
EHR launch against a real `ostiary serve`: launch URL -> authorize -> sign in -> consent -> patient shown."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e._server import ServerProcess, free_port, poll, start_server

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "sample-app-registration-token"
PASSWORD = "a long password for dr chen"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = start_server(tmp_path_factory.mktemp("sample-app"), env={"OSTIARY_REGISTRATION_TOKEN": TOKEN})
    try:
        yield proc
    finally:
        proc.stop()


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, page[:1000]
    return found.group(1)


def test_issue9_9_sample_smart_app_completes_an_ehr_launch(server: ServerProcess) -> None:
    port = free_port()
    app_base = f"http://localhost:{port}"
    with server.http() as http:
        reg = http.post("/register", headers={"Authorization": f"Bearer {TOKEN}"}, json={
            "client_name": "Sample app", "redirect_uris": [app_base + "/callback"],
            "initiate_login_uri": app_base + "/launch", "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code"], "scope": "launch openid fhirUser patient/*.rs"})
        assert reg.status_code == 201, reg.text
    app_id = reg.json()["client_id"]
    server.cli("user", "create", "dr-chen", "--password-stdin", input=PASSWORD + "\n")
    # issue 8: clinical access is an access fact; the launch's patient must be one dr-chen may see
    server.cli("user", "access", "dr-chen", "--fhir-user", "Practitioner/prac-02", "--patient", "pat-001")
    ehr = json.loads(server.cli("client", "create", "EHR", "--client-id", "ehr", "--scope", "ehr:launch",
                                "--json").stdout)
    app = subprocess.Popen([sys.executable, str(ROOT / "examples" / "smart_app.py"), "--client-id", app_id,
                            "--port", str(port), "--fhir", server.issuer + "/fhir"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        with httpx.Client(timeout=10) as b:
            poll(lambda: _answers(b, app_base), timeout=60, what="the sample app")  # slow on a loaded machine
            ehr_token = b.post(server.base_url + "/token", auth=("ehr", ehr["client_secret"]), data={
                "grant_type": "client_credentials", "scope": "ehr:launch"}).json()["access_token"]
            launch = b.post(server.base_url + "/smart/launch", headers={"Authorization": f"Bearer {ehr_token}"},
                            json={"patient": "pat-001", "client_id": app_id}).json()["launch"]
            r = b.get(f"{app_base}/launch", params={"iss": server.issuer + "/fhir", "launch": launch})
            for _ in range(10):  # the browser's part: follow redirects, sign in, allow
                if r.status_code in (302, 303):
                    location = r.headers["location"]
                    r = b.get(location if "://" in location else server.base_url + location)
                elif 'name="password"' in r.text:
                    r = b.post(str(r.url) + "/login", data={"csrf_token": _csrf(r.text), "username": "dr-chen",
                                                            "password": PASSWORD})
                elif 'name="decision" value="approve"' in r.text:
                    r = b.post(str(r.url) + "/consent", data={"csrf_token": _csrf(r.text), "decision": "approve"})
                else:
                    break
        assert r.status_code == 200 and "Patient: " in r.text and "pat-001" in r.text, r.text[:2000]
    finally:
        app.terminate()
        app.wait(10)


def _answers(client: httpx.Client, base: str) -> bool:
    try:
        return client.get(base + "/nothing").status_code == 404
    except httpx.HTTPError:
        return False
