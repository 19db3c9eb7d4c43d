"""Authentication levels (policy.levels) and RFC 8176 amr combination (server.factors)."""

from __future__ import annotations

import pytest

from ostiary.server.factors import Proof, combined_amr
from ostiary.server.policy.levels import MFA, PASSWORD, PHR, PHRH, achieved, is_met, missing, strictest

PWD = Proof("u", ("pwd",), frozenset({"knowledge"}))
OTP = Proof("u", ("otp",), frozenset({"possession"}))
SYNCED_PASSKEY_UV = Proof("u", ("swk", "user"), frozenset({"possession", "inherence"}), phishing_resistant=True)
HW_PASSKEY = Proof("u", ("hwk",), frozenset({"possession"}), phishing_resistant=True, hardware_bound=True)
FED = Proof("u", ("fed",), frozenset({"federated"}))
FED_TRUSTED_MFA = Proof("u", ("fed",), frozenset({"federated"}), acr=MFA)


def test_rfc8176_mfa_is_added_only_for_two_factor_classes():
    assert combined_amr([PWD]) == ("pwd",)
    assert combined_amr([PWD, OTP]) == ("pwd", "otp", "mfa")
    assert combined_amr([PWD, PWD]) == ("pwd",)
    assert combined_amr([FED]) == ("fed",)  # an upstream sign-in alone is one factor, whatever it says
    # ... and one factor of its own: with a local second factor, two (docs/sign-in.md, federation)
    assert combined_amr([FED, OTP]) == ("fed", "otp", "mfa")


@pytest.mark.parametrize(("proofs", "level"), [
    ([PWD], PASSWORD), ([PWD, OTP], MFA), ([SYNCED_PASSKEY_UV], PHR), ([PWD, HW_PASSKEY], PHRH),
    ([HW_PASSKEY], PASSWORD), ([FED], PASSWORD), ([FED_TRUSTED_MFA], MFA), ([FED, OTP], MFA), ([], None),
])
def test_the_strictest_level_met_is_stated(proofs, level):
    assert achieved(proofs) == level


def test_what_is_missing_names_the_step():
    assert missing(MFA, []) == "login"
    assert missing(MFA, [PWD]) == "second_factor"
    assert missing(PHR, [PWD, OTP]) == "phishing_resistant"
    assert missing(PHRH, [SYNCED_PASSKEY_UV]) == "hardware_bound"
    assert missing(PHRH, [PWD, HW_PASSKEY]) is None


def test_an_untrusted_upstream_never_defaults_to_multi_factor():
    assert missing(MFA, [FED]) == "second_factor"
    assert not is_met(MFA, [FED])


def test_unknown_levels_are_never_met_and_never_strictest():
    assert not is_met("urn:example:gold", [PWD, OTP])
    assert strictest(["urn:example:gold", None]) is None
    assert strictest([PASSWORD, PHR, MFA]) == PHR


def test_oidc_3_1_2_1_acr_values_out_of_reach_is_given_up_not_refused() -> None:
    """acr_values is voluntary: a synced passkey (passwordless, user verified) asked for `phrh` cannot become
    hardware-bound, so the sign-in goes on at the level it met (phr) instead of asking or failing."""
    from types import SimpleNamespace

    from ostiary.server.signin.requirement import Need

    passkey = SimpleNamespace(name="passkey", phishing_resistant=True)
    need = Need(MFA, PHRH, (passkey,))  # type: ignore[arg-type]
    assert need.gap([SYNCED_PASSKEY_UV]) is None and achieved([SYNCED_PASSKEY_UV]) == PHR
    assert need.gap([PWD]) == "second_factor"  # the floor is never given up
    assert Need(MFA, PHRH, (passkey,)).gap([HW_PASSKEY, PWD]) is None  # type: ignore[arg-type]


def test_oidc_core_5_5_1_1_essential_acr_values_not_an_array_is_never_any_level() -> None:
    """Attack (red team): `"values": "urn:ostiary:acr:mfa"` (a string, not the array §5.5.1 defines) was read
    as "any acr", so a client that asked for multi-factor as essential got a password sign-in. A string
    is read as its one value; anything else names no level (the request then cannot be met)."""
    from ostiary.server.signin.requirement import essential_acr

    assert essential_acr({"id_token": {"acr": {"essential": True, "values": MFA}}}) == (MFA,)
    for odd in (5, {"a": 1}, None, True):
        values = essential_acr({"id_token": {"acr": {"essential": True, "values": odd}}})
        assert values and all(v not in (MFA, PASSWORD) for v in values)
    assert essential_acr({"id_token": {"acr": {"essential": True}}}) == ()  # any acr, as §5.5.1.1 allows
