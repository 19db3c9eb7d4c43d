"""Passkey ceremonies (W3C WebAuthn Level 2 §7): register on the account page, sign in with one.

Every challenge is random (32 bytes), kept under its digest with what it is for and what it is bound
to (the session for a registration, the interaction and, as a second factor, the user for a sign-in),
lives `lifetime` seconds and is taken by one atomic statement before the response is verified: a
replayed or twice-submitted response finds nothing. Every refusal is audited (`passkey_failed`).
"""

from __future__ import annotations

import logging
import secrets
import time
import unicodedata
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    CredentialDeviceType,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from ...store.identity import Session, SessionStore, User, UserStore
from ...store.passkeys import CeremonyChallenge, ChallengeStore, PasskeyCredential, PasskeyStore, Purpose
from ..audit import audit
from ..factors import Proof
from .relying_party import RelyingParty
from .responses import MAX_ID_CHARS, MalformedResponse, b64decode, b64encode, challenge_digest, parse, passkey_proof

__all__ = ["MAX_CREDENTIALS", "PasskeyError", "PasskeyService"]

MAX_CREDENTIALS = 20  # per user: bounds the allowCredentials / excludeCredentials lists and the table
_TRANSPORTS = frozenset(t.value for t in AuthenticatorTransport)
_BAD_RESPONSE = (WebAuthnException, MalformedResponse, ValueError, TypeError, KeyError, IndexError)


class PasskeyError(Exception):
    """A refused ceremony; the message is for the user and names no internals."""


def _descriptors(credentials: Sequence[PasskeyCredential]) -> list[PublicKeyCredentialDescriptor]:
    return [PublicKeyCredentialDescriptor(id=b64decode(c.credential_id),
                                          transports=[AuthenticatorTransport(t) for t in c.transports])
            for c in credentials]


def _same_handle(sent: object, registered: str) -> bool:
    try:
        return isinstance(sent, str) and b64decode(sent) == b64decode(registered)
    except MalformedResponse:
        return False


def clean_name(name: str, fallback: str) -> str:
    """A credential name to show: printable, one line, at most 64 characters."""
    text = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip()
    return text[:64] or fallback


class PasskeyService:
    def __init__(self, rp: RelyingParty, credentials: PasskeyStore, challenges: ChallengeStore, users: UserStore,
                 sessions: SessionStore, *, lifetime: int = 300, clock: Callable[[], float] = time.time) -> None:
        self.rp = rp
        self.credentials = credentials
        self._challenges = challenges
        self._users = users
        self._sessions = sessions
        self._lifetime = lifetime
        self._clock = clock

    async def _challenge(self, purpose: Purpose, binding: str, user_id: str | None,
                         user_handle: str | None = None) -> bytes:
        value, now = secrets.token_bytes(32), int(self._clock())
        await self._challenges.put(CeremonyChallenge(challenge_digest(value), purpose, binding, user_id, user_handle,
                                                     now + self._lifetime), now)
        return value

    async def _take(self, response: str, purpose: Purpose, binding: str,
                    user_id: str | None) -> tuple[dict[str, Any], bytes, CeremonyChallenge]:
        """The parsed response and its challenge, taken (single use); raises PasskeyError."""
        try:
            payload, challenge = parse(response)
        except MalformedResponse as exc:
            raise self._refuse(purpose, user_id, f"malformed response: {exc}") from None
        taken = await self._challenges.take(challenge_digest(challenge), int(self._clock()))
        if taken is None or (taken.purpose, taken.binding, taken.user_id) != (purpose, binding, user_id):
            raise self._refuse(purpose, user_id, "unknown, expired, used or foreign challenge")
        return payload, challenge, taken

    @staticmethod
    def _refuse(purpose: str, user_id: str | None, reason: str, **fields: Any) -> PasskeyError:
        audit("passkey_failed", level=logging.WARNING, purpose=purpose, sub=user_id, reason=reason, **fields)
        return PasskeyError("The passkey could not be verified. Please try again.")

    async def registration_options(self, user: User, session: Session) -> dict[str, Any]:
        """`PublicKeyCredentialCreationOptions` (JSON) for a new credential of `user` in `session`."""
        existing = await self.credentials.list_for_user(user.id)
        if len(existing) >= MAX_CREDENTIALS:
            raise PasskeyError(f"You already have {MAX_CREDENTIALS} passkeys; remove one first.")
        # WebAuthn §14.6.1: the user handle is random, not the username; one per user across credentials.
        handle = existing[0].user_handle if existing else b64encode(secrets.token_bytes(32))
        challenge = await self._challenge("register", session.sid, user.id, handle)
        display = user.claims.get("name")
        options = generate_registration_options(
            rp_id=self.rp.id, rp_name=self.rp.name, user_name=user.username, user_id=b64decode(handle),
            user_display_name=display if isinstance(display, str) and display else user.username,
            challenge=challenge, timeout=self._lifetime * 1000, exclude_credentials=_descriptors(existing),
            authenticator_selection=AuthenticatorSelectionCriteria(
                resident_key=ResidentKeyRequirement.REQUIRED, user_verification=UserVerificationRequirement.PREFERRED))
        result: dict[str, Any] = orjson.loads(options_to_json(options))
        return result

    async def register(self, user: User, session: Session, response: str, name: str) -> PasskeyCredential:
        """Verify a registration response (§7.1) and store the credential; raises PasskeyError.

        Every other session of the user ends (`session`, which added it, goes on), as when an
        authenticator app is set up: a phished password's session must not outlive the factor added
        to lock it out (docs/security.md)."""
        payload, challenge, taken = await self._take(response, "register", session.sid, user.id)
        try:
            verified = verify_registration_response(credential=payload, expected_challenge=challenge,
                                                    expected_rp_id=self.rp.id, expected_origin=self.rp.origin)
        except _BAD_RESPONSE as exc:
            raise self._refuse("register", user.id, str(exc)[:200]) from None
        transports = payload["response"].get("transports")
        now = int(self._clock())
        credential = PasskeyCredential(
            credential_id=b64encode(verified.credential_id), user_id=user.id, user_handle=taken.user_handle or "",
            public_key=verified.credential_public_key, sign_count=verified.sign_count,
            transports=tuple(t for t in transports if t in _TRANSPORTS)[:8] if isinstance(transports, list) else (),
            backup_eligible=verified.credential_device_type == CredentialDeviceType.MULTI_DEVICE,
            backed_up=verified.credential_backed_up, name=clean_name(name, "Passkey"), created_at=now)
        if not await self.credentials.add(credential):
            raise self._refuse("register", user.id, "credential id already registered")
        ended = await self._sessions.delete_for_user(user.id, keep=session.digest)
        audit("passkey_registered", sub=user.id, credential=credential.credential_id[:16],
              backup_eligible=credential.backup_eligible, user_verified=verified.user_verified, sessions_ended=ended)
        return credential

    async def authentication_options(self, interaction_id: str, user_id: str | None) -> dict[str, Any]:
        """`PublicKeyCredentialRequestOptions` (JSON): passwordless (`user_id` None, discoverable
        credentials, user verification required) or as the second factor of `user_id`."""
        allowed = await self.credentials.list_for_user(user_id) if user_id is not None else ()
        purpose: Purpose = "passwordless" if user_id is None else "second_factor"
        challenge = await self._challenge(purpose, interaction_id, user_id)
        options = generate_authentication_options(
            rp_id=self.rp.id, challenge=challenge, timeout=self._lifetime * 1000,
            allow_credentials=_descriptors(allowed),
            user_verification=UserVerificationRequirement.REQUIRED if user_id is None
            else UserVerificationRequirement.PREFERRED)
        result: dict[str, Any] = orjson.loads(options_to_json(options))
        return result

    async def authenticate(self, interaction_id: str, user_id: str | None, response: str) -> Proof:
        """Verify an assertion (§7.2) answering this interaction's challenge; raises PasskeyError."""
        purpose: Purpose = "passwordless" if user_id is None else "second_factor"
        payload, challenge, _ = await self._take(response, purpose, interaction_id, user_id)
        credential = await self.credentials.get(payload["id"])
        # §7.2 steps 5-6: the credential must be one of the user's (second factor) or, discovered, carry
        # the user handle it was registered with.
        if credential is None or (user_id is not None and credential.user_id != user_id):
            raise self._refuse(purpose, user_id, "unknown credential or another user's")
        if user_id is None and not _same_handle(payload["response"].get("userHandle"), credential.user_handle):
            raise self._refuse(purpose, user_id, "user handle does not match the credential")
        user = await self._users.get(credential.user_id)
        if user is None or user.disabled:
            raise self._refuse(purpose, credential.user_id, "user unknown or disabled")
        try:
            # The counter is compared below, after the signature: an unsigned one proves nothing.
            verified = verify_authentication_response(
                credential=payload, expected_challenge=challenge, expected_rp_id=self.rp.id,
                expected_origin=self.rp.origin, credential_public_key=credential.public_key,
                credential_current_sign_count=0, require_user_verification=user_id is None)
        except _BAD_RESPONSE as exc:
            raise self._refuse(purpose, credential.user_id, str(exc)[:200]) from None
        if (verified.credential_device_type == CredentialDeviceType.MULTI_DEVICE) != credential.backup_eligible:
            # WebAuthn Level 3 §7.2: BE is fixed for a credential's life; a device-bound key (hwk, phrh)
            # that now says it can be synced is not the key that was registered as device-bound.
            raise self._refuse(purpose, credential.user_id, "backup eligibility changed since registration",
                               credential=credential.credential_id[:16])
        stored, new = credential.sign_count, verified.new_sign_count
        regressed = (new > 0 or stored > 0) and new <= stored  # §7.2 step 21: a cloned authenticator?
        if regressed or not await self.credentials.record_use(credential.credential_id, new,
                                                              verified.credential_backed_up, int(self._clock())):
            raise self._refuse(purpose, credential.user_id, "signature counter did not grow",
                               credential=credential.credential_id[:16], stored=stored, received=new)
        audit("passkey_used", sub=credential.user_id, credential=credential.credential_id[:16], purpose=purpose,
              user_verified=verified.user_verified, backup_eligible=credential.backup_eligible)
        return passkey_proof(credential.user_id, credential.backup_eligible, verified.user_verified)

    async def rename(self, user_id: str, credential_id: str, name: str) -> bool:
        return await self.credentials.rename(user_id, credential_id[:MAX_ID_CHARS], clean_name(name, "Passkey"))

    async def remove(self, user_id: str, credential_id: str) -> bool:
        removed = await self.credentials.remove(user_id, credential_id[:MAX_ID_CHARS])
        if removed:
            audit("passkey_removed", sub=user_id, credential=credential_id[:16])
        return removed
