"""The `SecondFactor`s `totp` and `recovery_code` (server/factors.py), registered in `provider.factors`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..factors import Proof
from . import recovery, totp
from .service import MfaService

__all__ = ["RecoveryCodeFactor", "TotpFactor"]


class TotpFactor:
    """A code from an authenticator app; its form field is `code`."""

    name = "totp"
    phishing_resistant = False

    def __init__(self, service: MfaService) -> None:
        self._service = service

    async def enrolled(self, user_id: str) -> bool:
        return await self._service.has_totp(user_id)

    async def challenge(self, user_id: str, interaction_id: str) -> Mapping[str, Any]:
        return {"digits": totp.DIGITS}

    async def verify(self, user_id: str, interaction_id: str, form: Mapping[str, str]) -> Proof | None:
        return await self._service.verify_totp(user_id, form.get("code", "")[:64])


class RecoveryCodeFactor:
    """One of the user's recovery codes; its form field is `recovery_code`."""

    name = "recovery_code"
    phishing_resistant = False

    def __init__(self, service: MfaService) -> None:
        self._service = service

    async def enrolled(self, user_id: str) -> bool:
        return await self._service.has_recovery_codes(user_id)

    async def challenge(self, user_id: str, interaction_id: str) -> Mapping[str, Any]:
        return {"max_length": recovery.MAX_INPUT}

    async def verify(self, user_id: str, interaction_id: str, form: Mapping[str, str]) -> Proof | None:
        return await self._service.verify_recovery_code(user_id, form.get("recovery_code", ""))
