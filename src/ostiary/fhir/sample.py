"""Synthetic sample data, made here (no real people): deterministic for a seed, related by references.

30 patients, 5 practitioners, and per patient encounters, vital-sign and laboratory observations
(LOINC), conditions (SNOMED CT), medication requests (RxNorm) and allergies (SNOMED CT).
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from .store import FhirStore, Json

__all__ = ["DEFAULT_SEED", "load_sample", "sample_resources"]

DEFAULT_SEED = 7
LOINC, SNOMED, RXNORM = "http://loinc.org", "http://snomed.info/sct", "http://www.nlm.nih.gov/research/umls/rxnorm"
UCUM = "http://unitsofmeasure.org"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
COND_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
COND_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
ALLERGY_CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"

GIVEN = {"female": ["Ada", "Grace", "Mira", "Lena", "Sofia", "Hana", "Iris", "Nora", "Yara", "Elena"],
         "male": ["Alan", "Omar", "Tomas", "Kenji", "Luca", "Ravi", "Felix", "Jonas", "Milo", "Arun"]}
FAMILY = ["Lovelace", "Hopper", "Okafor", "Nakamura", "Rossi", "Patel", "Schmidt", "Garcia", "Novak", "Haddad",
          "Silva", "Kowalski", "Mensah", "Larsen", "Dubois"]
# (LOINC code, display, unit, low, high, decimals)
VITALS = [("8867-4", "Heart rate", "/min", 55, 100, 0), ("29463-7", "Body weight", "kg", 50, 110, 1),
          ("8302-2", "Body height", "cm", 150, 195, 0), ("8310-5", "Body temperature", "Cel", 36.1, 37.8, 1)]
LABS = [("2339-0", "Glucose [Mass/volume] in Blood", "mg/dL", 70, 180, 0),
        ("718-7", "Hemoglobin [Mass/volume] in Blood", "g/dL", 11, 17, 1),
        ("2160-0", "Creatinine [Mass/volume] in Serum or Plasma", "mg/dL", 0.6, 1.4, 2),
        ("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", "%", 4.8, 9.5, 1)]
# (SNOMED code, display, RxNorm code, medication display)
CONDITIONS = [("38341003", "Hypertensive disorder", "314076", "lisinopril 10 MG Oral Tablet"),
              ("44054006", "Diabetes mellitus type 2", "860975", "metformin 500 MG Extended Release Oral Tablet"),
              ("195967001", "Asthma", "745679", "albuterol 0.09 MG/ACTUAT Metered Dose Inhaler"),
              ("55822004", "Hyperlipidemia", "617312", "atorvastatin 20 MG Oral Tablet"),
              ("35489007", "Depressive disorder", "312938", "sertraline 50 MG Oral Tablet")]
ALLERGIES = [("91936005", "Allergy to penicillin", "medication"), ("91935009", "Allergy to peanut", "food"),
             ("300916003", "Latex allergy", "environment"), ("418689008", "Allergy to grass pollen", "environment")]
PRACTITIONERS = [("Maria", "Alvarez", "female"), ("John", "Chen", "male"), ("Aisha", "Bello", "female"),
                 ("Peter", "Meyer", "male"), ("Sara", "Lindqvist", "female")]
EPOCH = dt.datetime(2024, 1, 1, 9, 0, tzinfo=dt.UTC)


def _concept(system: str, code: str, display: str) -> Json:
    return {"coding": [{"system": system, "code": code, "display": display}], "text": display}


def _when(rng: random.Random, start: dt.datetime, days: int) -> dt.datetime:
    return start + dt.timedelta(days=rng.randrange(days), minutes=15 * rng.randrange(32))


def _iso(moment: dt.datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _observation(ident: str, patient: str, encounter: str, when: str, kind: str, spec: tuple[Any, ...],
                 rng: random.Random) -> Json:
    code, display, unit, low, high, decimals = spec
    value = round(rng.uniform(low, high), decimals)
    return {
        "resourceType": "Observation", "id": ident, "status": "final",
        "category": [_concept(OBS_CATEGORY, kind, "Vital Signs" if kind == "vital-signs" else "Laboratory")],
        "code": _concept(LOINC, code, display), "subject": {"reference": f"Patient/{patient}"},
        "encounter": {"reference": f"Encounter/{encounter}"}, "effectiveDateTime": when,
        "valueQuantity": {"value": value if decimals else int(value), "unit": unit, "system": UCUM, "code": unit},
    }


def _patient_record(n: int, rng: random.Random) -> list[Json]:
    pid = f"pat-{n:03d}"
    gender = rng.choice(["female", "male"])
    birth = dt.date(1940, 1, 1) + dt.timedelta(days=rng.randrange(365 * 65))
    given, family = rng.choice(GIVEN[gender]), rng.choice(FAMILY)
    doctor = f"prac-{rng.randrange(len(PRACTITIONERS)) + 1:02d}"
    out: list[Json] = [{
        "resourceType": "Patient", "id": pid, "active": True, "gender": gender, "birthDate": birth.isoformat(),
        "name": [{"use": "official", "family": family, "given": [given]}],
        "identifier": [{"system": "urn:ostiary:sample:mrn", "value": f"MRN{10000 + n}"}],
        "generalPractitioner": [{"reference": f"Practitioner/{doctor}"}],
    }]
    subject = {"reference": f"Patient/{pid}"}
    for e in range(1, rng.randint(2, 3) + 1):
        start = _when(rng, EPOCH, 540)
        eid = f"enc-{n:03d}-{e}"
        out.append({
            "resourceType": "Encounter", "id": eid, "status": "finished",
            "class": {"system": ACT_CODE, "code": "AMB", "display": "ambulatory"},
            "type": [_concept(SNOMED, "185349003", "Encounter for check up")], "subject": subject,
            "participant": [{"individual": {"reference": f"Practitioner/{doctor}"}}],
            "period": {"start": _iso(start), "end": _iso(start + dt.timedelta(minutes=30))},
        })
        for i, spec in enumerate(VITALS):
            out.append(_observation(f"obs-{n:03d}-{e}-v{i + 1}", pid, eid, _iso(start), "vital-signs", spec, rng))
        for i, spec in enumerate(rng.sample(LABS, 2)):
            out.append(_observation(f"obs-{n:03d}-{e}-l{i + 1}", pid, eid, _iso(start), "laboratory", spec, rng))
    for c, (code, display, rx, medication) in enumerate(rng.sample(CONDITIONS, rng.randint(1, 2)), 1):
        onset = _when(rng, EPOCH - dt.timedelta(days=2000), 1800)
        out.append({
            "resourceType": "Condition", "id": f"cond-{n:03d}-{c}", "subject": subject,
            "clinicalStatus": _concept(COND_CLINICAL, "active", "Active"),
            "category": [_concept(COND_CATEGORY, "problem-list-item", "Problem List Item")],
            "code": _concept(SNOMED, code, display), "onsetDateTime": _iso(onset), "recordedDate": _iso(onset),
        })
        out.append({
            "resourceType": "MedicationRequest", "id": f"medrx-{n:03d}-{c}", "status": "active", "intent": "order",
            "medicationCodeableConcept": _concept(RXNORM, rx, medication), "subject": subject,
            "authoredOn": _iso(onset + dt.timedelta(days=1)), "requester": {"reference": f"Practitioner/{doctor}"},
            "reasonReference": [{"reference": f"Condition/cond-{n:03d}-{c}"}],
        })
    if rng.random() < 0.6:
        code, display, category = rng.choice(ALLERGIES)
        out.append({
            "resourceType": "AllergyIntolerance", "id": f"allergy-{n:03d}", "patient": subject,
            "clinicalStatus": _concept(ALLERGY_CLINICAL, "active", "Active"), "category": [category],
            "code": _concept(SNOMED, code, display), "recordedDate": _iso(_when(rng, EPOCH, 365)),
        })
    return out


def sample_resources(seed: int = DEFAULT_SEED, patients: int = 30) -> list[Json]:
    """The sample resources, the same for the same seed (practitioners first, then each patient's record)."""
    rng = random.Random(seed)
    out: list[Json] = [
        {"resourceType": "Practitioner", "id": f"prac-{i:02d}", "active": True, "gender": gender,
         "name": [{"use": "official", "family": family, "given": [given], "prefix": ["Dr."]}],
         "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": f"{1999000000 + i}"}]}
        for i, (given, family, gender) in enumerate(PRACTITIONERS, 1)
    ]
    for n in range(1, patients + 1):
        out.extend(_patient_record(n, rng))
    return out


async def load_sample(store: FhirStore, seed: int = DEFAULT_SEED) -> int:
    """Load the sample data; resources already there are left alone. Returns how many were added."""
    return await store.insert_missing(sample_resources(seed))
