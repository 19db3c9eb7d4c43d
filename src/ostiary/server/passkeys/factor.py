"""A passkey as a second factor (`provider.factors["passkey"]`, template `factor_passkey.html`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..factors import Proof
from .service import PasskeyError, PasskeyService

__all__ = ["PasskeyFactor"]


class PasskeyFactor:
    """WebAuthn assertion with allowCredentials = the user's credentials, bound to the interaction and user."""

    name = "passkey"
    phishing_resistant = True

    def __init__(self, service: PasskeyService) -> None:
        self._service = service

    async def enrolled(self, user_id: str) -> bool:
        return bool(await self._service.credentials.list_for_user(user_id))

    async def challenge(self, user_id: str, interaction_id: str) -> Mapping[str, Any]:
        """The request options, embedded in the page as JSON for static/passkeys.js."""
        return {"options": await self._service.authentication_options(interaction_id, user_id)}

    async def verify(self, user_id: str, interaction_id: str, form: Mapping[str, str]) -> Proof | None:
        try:
            return await self._service.authenticate(interaction_id, user_id, form.get("credential", ""))
        except PasskeyError:
            return None
