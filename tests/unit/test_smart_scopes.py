"""SMART App Launch 2.2 scopes: the spec's examples as vectors, parser properties, and granting."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ostiary.errors import InvalidScope
from ostiary.smart.policy import narrow
from ostiary.smart.scopes import (
    IDENTITY_SCOPES,
    LaunchScope,
    Permission,
    ScopeSet,
    SmartScope,
    describe_scope,
    parse_clinical,
    parse_launch,
)

VECTORS = json.loads((Path(__file__).parent.parent / "vectors" / "smart_scopes.json").read_text())


def _ids(key: str, field: str) -> list[str]:
    return [f"{v['section']}: {v[field]}" for v in VECTORS[key]]


# ---- spec vectors -------------------------------------------------------------------------------


@pytest.mark.parametrize("vector", VECTORS["parse"], ids=_ids("parse", "scope"))
def test_smart_2_2_example_parses(vector: dict[str, Any]):
    scopes = ScopeSet.parse(vector["scope"])
    kind = vector["kind"]
    assert scopes.tokens() == (vector["scope"],)  # shown back exactly as requested
    if kind == "clinical":
        (scope,) = scopes.clinical
        assert (scope.level, scope.resource_type, scope.interactions) == (
            vector["level"],
            vector["resource_type"],
            vector["interactions"],
        )
        assert scope.query == tuple(tuple(p) for p in vector["query"])
        assert scope.version == vector["version"]
        assert str(scope) == vector["canonical"]
        assert scope.original == vector["scope"]
    elif kind == "launch":
        assert scopes.launch == (LaunchScope(vector["context"], vector["role"]),)
    else:
        assert getattr(scopes, kind) == (vector["scope"],)


@pytest.mark.parametrize("vector", VECTORS["invalid"], ids=_ids("invalid", "scope"))
def test_smart_2_2_malformed_scope_is_invalid_scope(vector: dict[str, Any]):
    with pytest.raises(InvalidScope) as raised:
        ScopeSet.parse(vector["scope"])
    assert raised.value.error == "invalid_scope"
    assert raised.value.description and vector["scope"] in raised.value.description


@pytest.mark.parametrize("vector", VECTORS["equivalent"], ids=_ids("equivalent", "a"))
def test_smart_2_2_scope_equivalence(vector: dict[str, Any]):
    assert ScopeSet.parse(vector["a"]).permissions() == ScopeSet.parse(vector["b"]).permissions()


@pytest.mark.parametrize("vector", VECTORS["narrow"], ids=_ids("narrow", "requested"))
def test_smart_2_2_granted_scopes(vector: dict[str, Any]):
    granted = narrow(ScopeSet.parse(vector["requested"]), ScopeSet.parse(vector["allowed"]))
    assert str(granted) == vector["granted"]


# ---- parser details -----------------------------------------------------------------------------


def test_v1_and_v2_spellings_are_one_scope():
    assert parse_clinical("patient/Observation.read") == parse_clinical("patient/Observation.rs")
    assert ScopeSet.parse("patient/Observation.read patient/Observation.rs").tokens() == ("patient/Observation.read",)


def test_query_is_canonically_sorted_but_shown_as_requested():
    scope = parse_clinical("user/Observation.rs?status=final&category=laboratory")
    assert str(scope) == "user/Observation.rs?category=laboratory&status=final"
    assert scope.text == "user/Observation.rs?status=final&category=laboratory"
    assert scope == parse_clinical("user/Observation.rs?category=laboratory&status=final")


def test_non_clinical_scopes_are_classified():
    scopes = ScopeSet.parse("openid fhirUser profile offline_access launch launch/encounter api:read")
    assert scopes.identity == ("openid", "fhirUser", "profile")
    assert scopes.refresh == ("offline_access",)
    assert scopes.launch == (LaunchScope(), LaunchScope("encounter"))
    assert scopes.launch_contexts == {"encounter"}
    assert scopes.other == ("api:read",)
    assert not scopes.needs_patient
    assert ScopeSet.parse("patient/*.rs").needs_patient
    assert "openid" in scopes and "patient/*.rs" not in scopes


def test_smart_scope_rejects_out_of_order_interactions_when_built_directly():
    with pytest.raises(ValueError):
        SmartScope("patient", "Observation", "sr")


def test_non_scope_token_characters_are_invalid_scope():
    with pytest.raises(InvalidScope):
        ScopeSet.parse('patient/Observation.rs?code="x"')
    with pytest.raises(InvalidScope):
        ScopeSet.parse("caf\u00e9")


def test_parse_launch_rejects_non_launch():
    with pytest.raises(InvalidScope):
        parse_launch("launchpad")


def test_describe_scope_still_serves_the_consent_page():
    text = ("Read, search your Observation records", "patient/Observation.rs")
    assert describe_scope("patient/Observation.rs") == text
    assert describe_scope("user/*.read") == ("Read, search records you can see all health records", "user/*.read")
    assert describe_scope("launch/patient") == ("Know which patient you are working with", "")
    assert describe_scope("openid") is None


# ---- hypothesis: round trip and malformed input -------------------------------------------------

LEVELS = st.sampled_from(["patient", "user", "system"])
TYPES = st.one_of(st.just("*"), st.from_regex(r"[A-Z][A-Za-z0-9]{0,20}", fullmatch=True))
V2_ACTIONS = st.sets(st.sampled_from("cruds"), min_size=1).map(lambda s: "".join(c for c in "cruds" if c in s))
PARAMS = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.:-]{0,12}", fullmatch=True)
VALUES = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters='"\\&'), min_size=1)
QUERIES = st.lists(st.tuples(PARAMS, VALUES), max_size=3).map(lambda q: "&".join(f"{k}={v}" for k, v in q))


@st.composite
def v2_scopes(draw: st.DrawFn) -> str:
    query = draw(QUERIES)
    text = f"{draw(LEVELS)}/{draw(TYPES)}.{draw(V2_ACTIONS)}"
    return f"{text}?{query}" if query else text


@st.composite
def v1_scopes(draw: st.DrawFn) -> str:
    return f"{draw(LEVELS)}/{draw(TYPES)}.{draw(st.sampled_from(['read', 'write', '*']))}"


ANY_VALID = st.one_of(v2_scopes(), v1_scopes())


@given(ANY_VALID)
def test_parse_str_parse_is_stable(text: str):
    scope = parse_clinical(text)
    canonical = str(scope)
    again = parse_clinical(canonical)
    assert again == scope
    assert str(again) == canonical
    assert scope.text == text
    assert ScopeSet.parse(str(ScopeSet.parse(text))) == ScopeSet.parse(text)


@given(st.sampled_from(["patient/", "user/", "system/"]), st.text(max_size=40))
def test_anything_clinical_looking_parses_or_raises_invalid_scope(prefix: str, rest: str):
    try:
        scope = parse_clinical(prefix + rest)
    except InvalidScope as exc:
        assert exc.description
    else:
        assert str(parse_clinical(str(scope))) == str(scope)


OUT_OF_ORDER = (
    st.permutations("cruds")
    .flatmap(lambda p: st.integers(2, 5).map(lambda n: "".join(p[:n])))
    .filter(lambda a: "".join(c for c in "cruds" if c in a) != a)
)
UNKNOWN = st.text(alphabet="abcdefghijklmnopqrstuvwxyzCRUDS0123", min_size=1, max_size=6).filter(
    lambda a: any(c not in "cruds" for c in a) and a not in ("read", "write")
)


@given(LEVELS, TYPES, st.one_of(OUT_OF_ORDER, UNKNOWN, st.just("")))
def test_wrong_order_unknown_letters_or_empty_action_raise_invalid_scope(level: str, rtype: str, actions: str):
    with pytest.raises(InvalidScope):
        ScopeSet.parse(f"{level}/{rtype}.{actions}")


# ---- hypothesis: granting never exceeds the request ---------------------------------------------

SMALL_TYPES = st.sampled_from(["*", "Observation", "Condition", "Patient"])
SMALL_QUERIES = st.sampled_from(["", "category=laboratory", "code=1234-5", "category=laboratory&code=1234-5"])


@st.composite
def small_scopes(draw: st.DrawFn) -> str:
    level, rtype = draw(st.sampled_from(["patient", "user"])), draw(SMALL_TYPES)
    if draw(st.booleans()):
        return f"{level}/{rtype}.{draw(st.sampled_from(['read', 'write', '*']))}"
    query = draw(SMALL_QUERIES)
    return f"{level}/{rtype}.{draw(V2_ACTIONS)}" + (f"?{query}" if query else "")


SCOPE_SETS = st.lists(
    st.one_of(small_scopes(), st.sampled_from(["launch", "launch/patient", "openid", "offline_access", "x"])),
    max_size=5,
).map(ScopeSet.parse)


def _within(inner: frozenset[Permission], outer: frozenset[Permission]) -> bool:
    return all(any(o.covers(i) for o in outer) for i in inner)


@settings(max_examples=300)
@given(SCOPE_SETS, SCOPE_SETS)
def test_granted_is_within_requested_and_allowed(requested: ScopeSet, allowed: ScopeSet):
    granted = narrow(requested, allowed)
    assert _within(granted.permissions(), requested.permissions())
    assert _within(granted.permissions(), allowed.permissions())
    assert set(granted.tokens()) - {s.text for s in granted.clinical} <= set(requested.tokens())
    assert ScopeSet.parse(str(granted)) == granted  # prints back as scope strings


@given(SCOPE_SETS)
def test_granting_everything_asked_changes_nothing(requested: ScopeSet):
    granted = narrow(requested, requested)
    assert _within(requested.permissions(), granted.permissions())
    assert set(requested.tokens()) <= set(granted.tokens())


def test_narrow_cuts_type_interactions_and_adds_allowed_restrictions():
    requested = ScopeSet.parse("patient/*.rs user/Observation.cruds launch/list?role=https://r openid profile")
    allowed = ScopeSet.parse(
        "patient/Observation.rs patient/Condition.r user/*.rs?category=laboratory launch/list openid"
    )
    granted = narrow(requested, allowed)
    assert granted.tokens() == (
        "patient/Observation.rs",
        "patient/Condition.r",
        "user/Observation.rs?category=laboratory",
        "launch/list?role=https://r",
        "openid",
    )


def test_narrow_keeps_v1_when_expressible_else_v2():
    granted = narrow(ScopeSet.parse("patient/Observation.*"), ScopeSet.parse("patient/*.read"))
    assert granted.tokens() == ("patient/Observation.read",)
    granted = narrow(ScopeSet.parse("patient/Observation.*"), ScopeSet.parse("patient/*.r"))
    assert granted.tokens() == ("patient/Observation.r",)


def test_identity_scopes_constant_matches_spec():
    assert {"openid", "fhirUser", "profile"} == IDENTITY_SCOPES
