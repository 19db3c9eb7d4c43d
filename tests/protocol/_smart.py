"""SMART App Launch in-process: the sample FHIR data, SMART apps and users, EHR launches, and a flow
driver that also answers the patient picker.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from typing import Any

import httpx

from ostiary.fhir.sample import load_sample, sample_resources
from ostiary.fhir.store import FhirStore
from ostiary.smart.directory import display_name
from ostiary.store.access import AccessFacts
from tests.conftest import ISSUER, RunningApp, basic
from tests.protocol._oidc_flow import (
    PASSWORD,
    REDIRECT,
    Browser,
    Flow,
    csrf_of,
    decode_jwt,
    exchange,
    form_fields,
    make_rp,
    make_user,
    pkce,
    query_of,
)

__all__ = [
    "FHIR",
    "SAMPLE",
    "SmartFlow",
    "bearer",
    "create_launch",
    "ehr_token",
    "fhir_get",
    "load_data",
    "names_on",
    "patient_name",
    "patient_user",
    "practitioner",
    "restricted_practitioner",
    "smart_app",
    "smart_flow",
    "smart_tokens",
    "with_access",
]

FHIR = ISSUER + "/fhir"  # the FHIR base URL: the `aud` of SMART requests and tokens
SAMPLE = sample_resources()


async def load_data(running: RunningApp) -> None:
    """The generated sample patients in the app's database (idempotent)."""
    await load_sample(FhirStore(running.provider.engine))


def patient_name(patient_id: str) -> str:
    return next(display_name(r) for r in SAMPLE if r["resourceType"] == "Patient" and r["id"] == patient_id)


async def with_access(running: RunningApp, user: Any, fhir_user: str | None, **facts: Any) -> Any:
    """Give `user` access facts as an administrator would (`ostiary user access`)."""
    await running.provider.patient_access.facts.put(AccessFacts(user.id, fhir_user=fhir_user, **facts))
    return user


async def practitioner(running: RunningApp, practitioner_id: str = "prac-01", **facts: Any) -> Any:
    """A practitioner who may see every patient (unless `facts` say otherwise)."""
    facts.setdefault("all_patients", True)
    return await with_access(running, await make_user(running), f"Practitioner/{practitioner_id}", **facts)


async def restricted_practitioner(running: RunningApp, patients: tuple[str, ...] = (), **facts: Any) -> Any:
    """A practitioner with the default policy: only the listed patients (none by default)."""
    return await with_access(running, await make_user(running), "Practitioner/prac-02",
                             patients=tuple(patients), **facts)


async def patient_user(running: RunningApp, patient_id: str, **facts: Any) -> Any:
    return await with_access(running, await make_user(running), f"Patient/{patient_id}", **facts)


async def smart_app(running: RunningApp, scope: str = "patient/*.cruds user/*.cruds", **meta: Any) -> tuple[str, str]:
    """A confidential SMART app (authorization_code + refresh_token, redirect REDIRECT)."""
    cid, secret = await make_rp(running, scope=scope, client_name=meta.pop("client_name", "SMART App"), **meta)
    assert secret is not None
    return cid, secret


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def ehr_token(running: RunningApp, scope: str = "ehr:launch") -> str:
    """An access token for an EHR's own client (client_credentials) with `scope`."""
    # the operator allowed this EHR a secret for system/ scopes (docs/security.md, grant-type rules)
    cid, secret = await running.add_client(scope=scope, client_name="EHR", system_scopes_with_secret=True)
    assert secret is not None
    r = await running.http.post("/token", data={"grant_type": "client_credentials", "scope": scope},
                                headers=basic(cid, secret))
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


async def create_launch(running: RunningApp, token: str, **body: Any) -> str:
    """POST /smart/launch; the launch value (asserted 201)."""
    r = await running.http.post("/smart/launch", json=body, headers=bearer(token))
    assert r.status_code == 201, r.text
    assert r.json()["iss"] == FHIR and r.json()["expires_in"] > 0
    return str(r.json()["launch"])


@dataclass
class SmartFlow(Flow):
    picker: list[str] = field(default_factory=list)  # the patient picker pages shown (HTML)


def _step_of(html: str) -> str:
    if 'name="password"' in html:
        return "login"
    if 'name="choice"' in html:
        return "select_account"
    if 'name="decision" value="approve"' in html:
        return "consent"
    if "Choose a patient" in html:
        return "select_patient"
    return "other"


async def smart_flow(b: Browser, client_id: str, secret: str | None, user: Any, *,
                     scope: str = "openid fhirUser launch/patient patient/*.rs", aud: str | None = FHIR,
                     pick: str | None = None, search: str | None = None, **params: str) -> SmartFlow:
    """Authorize with PKCE and `aud`; log in, consent, and in the picker search for `search` then choose `pick`
    (without `pick`, stop at the picker: `params` is then empty and `response` the picker page)."""
    verifier, challenge = pkce()
    query = {"client_id": client_id, "redirect_uri": REDIRECT, "response_type": "code", "scope": scope,
             "state": secrets.token_urlsafe(8), "nonce": secrets.token_urlsafe(8), "code_challenge": challenge,
             "code_challenge_method": "S256", "aud": aud, **params}
    r = await b.get("/authorize", params={k: v for k, v in query.items() if v is not None})
    pages: list[str] = []
    picker: list[str] = []
    for _ in range(12):
        if r.status_code == 303 and r.headers["location"].startswith("/interaction/"):
            r = await b.get(r.headers["location"])
            continue
        if r.status_code != 200 or "/interaction/" not in str(r.url) or 'id="response"' in r.text:
            break
        step = _step_of(r.text)
        pages.append(step)
        base = str(r.url.path)
        if step == "select_patient":
            picker.append(r.text)
            if search is not None and len(picker) == 1:
                r = await b.get(base, params={"q": search})
                continue
            if pick is None:  # stop at the picker: the caller looks at it
                return SmartFlow(client_id, secret, verifier, r, {}, pages, picker)
            r = await b.post(base + "/patient", data={"csrf_token": csrf_of(r.text), "patient": pick})
            continue
        csrf = csrf_of(r.text)
        if step == "login":
            r = await b.post(base + "/login", data={"csrf_token": csrf, "username": user.username,
                                                    "password": PASSWORD})
        elif step == "consent":
            r = await b.post(base + "/consent", data={"csrf_token": csrf, "decision": "approve"})
        elif step == "select_account":
            r = await b.post(base + "/select", data={"csrf_token": csrf, "choice": "continue"})
        else:
            raise AssertionError(r.text[:2000])
    if r.status_code == 303:
        out = query_of(r.headers["location"])
    elif r.status_code == 200 and 'id="response"' in r.text:
        out = form_fields(r.text)
    else:
        raise AssertionError(f"{r.status_code} {r.headers} {r.text[:2000]}")
    return SmartFlow(client_id, secret, verifier, r, out, pages, picker)


async def smart_tokens(running: RunningApp, b: Browser, user: Any, *, app: tuple[str, str] | None = None,
                       **kwargs: Any) -> tuple[SmartFlow, dict[str, Any], dict[str, Any]]:
    """A flow, its token response (asserted 200) and the verified access-token claims."""
    cid, secret = app or await smart_app(running)
    flow = await smart_flow(b, cid, secret, user, **kwargs)
    assert "code" in flow.params, flow.params
    r = await exchange(b, flow)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    _, claims = await decode_jwt(b, body["access_token"])
    return flow, body, claims


def names_on(html: str) -> list[str]:
    """The patient names a picker page lists."""
    return re.findall(r"<strong>([^<]+)</strong><span", html)


async def fhir_get(http: httpx.AsyncClient, path: str, token: str) -> httpx.Response:
    return await http.get(f"{FHIR}/{path}", headers=bearer(token))
