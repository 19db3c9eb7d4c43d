"""SMART App Launch in headless Chromium against `ostiary serve` with the sample FHIR data.

EHR launch from the launcher page (/smart/launcher) into a registered app, and a standalone launch
through the patient picker; the launcher and the picker are screenshotted at 375 and 1280 px.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.browser._helpers import MISSING, check_page, decide_consent, launch, log_in, needs_browser, new_page
from tests.browser._smart_app import SmartApp, smart_app
from tests.e2e._server import ServerProcess, start_server

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = [pytest.mark.browser, needs_browser]

USERNAME, PASSWORD = "dr-alvarez", "correct horse battery staple"
PATIENT_USER, LISTED_USER, WARD_USER = "ada", "dr-bello", "dr-chen"
LISTED = tuple(f"pat-{n:03d}" for n in range(1, 28))  # more than one picker page (25)
WARD = ("pat-010", "pat-011")  # a restricted practitioner with the launch role
REGISTRATION_TOKEN = "smart-browser-initial-access-token"


@dataclass(frozen=True)
class Ehr:
    server: ServerProcess
    app: SmartApp

    @property
    def fhir_base(self) -> str:
        return self.server.issuer + "/fhir"


@pytest.fixture(scope="module")
def ehr(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ehr]:
    if MISSING is not None:
        pytest.skip(f"browser tests need Chromium: {MISSING}")
    server = start_server(tmp_path_factory.mktemp("smart-browser"), "--no-demo",
                          env={"OSTIARY_SMART__SAMPLE_DATA": "true", "OSTIARY_REGISTRATION_TOKEN": REGISTRATION_TOKEN})
    try:
        with smart_app(server.issuer + "/fhir") as app:
            server.cli("user", "create", USERNAME, "--password-stdin", "--name", "Maria Alvarez",
                       "--database-url", server.database_url, input=PASSWORD + "\n")
            server.cli("user", "access", USERNAME, "--fhir-user", "Practitioner/prac-01", "--all-patients",
                       "--role", "launch", "--database-url", server.database_url)
            # issue 8: a patient user, a practitioner with 27 listed patients and no launch role, and a
            # restricted practitioner who may launch
            for name, facts in ((PATIENT_USER, ["--fhir-user", "Patient/pat-007"]),
                                (LISTED_USER, ["--fhir-user", "Practitioner/prac-03",
                                               *(a for p in LISTED for a in ("--patient", p))]),
                                (WARD_USER, ["--fhir-user", "Practitioner/prac-04", "--role", "launch",
                                             *(a for p in WARD for a in ("--patient", p))])):
                server.cli("user", "create", name, "--password-stdin", "--database-url", server.database_url,
                           input=PASSWORD + "\n")
                server.cli("user", "access", name, *facts, "--database-url", server.database_url)
            with server.http() as http:
                r = http.post("/register", headers={"Authorization": f"Bearer {REGISTRATION_TOKEN}"}, json={
                    "client_name": "Growth Chart", "grant_types": ["authorization_code"],
                    "redirect_uris": [app.redirect_uri], "initiate_login_uri": app.launch_uri,
                    "scope": "launch launch/patient fhirUser openid patient/*.rs"})
            assert r.status_code == 201, r.text
            app.client_id, app.client_secret = r.json()["client_id"], r.json()["client_secret"]
            yield Ehr(server, app)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser(ehr: Ehr) -> Iterator[Browser]:
    with launch() as b:
        yield b


def _finish_at_app(page: Page, app: SmartApp) -> dict[str, object]:
    """Consent, then wait until the app has exchanged the code; its token response."""
    page.wait_for_selector("button[name=decision][value=approve]")
    decide_consent(page)
    page.wait_for_url(app.redirect_uri + "**")
    page.wait_for_selector("#result")
    assert app.errors == [], app.errors
    assert app.tokens, "the app received no token response"
    return app.tokens[-1]


def test_smart_ehr_launch_from_the_launcher_page(ehr: Ehr, browser: Browser) -> None:
    page = new_page(browser)
    page.goto(ehr.server.base_url + "/smart/launcher")
    log_in(page, USERNAME, PASSWORD)  # the launcher's own sign-in (the EHR user)
    page.wait_for_selector("#patient")
    page.select_option("#patient", "pat-003")
    page.click("text=Show this patient's visits")
    page.wait_for_url("**patient=pat-003")
    page.select_option("#practitioner", "prac-02")
    encounter = page.locator("#encounter option").nth(1).get_attribute("value")
    assert encounter and encounter.startswith("enc-003-")
    page.select_option("#encounter", encounter)
    page.select_option("#app", ehr.app.client_id)
    check_page(page, "launcher")
    page.click("button.primary")
    token = _finish_at_app(page, ehr.app)  # already signed in by the launcher: consent only
    assert ehr.app.launches[-1]["iss"] == ehr.fhir_base and ehr.app.launches[-1]["launch"]
    assert token["patient"] == "pat-003" and token["encounter"] == encounter
    assert token["fhirContext"] == [{"reference": "Practitioner/prac-02"}]
    assert set(str(token["scope"]).split()) == {"openid", "fhirUser", "launch", "patient/*.rs"}
    r = httpx.get(f"{ehr.fhir_base}/Encounter/{encounter}",
                  headers={"Authorization": f"Bearer {token['access_token']}"})
    assert r.status_code == 200 and r.json()["subject"]["reference"] == "Patient/pat-003"
    page.context.close()


def test_smart_standalone_launch_through_the_patient_picker(ehr: Ehr, browser: Browser) -> None:
    page = new_page(browser)
    page.goto(ehr.app.base_url + "/start")
    log_in(page, USERNAME, PASSWORD)
    page.wait_for_selector("button[name=decision][value=approve]")
    decide_consent(page)
    page.wait_for_selector("#q")
    page.fill("#q", "Patel")
    page.click("form.search button[type=submit]")
    page.wait_for_url("**q=Patel")
    names = page.locator("fieldset.choices strong").all_inner_texts()
    assert names and all("Patel" in n for n in names), names
    assert "Arun Patel" in names
    check_page(page, "patient-picker")
    page.check("input[name=patient][value=pat-004]")
    page.click("button.primary")
    page.wait_for_url(ehr.app.redirect_uri + "**")
    page.wait_for_selector("#result")
    assert ehr.app.errors == [], ehr.app.errors
    token = ehr.app.tokens[-1]
    assert token["patient"] == "pat-004" and token["need_patient_banner"] is True
    r = httpx.get(f"{ehr.fhir_base}/Patient/pat-004", headers={"Authorization": f"Bearer {token['access_token']}"})
    assert r.status_code == 200 and r.json()["id"] == "pat-004"
    page.context.close()


# -- who sees which patient (issue 8) -------------------------------------------------------------


def test_smart_patient_user_never_sees_the_picker_or_another_patient(ehr: Ehr, browser: Browser) -> None:
    page = new_page(browser)
    pickers: list[str] = []
    page.on("load", lambda p: pickers.append(p.url) if p.locator("input[name=patient]").count() else None)
    page.goto(ehr.app.base_url + "/start")
    log_in(page, PATIENT_USER, PASSWORD)
    token = _finish_at_app(page, ehr.app)  # sign-in, consent, then straight back to the app
    assert token["patient"] == "pat-007" and pickers == []
    auth = {"Authorization": f"Bearer {token['access_token']}"}
    assert httpx.get(f"{ehr.fhir_base}/Patient/pat-007", headers=auth).status_code == 200
    assert httpx.get(f"{ehr.fhir_base}/Patient/pat-008", headers=auth).status_code == 403
    page.context.close()


def test_smart_practitioner_picks_only_allowed_patients_with_paging(ehr: Ehr, browser: Browser) -> None:
    from ostiary.fhir.sample import sample_resources
    from ostiary.smart.directory import display_name

    allowed = {display_name(r) for r in sample_resources() if r["resourceType"] == "Patient" and r["id"] in LISTED}
    page = new_page(browser)
    page.goto(ehr.app.base_url + "/start")
    log_in(page, LISTED_USER, PASSWORD)
    page.wait_for_selector("button[name=decision][value=approve]")
    decide_consent(page)
    page.wait_for_selector("fieldset.choices")
    first = page.locator("fieldset.choices strong").all_inner_texts()
    assert len(first) == 25 and set(first) <= allowed
    assert page.locator("input[name=patient]:checked").count() == 0  # nothing pre-selected
    page.click("a[rel=next]")
    page.wait_for_url("**page=1**")
    rest = page.locator("fieldset.choices strong").all_inner_texts()
    assert len(rest) == 2 and set(first) | set(rest) == allowed
    page.locator("input[name=patient]").first.check()
    page.click("button.primary")
    page.wait_for_url(ehr.app.redirect_uri + "**")
    page.wait_for_selector("#result")
    assert ehr.app.tokens[-1]["patient"] in LISTED
    page.context.close()


def test_smart_launcher_refuses_users_without_the_launch_role(ehr: Ehr, browser: Browser) -> None:
    page = new_page(browser)
    response = page.goto(ehr.server.base_url + "/smart/launcher")
    assert response is not None
    log_in(page, LISTED_USER, PASSWORD)
    page.wait_for_selector("text=launch role")
    assert page.locator("#patient").count() == 0 and page.locator("select").count() == 0
    page.context.close()


def test_smart_2_2_launcher_lists_only_a_restricted_practitioners_patients(ehr: Ehr, browser: Browser) -> None:
    # the attack: the EHR launcher offered a restricted practitioner every patient on the FHIR server
    page = new_page(browser)
    page.goto(ehr.server.base_url + "/smart/launcher")
    log_in(page, WARD_USER, PASSWORD)
    page.wait_for_selector("#patient")
    offered = page.locator("#patient option").evaluate_all("options => options.map(o => o.value)")
    assert {v for v in offered if v} == set(WARD), offered
    page.context.close()
