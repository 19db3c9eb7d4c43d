"""TOTP (RFC 6238) and HOTP (RFC 4226) against the RFCs' test vectors; the ±1 step window; hostile input;
the otpauth URI; recovery-code format."""

from __future__ import annotations

import base64
from urllib.parse import parse_qs, urlsplit

import pytest

from ostiary.server.mfa import recovery, totp

RFC_SECRET = base64.b32encode(b"12345678901234567890").decode()  # RFC 4226 App. D / RFC 6238 App. B (SHA-1)


def test_hotp_matches_rfc4226_appendix_d() -> None:
    expected = ["755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"]
    assert [totp.code_at(RFC_SECRET, counter) for counter in range(10)] == expected


@pytest.mark.parametrize(("time", "eight_digits"), [
    (59, "94287082"), (1111111109, "07081804"), (1111111111, "14050471"), (1234567890, "89005924"),
    (2000000000, "69279037"), (20000000000, "65353130"),
])
def test_totp_matches_rfc6238_appendix_b_sha1(time: int, eight_digits: str) -> None:
    # RFC 6238 App. B lists 8 digits; 6 digits are the same value mod 10^6 (RFC 4226 §5.3)
    assert totp.code_at(RFC_SECRET, totp.step_at(time)) == eight_digits[-6:]


def test_window_is_one_step_either_side() -> None:
    secret = totp.new_secret()
    now = 1_700_000_015.0
    step = totp.step_at(now)
    for offset in (-1, 0, 1):
        assert totp.matching_step(secret, totp.code_at(secret, step + offset), now) == step + offset
    for offset in (-3, -2, 2, 3):
        code = totp.code_at(secret, step + offset)
        if all(code != totp.code_at(secret, step + o) for o in (-1, 0, 1)):
            assert totp.matching_step(secret, code, now) is None


def test_code_with_a_space_is_accepted_as_apps_show_it() -> None:
    secret = totp.new_secret()
    code = totp.code_at(secret, totp.step_at(1000.0))
    assert totp.matching_step(secret, f"{code[:3]} {code[3:]}", 1000.0) is not None


@pytest.mark.parametrize("typed", ["", "12345", "1234567", "abcdef", "\uff11\uff12\uff13\uff14\uff15\uff16",
                                   "12345\x00", "1" * 10_000, "-12345", "+12345", "12 34 5"])
def test_malformed_codes_are_refused(typed: str) -> None:
    assert totp.matching_step(RFC_SECRET, typed, 59) is None


def test_secret_is_160_bits_of_base32_without_padding() -> None:
    secret = totp.new_secret()
    assert len(secret) == 32 and "=" not in secret
    assert len(base64.b32decode(secret)) == 20
    assert totp.new_secret() != secret


def test_grouped_secret_reads_in_fours() -> None:
    assert totp.grouped("ABCDEFGHIJ") == "ABCD EFGH IJ"


def test_otpauth_uri_names_the_issuer_in_label_and_parameter() -> None:
    uri = totp.otpauth_uri("JBSWY3DPEHPK3PXP", "Acme Health", "alice@example.com")
    parts = urlsplit(uri)
    assert (parts.scheme, parts.netloc) == ("otpauth", "totp")
    assert parts.path == "/Acme%20Health:alice@example.com"
    query = parse_qs(parts.query)
    assert query == {"secret": ["JBSWY3DPEHPK3PXP"], "issuer": ["Acme Health"], "algorithm": ["SHA1"],
                     "digits": ["6"], "period": ["30"]}


def test_recovery_codes_are_distinct_readable_and_normalised() -> None:
    codes = recovery.new_codes()
    assert len(codes) == 10 == len(set(codes))
    for code in codes:
        assert len(code) == 19 and code.count("-") == 3
        assert recovery.normalise(code.upper().replace("-", " ")) == code.replace("-", "")
    assert recovery.normalise("x" * 65) is None
    assert recovery.normalise("0000-0000-0000-0000") is None  # 0 is not in the alphabet
    assert recovery.normalise("abcd") is None
