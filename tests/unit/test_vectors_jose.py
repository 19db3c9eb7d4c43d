"""RFC 7515 Appendix A and RFC 7520 §4 signature vectors: our hot-path verifier, joserfc, and the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from joserfc import jws

from ostiary.jwt_cli import jwt_group
from ostiary.keys import import_jwk
from ostiary.resource.compact import b64url_decode, parse_jwk, split_token

VECTORS = Path(__file__).parent.parent / "vectors"


def load() -> list[dict[str, Any]]:
    out = []
    for name in ("rfc7515_appendix_a.json", "rfc7520_section4.json"):
        doc = json.loads((VECTORS / name).read_text())
        for v in doc["vectors"]:
            jwk = v.get("jwk") or doc["keys"][v["key"]]["jwk"]
            payload = v.get("payload", doc.get("payload"))
            out.append({**v, "jwk": jwk, "payload": payload})
    return out


ALL = load()
ASYMMETRIC = [v for v in ALL if not v["alg"].startswith("HS")]


def ids(vectors: list[dict[str, Any]]) -> list[str]:
    return [v["id"] for v in vectors]


@pytest.mark.parametrize("vector", ALL, ids=ids(ALL))
def test_vector_verifies_with_joserfc(vector: dict[str, Any]):
    obj = jws.deserialize_compact(vector["compact"], import_jwk(vector["jwk"]), algorithms=[vector["alg"]])
    assert obj.payload.decode("utf-8") == vector["payload"]


@pytest.mark.parametrize("vector", ASYMMETRIC, ids=ids(ASYMMETRIC))
def test_vector_verifies_with_the_guard_hot_path(vector: dict[str, Any]):
    key = parse_jwk(vector["jwk"])
    assert key is not None and vector["alg"] in key.algs
    parts = split_token(vector["compact"])
    assert parts.header()["alg"] == vector["alg"]
    assert key.verify(vector["alg"], parts.signing_input, parts.signature())
    assert b64url_decode(parts.payload_b64).decode("utf-8") == vector["payload"]


@pytest.mark.parametrize("vector", ASYMMETRIC, ids=ids(ASYMMETRIC))
def test_vector_with_one_flipped_signature_bit_fails(vector: dict[str, Any]):
    key = parse_jwk(vector["jwk"])
    assert key is not None
    parts = split_token(vector["compact"])
    bad = bytearray(parts.signature())
    bad[len(bad) // 2] ^= 0x01
    assert not key.verify(vector["alg"], parts.signing_input, bytes(bad))


@pytest.mark.parametrize("vector", ASYMMETRIC, ids=ids(ASYMMETRIC))
def test_vector_signature_does_not_verify_under_another_alg_of_the_family(vector: dict[str, Any]):
    key = parse_jwk(vector["jwk"])
    assert key is not None
    parts = split_token(vector["compact"])
    others = [a for a in sorted(key.algs) if a != vector["alg"]]
    assert all(not key.verify(a, parts.signing_input, parts.signature()) for a in others)


def test_rfc7515_a_1_expired_jwt_is_refused_by_the_cli_after_its_signature_checks(tmp_path: Path):
    vector = next(v for v in ALL if v["id"] == "rfc7515-A.1")
    key = tmp_path / "k.json"
    key.write_text(json.dumps(vector["jwk"]))
    result = CliRunner().invoke(jwt_group, ["verify", vector["compact"], "--key", str(key)])
    assert result.exit_code == 1 and "expired" in result.stderr  # exp 1300819380 is in 2011


def test_rfc7515_a_5_unsecured_jws_is_refused():
    doc = json.loads((VECTORS / "rfc7515_appendix_a.json").read_text())
    for case in doc["must_reject"]:
        parts = split_token(case["compact"])
        assert parts.header() == {"alg": "none"} and parts.signature() == b""
        for vector in ASYMMETRIC:
            key = parse_jwk(vector["jwk"])
            assert key is not None and "none" not in key.algs
