"""Guessing a second factor (RFC 6238 §5.2, NIST SP 800-63B §5.2.2): the attack is a thief who has the
password and tries authenticator codes for a day, from as many addresses and sign-ins as they like.

A 6-digit code has a million values and three are accepted at any time (the ±1 step window), so each
guess wins with probability 3e-6: the login throttle's one guess a minute (1,440 a day, 0.4 % a day,
about 12 % a month) is fine for a password but not for a code. Codes get their own rule."""

from __future__ import annotations

import contextlib

import pytest

from ostiary.config import load_settings
from ostiary.server.factors import FactorThrottled
from ostiary.server.mfa import service as mfa_service
from ostiary.server.mfa.service import MfaService
from ostiary.server.users import login_limits
from ostiary.store.memory import open_memory

DAY = 86_400


@pytest.mark.parametrize("factor", ["totp", "recovery_code"])
async def test_a_day_of_guessing_checks_about_a_hundred_codes(monkeypatch: pytest.MonkeyPatch, factor: str) -> None:
    stores = open_memory()
    settings = load_settings(env={}, database_url="sqlite+aiosqlite:///unused.db")
    mfa = MfaService(stores.mfa, stores.throttle, login_limits(settings).user, "Test", stores.sessions)
    checked: list[str] = []
    real_totp, real_code = stores.mfa.totp, stores.mfa.use_recovery_code

    async def totp(user_id: str):  # type: ignore[no-untyped-def]
        checked.append(user_id)
        return await real_totp(user_id)

    async def use_recovery_code(user_id: str, digest: str) -> bool:
        checked.append(user_id)
        return await real_code(user_id, digest)

    monkeypatch.setattr(stores.mfa, "totp", totp)
    monkeypatch.setattr(stores.mfa, "use_recovery_code", use_recovery_code)
    start = 1_800_000_000
    for second in range(0, DAY, 5):  # a guess every 5 seconds, all day
        monkeypatch.setattr(mfa_service.time, "time", lambda s=second: float(start + s))
        with contextlib.suppress(FactorThrottled):  # not checked: wait
            if factor == "totp":
                await mfa.verify_totp("victim", "000000")
            else:
                await mfa.verify_recovery_code("victim", "aaaa-bbbb-cccc-dddd")
    assert len(checked) <= 120, f"{len(checked)} codes checked in a day"
