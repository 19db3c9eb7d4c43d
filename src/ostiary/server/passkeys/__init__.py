"""Passkeys (W3C WebAuthn Level 2) through py_webauthn: the relying party, the ceremonies, the second factor."""

from .factor import PasskeyFactor
from .relying_party import PasskeysOff, RelyingParty
from .service import PasskeyError, PasskeyService

__all__ = ["PasskeyError", "PasskeyFactor", "PasskeyService", "PasskeysOff", "RelyingParty"]
