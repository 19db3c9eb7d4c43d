"""The state of one authorization interaction (login, account choice, consent), typed and frozen.

What the user did in this interaction is recorded here by the core, one typed field per fact; no
form field can mark a step as done. A credential verified in this interaction is the only thing
that satisfies re-authentication (`prompt=login`, `max_age`, `id_token_hint`: OIDC Core §3.1.2.1),
and it is bound to the session it created (its `sid`), so another tab's login does not count.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from .authorize import AuthorizationRequest
from .factors import FactorClass, Proof

__all__ = ["Authentication", "ConsentGiven", "Interaction", "Step", "proof_from_dict", "proof_to_dict"]

Step = Literal["login", "second_factor", "select_account", "consent", "select_patient"]


@dataclass(frozen=True, slots=True)
class Authentication:
    """A credential verified in this interaction: who, when (the `auth_time`), how (`amr`), which session."""

    user_id: str
    time: int
    amr: tuple[str, ...]
    sid: str
    acr: str | None = None


@dataclass(frozen=True, slots=True)
class ConsentGiven:
    """The user's answer on the consent page of this interaction: scopes and claims one by one."""

    scopes: tuple[str, ...]
    claims: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Interaction:
    """One pending authorization request and what the user has done about it so far."""

    id: str
    request: AuthorizationRequest
    authenticated: Authentication | None = None
    account_chosen: bool = False  # "continue as ..." on the account chooser (not a login)
    switching: bool = False  # "use another account": a login is needed whatever the session
    consent: ConsentGiven | None = None
    # RFC 9700 §4.11.2: the user has answered one of our pages, so an error may go back to the client.
    interacted: bool = False
    # The credentials verified in this interaction, all of one user (server.factors): the level they meet
    # is what `policy.levels` says; a session is made or upgraded once they meet the level needed.
    proofs: tuple[Proof, ...] = ()
    # A sign-in on the server's own pages (no client): the local path to go back to afterwards.
    return_to: str | None = None

    @property
    def local(self) -> bool:
        return self.return_to is not None

    def authenticated_in(self, sid: str) -> Authentication | None:
        """The credential verified in this interaction, if it made the session `sid`."""
        auth = self.authenticated
        return auth if auth is not None and auth.sid == sid else None

    def with_request(self, request: AuthorizationRequest) -> Interaction:
        return replace(self, request=request)

    def to_dict(self) -> dict[str, Any]:
        auth, consent = self.authenticated, self.consent
        return {
            "request": self.request.to_dict(),
            "authenticated": None if auth is None else {
                "user_id": auth.user_id, "time": auth.time, "amr": list(auth.amr), "sid": auth.sid, "acr": auth.acr},
            "account_chosen": self.account_chosen,
            "switching": self.switching,
            "consent": None if consent is None else {"scopes": list(consent.scopes), "claims": list(consent.claims)},
            "interacted": self.interacted,
            "proofs": [proof_to_dict(p) for p in self.proofs],
            "return_to": self.return_to,
        }

    @classmethod
    def from_dict(cls, interaction_id: str, data: Mapping[str, Any]) -> Interaction:
        """Unknown keys (an interaction stored by an older version) are ignored: nothing is assumed done."""
        auth, consent = data.get("authenticated"), data.get("consent")
        return cls(
            id=interaction_id,
            request=AuthorizationRequest.from_dict(data["request"]),
            authenticated=None if not isinstance(auth, dict) else Authentication(
                user_id=str(auth["user_id"]), time=int(auth["time"]), amr=tuple(auth["amr"]), sid=str(auth["sid"]),
                acr=auth.get("acr")),
            account_chosen=data.get("account_chosen") is True,
            switching=data.get("switching") is True,
            consent=None if not isinstance(consent, dict) else ConsentGiven(
                scopes=tuple(consent["scopes"]), claims=tuple(consent.get("claims", ()))),
            interacted=data.get("interacted") is True,
            proofs=tuple(proof_from_dict(p) for p in data.get("proofs") or () if isinstance(p, dict)),
            return_to=data["return_to"] if isinstance(data.get("return_to"), str) else None,
        )


def proof_to_dict(proof: Proof) -> dict[str, Any]:
    return {"user_id": proof.user_id, "amr": list(proof.amr), "classes": sorted(proof.classes),
            "phishing_resistant": proof.phishing_resistant, "hardware_bound": proof.hardware_bound,
            "time": proof.time, "acr": proof.acr}


def proof_from_dict(data: Mapping[str, Any]) -> Proof:
    classes: frozenset[FactorClass] = frozenset(
        c for c in ("knowledge", "possession", "inherence", "federated") if c in data.get("classes", ()))
    return Proof(user_id=str(data["user_id"]), amr=tuple(str(v) for v in data.get("amr", ())), classes=classes,
                 phishing_resistant=data.get("phishing_resistant") is True,
                 hardware_bound=data.get("hardware_bound") is True,
                 time=data["time"] if isinstance(data.get("time"), int) else None,
                 acr=data["acr"] if isinstance(data.get("acr"), str) else None)
