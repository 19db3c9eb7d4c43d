"""Issue 9 item 11: consent in an EHR launch names the patient and says "this patient's", not "your"."""

from __future__ import annotations

import html
import secrets

import pytest

from tests.conftest import RunningApp
from tests.protocol._oidc_flow import PASSWORD, REDIRECT, browser, csrf_of, pkce
from tests.protocol._smart import (
    FHIR,
    create_launch,
    ehr_token,
    load_data,
    patient_name,
    patient_user,
    practitioner,
    smart_app,
)

SCOPE = "openid fhirUser launch patient/*.rs"


@pytest.fixture(scope="module", autouse=True)
async def sample(running: RunningApp) -> None:
    await load_data(running)


async def _consent_page(running: RunningApp, user: object, patient: str) -> str:
    token = await ehr_token(running)
    app = await smart_app(running, scope="patient/*.rs launch")
    launch = await create_launch(running, token, client_id=app[0], patient=patient)
    _, challenge = pkce()
    query = {"client_id": app[0], "redirect_uri": REDIRECT, "response_type": "code", "scope": SCOPE,
             "state": secrets.token_urlsafe(8), "code_challenge": challenge, "code_challenge_method": "S256",
             "aud": FHIR, "launch": launch}
    async with browser(running) as b:
        r = await b.get("/authorize", params=query)
        for _ in range(6):
            if r.status_code == 303:
                r = await b.get(r.headers["location"])
            elif 'name="password"' in r.text:
                r = await b.post(str(r.url.path) + "/login", data={"csrf_token": csrf_of(r.text),
                                                                    "username": user.username,  # type: ignore[attr-defined]
                                                                    "password": PASSWORD})
            else:
                break
    assert 'name="decision" value="approve"' in r.text, r.text[:1000]
    return html.unescape(r.text)


async def test_issue9_11_ehr_launch_consent_names_the_patient_and_their_records(running: RunningApp) -> None:
    """A clinician consenting must see whose records the app gets, not read "your" records."""
    page = await _consent_page(running, await practitioner(running), "pat-002")
    assert f"For the patient {patient_name('pat-002')}" in page.replace("<strong>", "").replace("</strong>", "")
    assert "this patient's health records" in page and "your health records" not in page


async def test_issue9_11_a_patient_consenting_for_their_own_record_reads_your(running: RunningApp) -> None:
    page = await _consent_page(running, await patient_user(running, "pat-003"), "pat-003")
    assert 'id="patient-context"' not in page and "your health records" in page
