"""SMART 2.2 granting and enforcement, framework-free.

``narrow`` decides what a client is granted from what it asked for and what it is registered for;
``check`` decides whether a FHIR interaction is allowed by granted scopes. Both fail closed: what
cannot be shown to be allowed is refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from .compartment import FILING_ELEMENT, PATIENT_COMPARTMENT, element_values, filed_under, in_patient_compartment
from .scopes import INTERACTIONS, Query, ScopeSet, SmartScope

__all__ = [
    "EVERYONE",
    "PATIENT_COMPARTMENT",
    "Decision",
    "UserAccess",
    "check",
    "element_values",
    "filed_under",
    "in_patient_compartment",
    "matches_query",
    "narrow",
]

Resource = Mapping[str, object]

# Search parameters whose value can be checked on a resource: parameter -> element (token type).
_TOKEN_ELEMENTS = {
    "category": "category",
    "code": "code",
    "type": "type",
    "status": "status",
    "intent": "intent",
    "clinical-status": "clinicalStatus",
    "verification-status": "verificationStatus",
}
_NAMES = {"c": "create", "r": "read", "u": "update", "d": "delete", "s": "search"}


class UserAccess(Protocol):
    """Whether the user behind a user/ scope may perform ``interaction`` (on ``resource`` if given).

    Called with ``resource=None`` for a search (the caller must then filter what it returns) and
    with the resource for the other interactions.
    """

    def __call__(self, interaction: str, resource_type: str, resource: Resource | None, /) -> bool: ...


def _everyone(interaction: str, resource_type: str, resource: Resource | None, /) -> bool:
    return True


# user/ scopes grant what they say: pass this only for a user who may see every patient.
# ``check`` refuses user/ scopes when no UserAccess is given (the safe library default).
EVERYONE: UserAccess = _everyone


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of ``check``.

    For a search that is allowed, ``compartment`` (a patient id) and ``required_filters`` restrict
    the results: only resources in that patient's compartment, and matching at least one of the
    filters (each a conjunction of ``param=value``) when any are given. The FHIR API must add them.
    """

    allowed: bool
    reason: str
    required_filters: tuple[Query, ...] = ()
    compartment: str | None = None
    scope: SmartScope | None = None


def narrow(requested: ScopeSet, allowed: ScopeSet) -> ScopeSet:
    """What the client is granted: each requested scope cut down to what ``allowed`` permits.

    Never grants more than was requested; scopes granted unchanged keep their requested text.
    """
    clinical: list[SmartScope] = []
    for scope in requested.clinical:
        parts = [p for a in allowed.clinical if (p := scope.intersect(a)) is not None]
        for part in _merge(scope, parts):
            if part not in clinical:
                clinical.append(part)
            elif part.original:  # the same grant, as the client spelled it
                clinical[clinical.index(part)] = part
    return ScopeSet(
        tuple(clinical),
        tuple(s for s in requested.launch if any(a.covers(s) for a in allowed.launch)),
        tuple(s for s in requested.identity if s in allowed.identity),
        tuple(s for s in requested.refresh if s in allowed.refresh),
        tuple(s for s in requested.other if s in allowed.other),
    )


def _merge(requested: SmartScope, parts: list[SmartScope]) -> list[SmartScope]:
    """Join pieces of one requested scope that differ only in interactions."""
    grouped: dict[tuple[str, Query], set[str]] = {}
    for part in parts:
        grouped.setdefault((part.resource_type, part.query), set()).update(part.interactions)
    out = []
    for (resource_type, query), letters in grouped.items():
        interactions = "".join(c for c in INTERACTIONS if c in letters)
        merged = SmartScope(requested.level, resource_type, interactions, query, requested.version)
        out.append(requested if merged == requested else merged)
    # a piece inside another piece adds nothing (patient/*.rs already holds patient/Observation.r)
    return [p for i, p in enumerate(out) if not any(j != i and q.covers(p) for j, q in enumerate(out))]


def matches_query(resource: Resource, query: Query) -> bool:
    """Whether ``resource`` satisfies every ``param=value`` (token search semantics; ``a,b`` is OR).

    A parameter we cannot evaluate on a resource (modifiers, chains, others) does not match.
    """
    for param, value in query:
        element = _TOKEN_ELEMENTS.get(param)
        if element is None:
            return False
        values = list(element_values(resource, element))
        if not any(_token_matches(v, alt) for v in values for alt in value.split(",")):
            return False
    return True


def _token_matches(value: object, token: str) -> bool:
    """FHIR token search: ``code``, ``system|code``, ``|code`` (no system) or ``system|`` (any code)."""
    if not token.strip("|"):
        return False
    if isinstance(value, str):
        return "|" not in token and value == token
    if not isinstance(value, Mapping):
        return False
    codings = value.get("coding") if "coding" in value else [value]
    if not isinstance(codings, list):
        return False
    system, bar, code = token.partition("|") if "|" in token else ("", "", token)
    for coding in codings:
        if not isinstance(coding, Mapping):
            continue
        if bar and coding.get("system") != (system or None):
            continue
        if not code or coding.get("code") == code:
            return True
    return False


@dataclass(frozen=True, slots=True)
class _Request:
    interaction: str
    resource_type: str
    patient: str | None
    resource: Resource | None
    search_params: Mapping[str, str]
    user_access: UserAccess | None


@dataclass(frozen=True, slots=True)
class _Grant:
    scope: SmartScope
    compartment: str | None
    query: Query


def check(
    scopes: ScopeSet | Iterable[SmartScope],
    *,
    interaction: str,
    resource_type: str,
    level_context: str | None,
    resource: Resource | None = None,
    search_params: Mapping[str, str] | None = None,
    user_access: UserAccess | None = None,
) -> Decision:
    """Decide a FHIR interaction (``c r u d s``) on ``resource_type`` under granted ``scopes``.

    ``level_context`` is the patient id in context (for patient/ scopes). ``resource`` is the
    resource read, updated, deleted or created (check an update against the stored and the new
    resource); for c/r/u/d it is needed whenever the decision depends on it. Raises ValueError for
    an unknown interaction.
    """
    if len(interaction) != 1 or interaction not in INTERACTIONS:
        raise ValueError(f"interaction must be one of {' '.join(INTERACTIONS)}")
    name = f"{_NAMES[interaction]} on {resource_type}"
    if resource is not None and resource.get("resourceType") != resource_type:
        return Decision(False, f"the resource is not a {resource_type}")
    clinical = scopes.clinical if isinstance(scopes, ScopeSet) else tuple(scopes)
    candidates = [s for s in clinical if s.allows(interaction) and s.resource_type in ("*", resource_type)]
    if not candidates:
        return Decision(False, f"no granted scope allows {name}")
    request = _Request(interaction, resource_type, level_context, resource, search_params or {}, user_access)
    grants: list[_Grant] = []
    refusals: list[str] = []
    for scope in candidates:
        outcome = _evaluate(scope, request)
        if isinstance(outcome, _Grant):
            grants.append(outcome)
        else:
            refusals.append(outcome)
    if not grants:
        return Decision(False, "; ".join(dict.fromkeys(refusals)))
    return _combine(grants, name)


def _evaluate(scope: SmartScope, req: _Request) -> _Grant | str:
    """Whether one candidate scope allows the request: a grant with its restrictions, or why not."""
    resource = req.resource
    user_decides = scope.level == "user"
    if user_decides and req.user_access is None:  # fail closed: who the user may see is unknown
        return f"{scope.text}: no user entitlement is known, so user/ scopes grant nothing"
    needs_resource = scope.level == "patient" or bool(scope.query) or user_decides
    if req.interaction != "s" and needs_resource and resource is None:
        return f"{scope.text}: the {req.resource_type} resource is needed to decide"
    compartment = None
    if scope.level == "patient":
        if req.patient is None:
            return f"{scope.text}: no patient in context"
        if req.resource_type != "Patient" and req.resource_type not in PATIENT_COMPARTMENT:
            return f"{scope.text}: {req.resource_type} is not in the Patient compartment"
        refused = _outside(req, req.patient)
        if refused:
            return f"{scope.text}: {refused}"
        compartment = req.patient
    if user_decides and req.user_access is not None:
        if not req.user_access(req.interaction, req.resource_type, resource):
            return f"{scope.text}: the user may not {_NAMES[req.interaction]} this {req.resource_type}"
    if resource is not None:
        if not matches_query(resource, scope.query):
            return f"{scope.text}: the resource does not match the scope's restriction"
        return _Grant(scope, compartment, ())
    # a search: restricted parameters already in the search need no extra filter
    satisfied = all(req.search_params.get(k) == v for k, v in scope.query)
    return _Grant(scope, compartment, () if satisfied else scope.query)


def _outside(req: _Request, patient: str) -> str | None:
    """Why ``resource`` is outside the patient's compartment for this interaction (None: inside).

    Reads follow every compartment element; writes only the filing element, so a secondary reference
    (performer, asserter, author, recorder) never files a resource in the compartment. A patient/
    token never creates a Patient, and updates or deletes only the patient in context.
    """
    resource = req.resource
    if resource is None:
        return None
    if req.interaction == "r":
        inside = in_patient_compartment(resource, patient)
        return None if inside else "the resource is outside the patient's compartment"
    if req.interaction == "c" and req.resource_type == "Patient":
        return "a Patient cannot be created under patient/ scopes"
    if filed_under(resource) != patient:
        return f"the resource must be filed under Patient/{patient} (its {_filing(req.resource_type)})"
    return None


def _filing(resource_type: str) -> str:
    return "id" if resource_type == "Patient" else FILING_ELEMENT.get(resource_type, "compartment element")


def _combine(grants: list[_Grant], name: str) -> Decision:
    """The least restrictive grant; restrictions across grants are only ever narrowed, never widened."""
    open_grants = [g for g in grants if g.compartment is None] or grants
    compartment = open_grants[0].compartment
    for grant in open_grants:
        if not grant.query:
            return Decision(True, f"{name} granted by {grant.scope.text}", (), compartment, grant.scope)
    filters = tuple(dict.fromkeys(g.query for g in open_grants))
    scope = open_grants[0].scope
    return Decision(True, f"{name} granted by {scope.text}, restricted", filters, compartment, scope)
