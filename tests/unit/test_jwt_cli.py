"""``ostiary jwt``: keygen, sign, verify, decode, thumbprint through click's CliRunner."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.serialization import NoEncryption, pkcs12

from ostiary.jwt_cli import jwt_group, parse_duration
from ostiary.keys import load_certificates, load_private_key


def run(*args: str, input: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(jwt_group, list(args), input=input)
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("key_type,alg", [
    ("ec-p256", "ES256"), ("ec-p384", "ES384"), ("ec-p521", "ES512"), ("rsa", "RS256"), ("ed25519", "EdDSA"),
])
def test_keygen_sign_verify_round_trip(tmp_path: Path, key_type: str, alg: str):
    key = tmp_path / "key.pem"
    code, out, err = run("keygen", "--type", key_type, "--out", str(key))
    assert code == 0, err
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    jwk = json.loads(out)
    assert jwk["alg"] == alg and "d" not in jwk
    code, token, err = run("sign", "--key", str(key), "--iss", "me", "--sub", "you", "--aud", "api",
                           "--claim", "admin=true", "--claim", "team=blue", "--exp", "10m")
    assert code == 0, err
    code, out, err = run("verify", token.strip(), "--key", str(key), "--iss", "me", "--aud", "api")
    assert code == 0, err
    claims = json.loads(out)["claims"]
    assert claims["admin"] is True and claims["team"] == "blue" and claims["exp"] - claims["iat"] == 600


def test_rfc7638_keygen_kid_is_the_thumbprint(tmp_path: Path):
    key = tmp_path / "k.pem"
    _, out, _ = run("keygen", "--out", str(key))
    code, tp, _ = run("thumbprint", str(key))
    assert code == 0 and tp.strip() == json.loads(out)["kid"]


def test_rfc7638_3_1_thumbprint_of_the_rfc_example_jwk(tmp_path: Path):
    jwk = {
        "kty": "RSA",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiF"
             "V4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9"
             "c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1"
             "jF44-csFCur-kEgU8awapJzKnqDKgw",
        "e": "AQAB", "alg": "RS256", "kid": "2011-04-29",
    }
    path = tmp_path / "k.json"
    path.write_text(json.dumps(jwk))
    code, out, _ = run("thumbprint", str(path))
    assert code == 0 and out.strip() == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_x509_key_and_certificate_sign_with_x5t_and_verify_by_certificate(tmp_path: Path):
    key = tmp_path / "svc.pem"
    code, _, err = run("keygen", "--out", str(key), "--x509", "--subject", "svc.example")
    assert code == 0 and "x5t#S256" in err
    cert = tmp_path / "svc.crt"
    code, token, err = run("sign", "--key", str(key), "--cert", str(cert), "--sub", "svc", "--typ", "at+jwt")
    assert code == 0, err
    code, out, err = run("verify", token.strip(), "--key", str(cert), "--typ", "at+jwt")
    assert code == 0, err
    header = json.loads(out)["header"]
    assert header["typ"] == "at+jwt" and "x5t#S256" in header
    code, _tp, err = run("thumbprint", str(cert))
    assert code == 0 and header["x5t#S256"] in err


def test_sign_with_pkcs12_and_jwk_files(tmp_path: Path):
    key = tmp_path / "k.pem"
    run("keygen", "--out", str(key), "--x509", "--subject", "p12")
    private = load_private_key(key.read_bytes())
    cert = load_certificates((tmp_path / "k.crt").read_bytes())[0]
    p12 = tmp_path / "k.p12"
    p12.write_bytes(pkcs12.serialize_key_and_certificates(b"k", private, cert, None, NoEncryption()))  # type: ignore[arg-type]
    code, token, err = run("sign", "--key", str(p12), "--sub", "x")
    assert code == 0, err
    assert run("verify", token.strip(), "--key", str(tmp_path / "k.crt"))[0] == 0
    oct_jwk = tmp_path / "hmac.json"
    secret = "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"
    oct_jwk.write_text(json.dumps({"kty": "oct", "k": secret}))
    code, token, err = run("sign", "--key", str(oct_jwk), "--sub", "x")
    assert code == 0, err
    assert run("verify", token.strip(), "--key", str(oct_jwk))[0] == 0


def test_verify_fails_with_reason_and_nonzero_exit(tmp_path: Path):
    key, other = tmp_path / "a.pem", tmp_path / "b.pem"
    run("keygen", "--out", str(key))
    run("keygen", "--out", str(other))
    _, token, _ = run("sign", "--key", str(key), "--aud", "api")
    code, _, err = run("verify", token.strip(), "--key", str(other))
    assert code == 1 and err.startswith("invalid:")
    code, _, err = run("verify", token.strip(), "--key", str(key), "--aud", "other")
    assert code == 1 and "audience" in err
    _, expired, _ = run("sign", "--key", str(key), "--claims", '{"exp": 1000, "iat": 900}')
    code, _, err = run("verify", expired.strip(), "--key", str(key))
    assert code == 1 and "expired" in err
    code, _, err = run("verify", "not-a-token", "--key", str(key))
    assert code == 1


def test_verify_against_jwks_file_and_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    key = tmp_path / "k.pem"
    _, jwk, _ = run("keygen", "--out", str(key))
    jwks = {"keys": [json.loads(jwk)]}
    (tmp_path / "jwks.json").write_text(json.dumps(jwks))
    _, token, _ = run("sign", "--key", str(key))
    assert run("verify", token.strip(), "--key", str(tmp_path / "jwks.json"))[0] == 0

    def fake_get(url: str, timeout: float) -> httpx.Response:
        return httpx.Response(200, json=jwks, request=httpx.Request("GET", url))

    monkeypatch.setattr(httpx, "get", fake_get)
    code, _, err = run("verify", "-", "--jwks-url", "https://as.example/jwks", input=token)
    assert code == 0, err


def test_decode_shows_header_claims_and_readable_times(tmp_path: Path):
    key = tmp_path / "k.pem"
    run("keygen", "--out", str(key))
    _, token, _ = run("sign", "--key", str(key), "--sub", "x", "--exp", "2h")
    code, out, err = run("decode", token.strip())
    assert code == 0 and "not verified" in err
    doc = json.loads(out)
    assert doc["claims"]["sub"] == "x" and doc["header"]["alg"] == "ES256"
    exp = doc["times"]["exp"]
    assert "UTC" in exp and ("in 1h59m" in exp or "in 2h" in exp)


def test_rfc8725_3_1_verify_refuses_alg_none(tmp_path: Path):
    key = tmp_path / "k.pem"
    run("keygen", "--out", str(key))
    none_token = (
        "eyJhbGciOiJub25lIn0."
        "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ."
    )
    code, _, err = run("verify", none_token, "--key", str(key))
    assert code == 1 and "not allowed" in err


@pytest.mark.parametrize("text,seconds", [("90", 90), ("90s", 90), ("15m", 900), ("1h30m", 5400), ("2d", 172800)])
def test_durations(text: str, seconds: int):
    assert parse_duration(text) == seconds


def test_bad_duration_is_a_usage_error(tmp_path: Path):
    key = tmp_path / "k.pem"
    run("keygen", "--out", str(key))
    code, _, err = run("sign", "--key", str(key), "--exp", "soon")
    assert code == 2 and "duration" in err


def test_keygen_alg_and_jwks_give_a_key_set_for_rs384_client_assertions(tmp_path):
    """An RSA key published for RS384 assertions (SMART Backend Services) carries alg RS384 in a JWK Set."""
    import json as _json

    from click.testing import CliRunner

    from ostiary.jwt_cli import jwt_group

    result = CliRunner().invoke(jwt_group, ["keygen", "--type", "rsa", "--alg", "RS384", "--jwks",
                                            "--out", str(tmp_path / "k.pem")])
    assert result.exit_code == 0, result.output
    doc = _json.loads(result.stdout)
    assert [k["alg"] for k in doc["keys"]] == ["RS384"]
    bad = CliRunner().invoke(jwt_group, ["keygen", "--type", "ec-p256", "--alg", "RS384",
                                         "--out", str(tmp_path / "e.pem")])
    assert bad.exit_code != 0 and "does not fit" in bad.output
