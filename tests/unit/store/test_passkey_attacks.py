"""Red-team attacks on passkey ceremonies (W3C WebAuthn), over every backend: each test names the rule
and the attack it stops."""

from __future__ import annotations

import logging

import pytest

from ostiary.server.passkeys import PasskeyError, PasskeyFactor, PasskeyService
from ostiary.store.backend import Stores
from tests.unit.store.test_passkeys import enrolled, iid, new_user, service

__all__ = ["service"]


@pytest.mark.parametrize("registered_synced", [False, True])
async def test_webauthn_l3_7_2_backup_eligibility_that_changed_since_registration_is_refused(
        service: PasskeyService, stores: Stores, caplog: pytest.LogCaptureFixture, registered_synced: bool) -> None:
    """WebAuthn Level 3 §7.2 (BE is fixed for a credential's life: "verify that currentBe is set" exactly
    when the stored backupEligible is). Attack: a key registered as device-bound (hwk, meets phrh) later
    reports that it can be synced; its proof would still say hwk/phrh for a key that may be copied."""
    user = await new_user(stores)
    device = await enrolled(service, user, backup_eligible=registered_synced)
    device.backup_eligible = not registered_synced
    interaction = iid()
    with caplog.at_level(logging.INFO, "ostiary.audit"), pytest.raises(PasskeyError):
        await service.authenticate(interaction, None, device.get(
            await service.authentication_options(interaction, None)))
    assert '"event":"passkey_failed"' in caplog.text and "backup eligibility" in caplog.text
    factor, second = PasskeyFactor(service), iid()  # the same as a second factor
    ctx = await factor.challenge(user.id, second)
    assert await factor.verify(user.id, second, {"credential": device.get(dict(ctx["options"]))}) is None
    device.backup_eligible = registered_synced  # the legitimate authenticator still works
    interaction = iid()
    proof = await service.authenticate(interaction, None, device.get(
        await service.authentication_options(interaction, None)))
    assert proof.hardware_bound is (not registered_synced)
