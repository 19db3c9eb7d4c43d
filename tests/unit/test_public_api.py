"""The public API of the library packages, pinned (STYLE: pin __all__ in a test): a change here is a
change for every user of `pip install ostiary`, and must be deliberate."""

from __future__ import annotations

import importlib

import pytest

PUBLIC = {
    "ostiary.resource": {
        "ClaimPermissions", "DEFAULT_ALGORITHMS", "ErrorResponse", "Guard", "GuardError", "InsufficientScope",
        "Introspection", "InvalidRequest", "InvalidToken", "IssuerUnavailable", "MissingToken", "PermissionPolicy",
        "Principal", "RFC9068_REQUIRED", "TokenVerifier", "all_of", "scope_permissions",
    },
    "ostiary.client": {
        "CliLogin", "ClientAuth", "ClientCredentials", "ClientSecretBasic", "ClientSecretJwt", "ClientSecretPost",
        "ConfigError",
        "DiscoveryError", "LoginError", "NoClientAuth", "Pkce", "PrivateKeyJwt", "Secret", "Token", "TokenAuth",
        "TokenError", "TokenSource", "metadata_urls", "s256", "settings_from_env",
    },
    "ostiary.jwt": {"CompactSigner", "DEFAULT_LEEWAY", "JWTInvalid", "VerifiedJWT", "decode_unverified", "sign",
                    "verify"},
    "ostiary.keys": {
        "ASYMMETRIC_ALGS", "AsymmetricKey", "HMAC_ALGS", "KeyError_", "KeyStatus", "SigningKey", "alg_for_key",
        "b64url", "certificate_thumbprint", "generate_private_key", "import_jwk", "jwks_document", "key_set",
        "load_certificates", "load_pkcs12", "load_private_key", "private_key_pem", "self_signed_certificate",
        "signing_key_from_pem", "signing_key_from_pkcs12",
    },
}


@pytest.mark.parametrize("module", sorted(PUBLIC))
def test_all_is_pinned_and_every_name_exists(module):
    mod = importlib.import_module(module)
    assert set(mod.__all__) == PUBLIC[module]
    missing = [name for name in mod.__all__ if not hasattr(mod, name)]
    assert not missing
