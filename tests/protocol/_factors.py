"""A fake second factor for the sign-in engine's tests (the contract of server.factors.SecondFactor)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import jinja2

from ostiary.server.factors import Proof

CODE = "123456"
PARTIAL = """<form method="post" action="{{ action }}">
  <input type="hidden" name="csrf_token" value="{{ csrf_token }}">
  <input type="hidden" name="factor" value="{{ factor_name }}">
  <label for="code-{{ factor_name }}">Code ({{ ctx.hint }})</label>
  <input id="code-{{ factor_name }}" name="code" autocomplete="one-time-code" inputmode="numeric">
  <button type="submit">Verify</button>
</form>"""


class FakeFactor:
    """Enrolled for the users in `users`; accepts CODE. Records every verify call."""

    def __init__(self, name: str = "fake", *, phishing_resistant: bool = False, hardware_bound: bool = False,
                 amr: tuple[str, ...] = ("otp",)) -> None:
        self.name = name
        self.phishing_resistant = phishing_resistant
        self.hardware_bound = hardware_bound
        self.amr = amr
        self.users: set[str] = set()
        self.verified: list[tuple[str, str]] = []

    async def enrolled(self, user_id: str) -> bool:
        return user_id in self.users

    async def challenge(self, user_id: str, interaction_id: str) -> Mapping[str, Any]:
        return {"hint": f"{self.name} for {user_id[:4]}"}

    async def verify(self, user_id: str, interaction_id: str, form: Mapping[str, str]) -> Proof | None:
        self.verified.append((user_id, interaction_id))
        if user_id not in self.users or form.get("code") != CODE:
            return None
        classes = frozenset({"possession", "inherence"}) if self.phishing_resistant else frozenset({"possession"})
        return Proof(user_id, self.amr, classes,  # type: ignore[arg-type]
                     phishing_resistant=self.phishing_resistant, hardware_bound=self.hardware_bound)


@contextmanager
def registered(running: Any, *factors: FakeFactor) -> Iterator[None]:
    """`factors` in provider.factors, each with its partial template, for the duration."""
    from ostiary.web import render

    env = render._env
    loader = env.loader
    env.loader = jinja2.ChoiceLoader([jinja2.DictLoader({f"factor_{f.name}.html": PARTIAL for f in factors}),
                                      loader])  # type: ignore[list-item]
    env.cache = {} if env.cache is not None else None
    for f in factors:
        running.provider.factors[f.name] = f
    try:
        yield
    finally:
        for f in factors:
            running.provider.factors.pop(f.name, None)
        env.loader = loader
        env.cache = {} if env.cache is not None else None
