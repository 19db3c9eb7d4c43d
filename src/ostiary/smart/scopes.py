"""SMART App Launch 2.2 scopes: one parser for v1 and v2, the scope model, and consent-page text.

A FHIR resource scope is ``level/Type.interactions[?param=value&...]``; v1 actions (``read``,
``write``, ``*``) are mapped onto v2 letters and remembered, so that a granted v1 scope is answered
in v1 (SMART 2.2 §Scopes for requesting FHIR Resources: "SHOULD return v1 scopes when v1 scopes
are requested and granted"). Granting lives in ``ostiary.smart.policy``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from ..errors import InvalidScope

__all__ = [
    "CLINICAL_LEVELS",
    "IDENTITY_SCOPES",
    "INTERACTIONS",
    "REFRESH_SCOPES",
    "LaunchScope",
    "Permission",
    "Query",
    "ScopeSet",
    "SmartScope",
    "describe_scope",
    "is_clinical",
    "parse_clinical",
    "parse_launch",
]

Level = Literal["patient", "user", "system"]
Query = tuple[tuple[str, str], ...]
_T = TypeVar("_T")

CLINICAL_LEVELS: tuple[Level, ...] = ("patient", "user", "system")
_LEVELS: dict[str, Level] = {level: level for level in CLINICAL_LEVELS}
INTERACTIONS = "cruds"  # SMART 2.2: "Valid suffixes are a subset of the in-order string .cruds"
IDENTITY_SCOPES = frozenset({"openid", "fhirUser", "profile"})
REFRESH_SCOPES = frozenset({"offline_access", "online_access"})

_V1_TO_V2 = {"read": "rs", "write": "cud", "*": "cruds"}
_V2_TO_V1 = {v: k for k, v in _V1_TO_V2.items()}
_V2_ACTIONS = re.compile(r"c?r?u?d?s?")
_RESOURCE_TYPE = re.compile(r"[A-Z][A-Za-z0-9]*|\*")
_PARAM = re.compile(r"[A-Za-z_][A-Za-z0-9_.:-]*")  # modifiers and chains are experimental but well-formed
_LAUNCH = re.compile(r"launch(?:/([a-z]+)(?:\?role=(.+))?)?")
# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")


def _in_order(letters: Iterable[str]) -> str:
    present = set(letters)
    return "".join(c for c in INTERACTIONS if c in present)


@dataclass(frozen=True, slots=True, order=True)
class Permission:
    """One interaction on one resource type at one level, under a (possibly empty) query restriction."""

    level: str
    resource_type: str
    interaction: str
    query: Query = ()

    def covers(self, other: Permission) -> bool:
        """True if everything ``other`` allows is allowed by this permission."""
        return (
            self.level == other.level
            and self.interaction == other.interaction
            and self.resource_type in ("*", other.resource_type)
            and set(self.query) <= set(other.query)  # more restrictions = fewer resources
        )


@dataclass(frozen=True, slots=True)
class SmartScope:
    """A FHIR resource scope. Equality is by meaning: ``patient/X.read`` == ``patient/X.rs``.

    ``interactions`` is an in-order, non-empty subset of ``cruds``; ``query`` is sorted.
    """

    level: Level
    resource_type: str
    interactions: str
    query: Query = ()
    version: int = field(default=2, compare=False)
    original: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not self.interactions or _in_order(self.interactions) != self.interactions:
            raise ValueError(f"interactions must be an in-order subset of {INTERACTIONS!r}")

    def __str__(self) -> str:
        """The canonical v2 form."""
        text = f"{self.level}/{self.resource_type}.{self.interactions}"
        return f"{text}?{'&'.join(f'{k}={v}' for k, v in self.query)}" if self.query else text

    @property
    def text(self) -> str:
        """The scope as it should be shown back to the client: as requested, else v1 if it came as v1."""
        if self.original:
            return self.original
        v1 = _V2_TO_V1.get(self.interactions)
        if self.version == 1 and v1 and not self.query:
            return f"{self.level}/{self.resource_type}.{v1}"
        return str(self)

    def allows(self, interaction: str) -> bool:
        return len(interaction) == 1 and interaction in self.interactions

    def permissions(self) -> frozenset[Permission]:
        return frozenset(Permission(self.level, self.resource_type, i, self.query) for i in self.interactions)

    def covers(self, other: SmartScope) -> bool:
        """True if every permission of ``other`` is one of this scope's (or narrower)."""
        return (
            self.level == other.level
            and self.resource_type in ("*", other.resource_type)
            and set(other.interactions) <= set(self.interactions)
            and set(self.query) <= set(other.query)
        )

    def intersect(self, other: SmartScope) -> SmartScope | None:
        """What this (requested) scope keeps within ``other`` (allowed); None if nothing.

        Returns ``self`` unchanged when ``other`` covers it, so that its original text survives.
        """
        if self.level != other.level:
            return None
        if self.resource_type == other.resource_type or other.resource_type == "*":
            resource_type = self.resource_type
        elif self.resource_type == "*":
            resource_type = other.resource_type
        else:
            return None
        interactions = _in_order(set(self.interactions) & set(other.interactions))
        if not interactions:
            return None
        narrowed = SmartScope(
            self.level, resource_type, interactions, tuple(sorted(set(self.query) | set(other.query))), self.version
        )
        return self if narrowed == self else narrowed


@dataclass(frozen=True, slots=True)
class LaunchScope:
    """``launch`` (EHR launch: context is None) or ``launch/<type>[?role=<uri>]`` (context asked for)."""

    context: str | None = None
    role: str | None = None

    def __str__(self) -> str:
        if self.context is None:
            return "launch"
        return f"launch/{self.context}" + (f"?role={self.role}" if self.role else "")

    def covers(self, other: LaunchScope) -> bool:
        return self.context == other.context and self.role in (None, other.role)


def is_clinical(token: str) -> bool:
    """Whether ``token`` claims to be a FHIR resource scope (starts with patient/, user/ or system/)."""
    return token.startswith(("patient/", "user/", "system/"))


def _parse_query(token: str, query: str) -> Query:
    pairs: set[tuple[str, str]] = set()
    for item in query.split("&"):
        name, eq, value = item.partition("=")
        if not eq or not _PARAM.fullmatch(name) or not value:
            raise InvalidScope(f"scope {token!r}: the query must be param=value pairs joined by '&'")
        pairs.add((name, value))
    return tuple(sorted(pairs))


def parse_clinical(token: str) -> SmartScope:
    """Parse ``patient/Observation.rs?category=...`` or v1 ``user/*.read``; raises InvalidScope."""
    if not _SCOPE_TOKEN.fullmatch(token):
        raise InvalidScope("malformed scope value")
    prefix, _, rest = token.partition("/")
    level = _LEVELS.get(prefix)
    if level is None:
        raise InvalidScope(f"scope {token!r} must start with patient/, user/ or system/")
    head, qmark, query = rest.partition("?")
    resource_type, dot, actions = head.partition(".")
    if not dot:
        raise InvalidScope(f"scope {token!r} needs '.' and interactions after the resource type")
    if not _RESOURCE_TYPE.fullmatch(resource_type):
        raise InvalidScope(f"scope {token!r}: {resource_type!r} is not a FHIR resource type or '*'")
    if actions in _V1_TO_V2:
        if qmark:
            raise InvalidScope(f"scope {token!r}: v1 scopes (.{actions}) cannot carry a query")
        return SmartScope(level, resource_type, _V1_TO_V2[actions], (), 1, token)
    if not actions or not _V2_ACTIONS.fullmatch(actions):
        raise InvalidScope(
            f"scope {token!r}: {actions!r} is not an in-order subset of 'cruds' (nor v1 read, write or *)"
        )
    parsed = _parse_query(token, query) if qmark else ()
    return SmartScope(level, resource_type, actions, parsed, 2, token)


def parse_launch(token: str) -> LaunchScope:
    """Parse ``launch``, ``launch/patient`` or ``launch/list?role=<uri>``; raises InvalidScope."""
    match = _LAUNCH.fullmatch(token) if _SCOPE_TOKEN.fullmatch(token) else None
    if match is None or (match.group(2) is not None and "&" in match.group(2)):
        raise InvalidScope(f"scope {token!r}: launch context is launch/<lowercase type>[?role=<uri>]")
    return LaunchScope(match.group(1), match.group(2))


@dataclass(frozen=True, slots=True)
class ScopeSet:
    """A parsed scope string: FHIR resource scopes, launch context, identity, refresh and other scopes."""

    clinical: tuple[SmartScope, ...] = ()
    launch: tuple[LaunchScope, ...] = ()
    identity: tuple[str, ...] = ()
    refresh: tuple[str, ...] = ()
    other: tuple[str, ...] = ()

    @classmethod
    def parse(cls, value: str | Iterable[str] | None) -> ScopeSet:
        """Parse a space-separated scope string (or its tokens); raises InvalidScope on a malformed
        FHIR resource or launch scope. Duplicates (also v1/v2 spellings of one scope) are dropped."""
        tokens = value.split(" ") if isinstance(value, str) else (value or ())
        clinical: list[SmartScope] = []
        launch: list[LaunchScope] = []
        identity: list[str] = []
        refresh: list[str] = []
        other: list[str] = []
        for token in tokens:
            if not token:
                continue
            if is_clinical(token):
                _append(clinical, parse_clinical(token))
            elif token == "launch" or token.startswith("launch/"):
                _append(launch, parse_launch(token))
            elif token in IDENTITY_SCOPES:
                _append(identity, token)
            elif token in REFRESH_SCOPES:
                _append(refresh, token)
            elif _SCOPE_TOKEN.fullmatch(token):
                _append(other, token)
            else:
                raise InvalidScope("malformed scope value")
        return cls(tuple(clinical), tuple(launch), tuple(identity), tuple(refresh), tuple(other))

    def tokens(self) -> tuple[str, ...]:
        """The scope tokens to send back (token response ``scope``), v1 scopes kept in v1."""
        return (
            *(s.text for s in self.clinical),
            *(str(s) for s in self.launch),
            *self.identity,
            *self.refresh,
            *self.other,
        )

    def __str__(self) -> str:
        return " ".join(self.tokens())

    def __contains__(self, token: object) -> bool:
        return isinstance(token, str) and token in self.tokens()

    def permissions(self) -> frozenset[Permission]:
        """The FHIR resource permissions granted, one per (level, type, interaction, query)."""
        return frozenset(p for s in self.clinical for p in s.permissions())

    @property
    def needs_patient(self) -> bool:
        """SMART 2.2: granting a patient/ scope means the server SHALL establish a patient in context."""
        return any(s.level == "patient" for s in self.clinical)

    @property
    def launch_contexts(self) -> frozenset[str]:
        """Contexts asked for with launch/<type> (``patient``, ``encounter``, ...)."""
        return frozenset(s.context for s in self.launch if s.context)


def _append(items: list[_T], item: _T) -> None:
    if item not in items:
        items.append(item)


_LEVEL = {"patient": "your", "user": "records you can see:", "system": "all"}
_ACTIONS = {"c": "create", "r": "read", "u": "update", "d": "delete", "s": "search"}


def describe_scope(scope: str, *, whose: str = "your") -> tuple[str, str] | None:
    """(text, detail) for a SMART clinical scope such as patient/Observation.rs; None if not one.

    `whose` words patient/ scopes: "your", or "this patient's" when someone acts for a patient (EHR launch).
    """
    if scope in ("launch", "launch/patient"):
        return ("Know which patient you are working with", "")
    if scope == "launch/encounter":
        return ("Know which visit you are working with", "")
    if scope == "fhirUser":
        return ("Know your role in the health record", "Practitioner, patient or related person")
    level, sep, rest = scope.partition("/")
    if not sep or level not in _LEVEL or "." not in rest:
        return None
    resource, _, actions = rest.partition(".")
    actions = actions.split("?", 1)[0]
    letters = _V1_TO_V2.get(actions, actions)
    verbs = [_ACTIONS[c] for c in letters if c in _ACTIONS]
    if not verbs:
        return None
    if level == "patient":  # "Read your health records", "Read this patient's Observation records"
        what = "health records" if resource == "*" else f"{resource} records"
        return (f"{', '.join(verbs).capitalize()} {whose} {what}", scope)
    what = "all health records" if resource == "*" else f"{resource} records"
    return (f"{', '.join(verbs).capitalize()} {_LEVEL[level]} {what}".replace(": ", " "), scope)
