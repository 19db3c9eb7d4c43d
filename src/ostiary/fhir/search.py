"""FHIR search, evaluated in Python: the parameters each type supports, parsing, and matching.

Repeated parameters are ANDed; comma-separated values within one are ORed (FHIR R4 search.html).
Modifiers, chains and parameters not listed here are refused (400) rather than silently ignored.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..smart.policy import element_values
from .errors import FhirError

__all__ = ["DEFAULT_COUNT", "MAX_COUNT", "SEARCH_PARAMS", "Search", "matches", "parse_search"]

DEFAULT_COUNT = 20
MAX_COUNT = 200
IGNORED = frozenset({"_format", "_pretty"})
Param = tuple[str, tuple[str, ...]]  # (type: token | reference | date | string, element paths)

_SUBJECT: Param = ("reference", ("subject",))
_PATIENT_ONLY: Param = ("reference", ("patient",))
_COMMON: dict[str, Param] = {"_id": ("token", ("id",))}
SEARCH_PARAMS: Mapping[str, Mapping[str, Param]] = {
    "Patient": {**_COMMON, "name": ("string", ("name",)), "birthdate": ("date", ("birthDate",)),
                "gender": ("token", ("gender",))},
    "Practitioner": {**_COMMON, "name": ("string", ("name",))},
    "Encounter": {**_COMMON, "patient": _SUBJECT, "subject": _SUBJECT, "date": ("date", ("period.start",)),
                  "status": ("token", ("status",)), "class": ("token", ("class",)),
                  "practitioner": ("reference", ("participant.individual",))},
    "Observation": {**_COMMON, "patient": _SUBJECT, "subject": _SUBJECT, "category": ("token", ("category",)),
                    "code": ("token", ("code",)), "status": ("token", ("status",)),
                    "date": ("date", ("effectiveDateTime", "effectivePeriod.start", "effectiveInstant"))},
    "Condition": {**_COMMON, "patient": _SUBJECT, "subject": _SUBJECT, "category": ("token", ("category",)),
                  "code": ("token", ("code",)), "clinical-status": ("token", ("clinicalStatus",)),
                  "date": ("date", ("onsetDateTime", "recordedDate")),
                  "onset-date": ("date", ("onsetDateTime",)), "recorded-date": ("date", ("recordedDate",))},
    "MedicationRequest": {**_COMMON, "patient": _SUBJECT, "subject": _SUBJECT,
                          "category": ("token", ("category",)), "code": ("token", ("medicationCodeableConcept",)),
                          "status": ("token", ("status",)), "intent": ("token", ("intent",)),
                          "date": ("date", ("authoredOn",)), "authoredon": ("date", ("authoredOn",))},
    "AllergyIntolerance": {**_COMMON, "patient": _PATIENT_ONLY, "category": ("token", ("category",)),
                           "code": ("token", ("code",)), "clinical-status": ("token", ("clinicalStatus",)),
                           "date": ("date", ("recordedDate",))},
}
_PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le")
_DATE = re.compile(r"(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?)?)?")


@dataclass(frozen=True, slots=True)
class Search:
    """A parsed search: filter parameters (in order), page size and offset."""

    params: tuple[tuple[str, str], ...]
    count: int
    offset: int

    def patients(self) -> set[str]:
        """Patient ids a ``patient`` / ``subject`` parameter pins the search to (one value each)."""
        out = set()
        for name, value in self.params:
            if name in ("patient", "subject") and "," not in value:
                ident = value.removeprefix("Patient/")
                if "/" not in ident:
                    out.add(ident)
        return out


def _integer(name: str, value: str, top: int) -> int:
    if not value.isdigit() or len(value) > 9:
        raise FhirError(400, f"{name} must be a non-negative integer")
    return min(int(value), top)


def parse_search(resource_type: str, items: Iterable[tuple[str, str]]) -> Search:
    """Parse query / form parameters for ``resource_type``; raises FhirError 400."""
    known = SEARCH_PARAMS[resource_type]
    params: list[tuple[str, str]] = []
    count, offset = DEFAULT_COUNT, 0
    for name, value in items:
        if name == "_count":
            count = _integer(name, value, MAX_COUNT)
        elif name == "_offset":
            offset = _integer(name, value, 10**9)
        elif name in IGNORED:
            continue
        elif name not in known:
            raise FhirError(400, f"unsupported search parameter {name!r} for {resource_type}")
        elif not value:
            raise FhirError(400, f"search parameter {name!r} needs a value")
        else:
            if known[name][0] == "date":
                for alt in value.split(","):
                    _date_bound(alt)  # refuse a malformed date now, not while matching
            params.append((name, value))
    return Search(tuple(params), count, offset)


def matches(resource: Mapping[str, Any], params: Sequence[tuple[str, str]]) -> bool:
    """Whether ``resource`` satisfies every parameter (parsed by ``parse_search`` for its type)."""
    known = SEARCH_PARAMS.get(str(resource.get("resourceType")), {})
    for name, value in params:
        kind, paths = known[name]
        found = [v for path in paths for v in element_values(resource, path)]
        if not any(_MATCHERS[kind](v, alt) for v in found for alt in value.split(",")):
            return False
    return True


def _token(value: object, token: str) -> bool:
    """``code``, ``system|code``, ``|code`` (no system) or ``system|`` against a code, Coding or CodeableConcept."""
    if isinstance(value, bool):
        return "|" not in token and str(value).lower() == token
    if isinstance(value, str):
        return "|" not in token and value == token
    if not isinstance(value, Mapping):
        return False
    codings = value.get("coding") if "coding" in value else [value]
    system, bar, code = token.partition("|") if "|" in token else ("", "", token)
    for coding in codings if isinstance(codings, list) else []:
        if not isinstance(coding, Mapping) or (not code and not system):
            continue
        if bar and coding.get("system") != (system or None):
            continue
        if not code or coding.get("code") == code:
            return True
    return False


def _reference(value: object, wanted: str) -> bool:
    reference = value.get("reference") if isinstance(value, Mapping) else None
    if not isinstance(reference, str):
        return False
    reference = reference.split("/_history/")[0]
    return reference == wanted if "/" in wanted else reference.rsplit("/", 1)[-1] == wanted


def _string(value: object, wanted: str) -> bool:
    """Name search: contains, case-insensitive, in the text or any part of a HumanName."""
    if not isinstance(value, Mapping):
        return False
    parts: list[object] = [value.get("text"), value.get("family")]
    for key in ("given", "prefix", "suffix"):
        parts.extend(value.get(key) or [])
    needle = wanted.casefold()
    return any(isinstance(p, str) and needle in p.casefold() for p in parts)


def _date_bound(text: str) -> tuple[str, dt.datetime, dt.datetime]:
    """(prefix, start, end) of a date search value: the range its precision implies, in UTC."""
    prefix = text[:2] if text[:2] in _PREFIXES else "eq"
    rng = _date_range(text[2:] if text[:2] in _PREFIXES else text)
    if rng is None:
        raise FhirError(400, f"malformed date search value {text!r}")
    return (prefix, *rng)


_LAST = dt.datetime.max.replace(tzinfo=dt.UTC)


def _after(start: dt.datetime, **step: int) -> dt.datetime:
    """start + step, or the end of time when that passes year 9999 (so `9999-12-31T23:59:59Z` is searchable)."""
    try:
        return start + dt.timedelta(**step)
    except OverflowError:
        return _LAST


def _date_range(text: str) -> tuple[dt.datetime, dt.datetime] | None:
    match = _DATE.fullmatch(text)
    if match is None:
        return None
    year, month, day, hour, _minute, second, fraction, _zone = match.groups()
    start: dt.datetime | None = None
    try:
        if hour is None:
            start = dt.datetime(int(year), int(month or 1), int(day or 1), tzinfo=dt.UTC)
            if day:
                return start, _after(start, days=1)
            if month:
                return start, start.replace(year=start.year + 1, month=1) if start.month == 12 else \
                    start.replace(month=start.month + 1)
            return start, start.replace(year=start.year + 1)
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, OverflowError):  # year 10000 is out of range: the end of time
        return (start, _LAST) if start is not None and hour is None else None
    parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    if second is not None and not fraction:
        return parsed, _after(parsed, seconds=1)
    return parsed, _after(parsed, microseconds=1) if fraction else _after(parsed, minutes=1)


def _date(value: object, wanted: str) -> bool:
    rng = _date_range(value) if isinstance(value, str) else None
    if rng is None:
        return False
    prefix, start, end = _date_bound(wanted)
    lo, hi = rng
    equal = start <= lo and hi <= end  # the search range contains the value's range
    return {
        "eq": equal,
        "ne": not equal,
        "gt": hi > end,
        "lt": lo < start,
        "ge": equal or hi > end,
        "le": equal or lo < start,
    }[prefix]


_MATCHERS = {"token": _token, "reference": _reference, "string": _string, "date": _date}
