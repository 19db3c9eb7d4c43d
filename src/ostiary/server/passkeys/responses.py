"""Reading what a browser sent back from `navigator.credentials.create()` / `.get()`: hostile input.

The JSON is bounded in size before it is parsed, must be an object, must not come from a cross-origin
frame, and the challenge is read from its clientDataJSON only to find the ceremony it answers; every
other check (type, challenge, origin, RP ID hash, flags, signature) is the library's, which follows
WebAuthn Level 2 §7.1 and §7.2.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from typing import Any

import orjson

from ..factors import Proof

__all__ = ["MAX_RESPONSE_BYTES", "MalformedResponse", "b64decode", "b64encode", "challenge_digest", "parse",
           "passkey_proof"]

# An attestation of a registration with "none" conveyance is a few hundred bytes; certificate chains of
# packed or TPM attestation stay well under this.
MAX_RESPONSE_BYTES = 64 * 1024
MAX_ID_CHARS = 1400  # base64url of WebAuthn's 1023-byte credential id limit


class MalformedResponse(ValueError):
    """Not a WebAuthn response this server can read."""


def b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64decode(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise MalformedResponse("not base64url") from None


def challenge_digest(challenge: bytes) -> str:
    return hashlib.sha256(challenge).hexdigest()


def parse(text: str) -> tuple[dict[str, Any], bytes]:
    """The response object and the challenge it answers; raises MalformedResponse."""
    if len(text) > MAX_RESPONSE_BYTES:
        raise MalformedResponse("too large")
    try:
        payload = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise MalformedResponse("not JSON") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("response"), dict):
        raise MalformedResponse("not a credential")
    credential_id = payload.get("id")
    if not isinstance(credential_id, str) or not 0 < len(credential_id) <= MAX_ID_CHARS:
        raise MalformedResponse("no credential id")
    client_data = payload["response"].get("clientDataJSON")
    if not isinstance(client_data, str):
        raise MalformedResponse("no clientDataJSON")
    try:
        collected = orjson.loads(b64decode(client_data))
    except orjson.JSONDecodeError:
        raise MalformedResponse("clientDataJSON is not JSON") from None
    if isinstance(collected, Mapping) and (collected.get("crossOrigin") is True or "topOrigin" in collected):
        # WebAuthn L3 §7.1 / §7.2: made inside a frame of another site; this server's pages refuse framing,
        # so it never expects one (a clickjacked ceremony, were a page ever framed).
        raise MalformedResponse("made in a cross-origin frame")
    challenge = collected.get("challenge") if isinstance(collected, Mapping) else None
    if not isinstance(challenge, str) or len(challenge) > 256:
        raise MalformedResponse("no challenge")
    return payload, b64decode(challenge)


def passkey_proof(user_id: str, backup_eligible: bool, user_verified: bool) -> Proof:
    """RFC 8176 values of one verified assertion (docs/sign-in.md "Passkeys"):

    - `hwk` for a credential that cannot leave its authenticator (not backup-eligible), else `swk`;
    - user verification (the UV flag) is a second factor class, so `combined_amr` adds `mfa`; the flag
      does not say whether a PIN or a biometric was used, so neither `pin` nor `fpt` is stated. The class
      is recorded as knowledge: every verifying authenticator has a PIN or device passcode behind it.
    """
    return Proof(user_id=user_id, amr=("swk",) if backup_eligible else ("hwk",),
                 classes=frozenset({"possession", "knowledge"}) if user_verified else frozenset({"possession"}),
                 phishing_resistant=True, hardware_bound=not backup_eligible)
