"""The SMART on FHIR Python client (`fhirclient`, SMART Health IT) against `ostiary serve`.

Standalone launch: fhirclient reads the CapabilityStatement's oauth-uris, builds the authorization URL
(launch/patient, aud, PKCE S256); Chromium logs in, consents and picks the patient; fhirclient handles
the callback and reads the patient with its R4 models. Backend Services: a hand-built RS384 client
assertion (joserfc) for client_credentials with system/*.rs, given to fhirclient as `jwt_token`.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from tests.browser._helpers import MISSING, callback_server, decide_consent, launch, log_in, new_page
from tests.e2e._server import OSTIARY, ServerProcess, clean_env, free_port, start_server
from tests.interop.conftest import REGISTRATION_TOKEN

fhirclient = pytest.importorskip("fhirclient")
from fhirclient import client as smart_client  # noqa: E402
from fhirclient.models.observation import Observation  # noqa: E402
from fhirclient.models.patient import Patient  # noqa: E402

pytestmark = pytest.mark.interop

USERNAME, PASSWORD = "dr-chen", "correct horse battery staple"


GATEWAY_PORT = free_port()  # the FHIR gateway's port, registered with the server as a FHIR base (aud)
GATEWAY = f"http://127.0.0.1:{GATEWAY_PORT}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = start_server(tmp_path_factory.mktemp("interop-smart"), "--no-demo",
                       env={"OSTIARY_SMART__SAMPLE_DATA": "true", "OSTIARY_REGISTRATION_TOKEN": REGISTRATION_TOKEN,
                            "OSTIARY_SMART__FHIR_BASES": GATEWAY})
    try:
        srv.cli("user", "create", USERNAME, "--password-stdin", "--name", "John Chen",
                "--database-url", srv.database_url, input=PASSWORD + "\n")
        srv.cli("user", "access", USERNAME, "--fhir-user", "Practitioner/prac-02", "--all-patients",
                "--database-url", srv.database_url)
        yield srv
    finally:
        srv.stop()


def register(server: ServerProcess, **metadata: Any) -> dict[str, Any]:
    with server.http() as http:
        r = http.post("/register", json=metadata, headers={"Authorization": f"Bearer {REGISTRATION_TOKEN}"})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def _sign_in_and_pick(url: str, patient: str, callback_base: str) -> str:
    """Chromium: sign in, consent, pick `patient`; the callback URL the browser lands on."""
    with launch() as browser:
        page = new_page(browser)
        page.goto(url)
        log_in(page, USERNAME, PASSWORD)
        page.wait_for_selector("button[name=decision][value=approve]")
        decide_consent(page)
        page.wait_for_selector("#q")
        page.check(f"input[name=patient][value={patient}]")
        page.click("button.primary")
        page.wait_for_url(callback_base + "/**")
        redirect = page.url
        page.context.close()
    return redirect


@pytest.fixture(scope="module")
def gateway(server: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`ostiary fhir-gateway` in front of a small upstream FHIR server (uvicorn, in this process)."""
    import uvicorn

    from tests.protocol.test_fhir_gateway import UPSTREAM_TOKEN, upstream_app

    port = free_port()
    upstream = f"http://127.0.0.1:{port}/fhir"
    config = uvicorn.Config(upstream_app(tmp_path_factory.mktemp("upstream") / "fhir.db", upstream),
                            host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    up = uvicorn.Server(config)
    thread = threading.Thread(target=up.run, daemon=True)
    thread.start()
    proc = subprocess.Popen(
        [OSTIARY, "fhir-gateway", "--upstream", upstream, "--issuer", server.issuer, "--port", str(GATEWAY_PORT),
         "--upstream-token", UPSTREAM_TOKEN], env=clean_env({}), stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                if up.started and httpx.get(GATEWAY + "/metadata", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        else:
            raise AssertionError("the gateway did not start")
        yield GATEWAY
    finally:
        proc.terminate()
        proc.wait(10)
        up.should_exit = True
        thread.join(10)


@pytest.mark.skipif(MISSING is not None, reason=f"needs Chromium: {MISSING}")
def test_fhirclient_standalone_launch_through_the_fhir_gateway(server: ServerProcess, gateway: str) -> None:
    """Issue 8 item 7: the gateway's /metadata names this server; aud is the gateway; paging stays on it."""
    with callback_server() as callback:
        app = register(server, client_name="fhirclient via gateway", grant_types=["authorization_code"],
                       redirect_uris=[callback.redirect_uri], scope="openid fhirUser launch/patient patient/*.rs",
                       token_endpoint_auth_method="none")
        client = smart_client.FHIRClient(settings={"app_id": app["client_id"], "api_base": gateway,
                                                   "redirect_uri": callback.redirect_uri,
                                                   "scope": "openid fhirUser patient/*.rs"})
        url = client.authorize_url  # the gateway's /metadata: oauth-uris of this server
        assert url.startswith(server.issuer + "/authorize?") and "aud=" + quote(gateway, safe="") in url
        client.handle_callback(_sign_in_and_pick(url, "pat-002", callback.base_url))
    assert client.patient_id == "pat-002" and client.ready
    patient = Patient.read("pat-002", client.server)
    assert patient.id == "pat-002" and patient.name[0].family
    with pytest.raises(Exception, match="403"):
        Patient.read("pat-003", client.server)
    search = Observation.where(struct={"patient": "pat-002", "_count": "5"})
    observations = list(search.perform_resources_iter(client.server))  # follows next links: via the gateway
    assert len(observations) > 5 and all(o.subject.reference == "Patient/pat-002" for o in observations)
    bundles = list(search.perform_iter(client.server))
    assert len(bundles) > 1 and all(link.url.startswith(gateway + "/") for b in bundles for link in b.link or [])


@pytest.mark.skipif(MISSING is not None, reason=f"needs Chromium: {MISSING}")
@pytest.mark.parametrize("kind", ["public", "confidential"])
def test_fhirclient_standalone_launch_picks_patient_and_reads_it(server: ServerProcess, kind: str) -> None:
    fhir_base = server.issuer + "/fhir"
    with callback_server() as callback:
        app = register(server, client_name=f"fhirclient {kind}", grant_types=["authorization_code"],
                       redirect_uris=[callback.redirect_uri], scope="openid fhirUser launch/patient patient/*.rs",
                       token_endpoint_auth_method="none" if kind == "public" else "client_secret_basic")
        settings = {"app_id": app["client_id"], "api_base": fhir_base, "redirect_uri": callback.redirect_uri,
                    "scope": "openid fhirUser patient/*.rs"}
        if kind == "confidential":
            settings["app_secret"] = app["client_secret"]
        client = smart_client.FHIRClient(settings=settings)
        url = client.authorize_url  # reads /fhir/metadata: the SMART oauth-uris extension
        assert url.startswith(server.issuer + "/authorize?")
        assert "code_challenge_method=S256" in url and "launch%2Fpatient" in url
        client.handle_callback(_sign_in_and_pick(url, "pat-001", callback.base_url))
    assert client.patient_id == "pat-001" and client.ready
    assert client.launch_context["need_patient_banner"] is True
    patient = Patient.read(client.patient_id, client.server)
    assert patient.id == "pat-001" and patient.name[0].family
    assert client.human_name(patient.name[0])
    observations = list(Observation.where(struct={"patient": "pat-001"}).perform_resources_iter(client.server))
    assert observations and all(o.subject.reference == "Patient/pat-001" for o in observations)


def _assertion(key: RSAKey, client_id: str, audience: str) -> str:
    now = int(time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": audience, "jti": uuid.uuid4().hex, "iat": now,
              "exp": now + 300}
    return jwt.encode({"alg": "RS384", "kid": key.kid, "typ": "JWT"}, claims, key, algorithms=["RS384"])


def test_fhirclient_backend_services_rs384_assertion_reads_data(server: ServerProcess) -> None:
    fhir_base = server.issuer + "/fhir"
    key = RSAKey.generate_key(2048, private=True, auto_kid=True)
    # system/ scopes are never self-registered (docs/smart.md): the operator creates the backend client.
    jwks_file = server.workdir / "nightly-export-jwks.json"
    jwks_file.write_text(json.dumps({"keys": [{**key.as_dict(private=False), "alg": "RS384", "use": "sig"}]}))
    out = server.cli("client", "create", "Nightly export", "--auth-method", "private_key_jwt", "--signing-alg",
                     "RS384", "--jwks-file", str(jwks_file), "--scope", "system/*.rs", "--json",
                     "--database-url", server.database_url)
    backend = json.loads(out.stdout)
    with server.http() as http:
        token_endpoint = http.get("/fhir/.well-known/smart-configuration").json()["token_endpoint"]
    client = smart_client.FHIRClient(settings={
        "app_id": backend["client_id"], "api_base": fhir_base, "scope": "system/*.rs",
        "jwt_token": _assertion(key, backend["client_id"], token_endpoint)})
    client.wants_patient = False  # no launch/patient: a backend service has no user and no patient picker
    client.prepare()  # reads the CapabilityStatement: the token URL
    client.authorize()  # client_credentials with the client assertion
    assert client.ready and client.launch_context["scope"] == "system/*.rs"
    assert int(client.launch_context.get("expires_in", 0) or 0) <= 300
    patients = list(Patient.where(struct={"_count": "50"}).perform_resources_iter(client.server))
    assert len(patients) == 30
    patient = Patient.read("pat-017", client.server)
    assert patient.id == "pat-017"
    # the assertion is single-use (RFC 7523 §3 jti): the same one again is refused
    with pytest.raises(Exception, match="400"):
        client.authorize()
