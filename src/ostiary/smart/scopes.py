"""SMART scope descriptions for the consent page (the parser arrives with SMART App Launch support)."""

from __future__ import annotations

__all__ = ["describe_scope"]

_LEVEL = {"patient": "your", "user": "records you can see:", "system": "all"}
_ACTIONS = {"c": "create", "r": "read", "u": "update", "d": "delete", "s": "search"}
_V1 = {"read": "rs", "write": "cud", "*": "cruds"}


def describe_scope(scope: str) -> tuple[str, str] | None:
    """(text, detail) for a SMART clinical scope such as patient/Observation.rs; None if not one."""
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
    letters = _V1.get(actions, actions)
    verbs = [_ACTIONS[c] for c in letters if c in _ACTIONS]
    if not verbs:
        return None
    what = "all health records" if resource == "*" else f"{resource} records"
    return (f"{', '.join(verbs).capitalize()} {_LEVEL[level]} {what}".replace(": ", " "), scope)
