"""What one call of the sign-in service answers: show a step, redirect, finish, or an error page.

The web layer renders these and nothing else: it never decides what comes next.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ...errors import PageError
from ...store.identity import User
from ..flow import AuthorizationResponse
from ..interaction import Interaction, Step

__all__ = ["ErrorPage", "FactorChoice", "Finish", "Outcome", "Redirect", "ShowStep"]


@dataclass(frozen=True, slots=True)
class FactorChoice:
    """One enrolled second factor on the second-factor page: its partial `factor_<name>.html` gets `ctx`."""

    name: str
    ctx: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ShowStep:
    """Show the page of `step` (the interaction's request as the step sees it, e.g. reduced scopes)."""

    step: Step
    interaction: Interaction
    user: User | None = None  # who is signing in (None on the login page)
    factors: tuple[FactorChoice, ...] = ()
    error: str | None = None
    status: int = 200
    username: str | None = None  # the login form's value to show again
    retry_after: int | None = None  # throttled (RFC 9110 §10.2.3)


@dataclass(frozen=True, slots=True)
class Redirect:
    """Go to a page of this server: the interaction's next step, or a local sign-in's `return_to`."""

    location: str
    cookie: str | None = None  # a new session cookie value (a session made or upgraded: no fixation)
    starts: Interaction | None = None  # a new interaction: set its browser-binding cookie
    ends: Interaction | None = None  # the interaction is over: clear its cookie


@dataclass(frozen=True, slots=True)
class Finish:
    """The answer for the client (a redirect or form_post with a code or an error), or an error page
    where an error must not go back to the client; the interaction is over."""

    response: AuthorizationResponse | PageError
    interaction: Interaction | None = None


@dataclass(frozen=True, slots=True)
class ErrorPage:
    error: PageError
    status: int = 400


Outcome = ShowStep | Redirect | Finish | ErrorPage
