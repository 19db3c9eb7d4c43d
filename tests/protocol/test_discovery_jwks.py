"""Server metadata (RFC 8414 §2, §3; OIDC Discovery §4) and the JWKS (RFC 7517 §4-5, RFC 7638)."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from joserfc.jwk import KeySet

from ostiary.keys import generate_private_key, private_key_pem, self_signed_certificate, signing_key_from_pem
from tests.conftest import basic

from ._helpers import CC, ISSUER, client_token

INITIAL_TOKEN = "initial-token-for-tests"  # settings_for() default registration_token
PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}
WELL_KNOWN = ("/.well-known/oauth-authorization-server", "/.well-known/openid-configuration")


@pytest.mark.parametrize("path", WELL_KNOWN)
async def test_rfc8414_3_metadata_document_is_served(running, path):
    r = await running.http.get(path)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    meta = r.json()
    assert meta["issuer"] == ISSUER == running.settings.issuer
    for name in ("token_endpoint", "jwks_uri", "grant_types_supported", "token_endpoint_auth_methods_supported"):
        assert name in meta, name


async def test_rfc8414_3_both_well_known_documents_agree(running):
    a = (await running.http.get(WELL_KNOWN[0])).json()
    b = (await running.http.get(WELL_KNOWN[1])).json()
    assert a == b


async def test_rfc8414_2_endpoints_are_absolute_urls_under_the_issuer(running):
    meta = (await running.http.get(WELL_KNOWN[0])).json()
    for name, value in meta.items():
        if name.endswith(("_endpoint", "_uri")):
            assert value.startswith(ISSUER + "/"), name


async def test_rfc8414_2_advertised_grant_types_and_methods_are_supported(running):
    meta = (await running.http.get(WELL_KNOWN[0])).json()
    assert "client_credentials" in meta["grant_types_supported"]
    assert {"client_secret_basic", "client_secret_post", "client_secret_jwt", "private_key_jwt"} <= set(
        meta["token_endpoint_auth_methods_supported"])
    assert "none" not in meta["introspection_endpoint_auth_methods_supported"]


async def test_rfc8414_2_every_advertised_endpoint_works(running):
    meta = (await running.http.get(WELL_KNOWN[0])).json()
    path = {name: value.removeprefix(ISSUER) for name, value in meta.items() if isinstance(value, str)}
    cid, secret = await running.add_client(scope="api:read")
    r = await running.http.post(path["token_endpoint"], data=CC, headers=basic(cid, secret))
    assert r.status_code == 200, r.text
    token = r.json()["access_token"]
    r = await running.http.post(path["introspection_endpoint"], data={"token": token}, headers=basic(cid, secret))
    assert r.json()["active"] is True
    r = await running.http.post(path["revocation_endpoint"], data={"token": token}, headers=basic(cid, secret))
    assert r.status_code == 200
    r = await running.http.get(path["jwks_uri"])
    assert r.status_code == 200 and r.json()["keys"]
    r = await running.http.post(path["registration_endpoint"], json={"client_name": "via metadata",
                                                                   "grant_types": ["client_credentials"]},
                                headers={"Authorization": f"Bearer {INITIAL_TOKEN}"})
    assert r.status_code == 201, r.text


async def test_rfc7517_5_jwks_holds_only_public_keys(running):
    doc = (await running.http.get("/jwks")).json()
    assert doc["keys"]
    for jwk in doc["keys"]:
        assert not (PRIVATE_MEMBERS & set(jwk)), jwk
        assert jwk["kty"] in ("EC", "RSA", "OKP")


async def test_rfc7638_jwks_kid_is_thumbprint_use_sig_and_alg(running):
    doc = (await running.http.get("/jwks")).json()
    keys = KeySet.import_key_set(doc)
    for jwk, key in zip(doc["keys"], keys.keys, strict=True):
        assert jwk["kid"] == key.thumbprint()
        assert jwk["use"] == "sig"
        assert jwk["alg"] in running.provider.metadata["token_endpoint_auth_signing_alg_values_supported"]


async def test_rfc7517_5_jwks_kids_are_unique(running):
    kids = [k["kid"] for k in (await running.http.get("/jwks")).json()["keys"]]
    assert len(kids) == len(set(kids))


async def test_rfc7517_4_7_key_with_certificate_publishes_x5c_and_x5t_s256(running):
    private = generate_private_key("ES256")
    cert = self_signed_certificate(private, "ostiary test signer")
    key = signing_key_from_pem(private_key_pem(private), cert.public_bytes(serialization.Encoding.PEM),
                               status="next")  # published, never used to sign here
    assert await running.provider.key_store.add(key)
    await running.provider.keyring.refresh(force=True)
    doc = (await running.http.get("/jwks")).json()
    jwk = next(k for k in doc["keys"] if k["kid"] == key.kid)
    der = base64.b64decode(jwk["x5c"][0])
    assert x509.load_der_x509_certificate(der) == cert
    x5t = base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()
    assert jwk["x5t#S256"] == x5t
    assert not (PRIVATE_MEMBERS & set(jwk))


async def test_rfc9068_4_tokens_are_signed_by_a_published_key(running):
    cid, secret = await running.add_client(scope="api:read")
    token = (await client_token(running, cid, secret))["access_token"]
    keys = KeySet.import_key_set((await running.http.get("/jwks")).json())
    from joserfc import jwt as jose_jwt

    assert jose_jwt.decode(token, keys).claims["client_id"] == cid
