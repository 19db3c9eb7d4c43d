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

__all__ = ["Authentication", "ConsentGiven", "Interaction", "Step"]

Step = Literal["login", "consent", "select_account", "select_patient"]


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
        )
