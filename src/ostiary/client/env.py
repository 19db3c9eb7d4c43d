"""Client configuration from the environment; every variable also has a ``*_FILE`` form naming a file.

OSTIARY_CLIENT_ID, OSTIARY_CLIENT_SECRET, OSTIARY_TOKEN_URL or OSTIARY_ISSUER (discovery finds the
token_endpoint), OSTIARY_SCOPE, OSTIARY_RESOURCE, OSTIARY_CLIENT_AUTH_METHOD (client_secret_basic,
client_secret_post, client_secret_jwt or private_key_jwt), OSTIARY_CLIENT_KEY and OSTIARY_CLIENT_CERT (PEM, for
private_key_jwt; usually given as OSTIARY_CLIENT_KEY_FILE / OSTIARY_CLIENT_CERT_FILE).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from .auth_methods import ClientAuth, ClientSecretBasic, ClientSecretJwt, ClientSecretPost, PrivateKeyJwt
from .secret import Secret

__all__ = ["ConfigError", "env_value", "settings_from_env"]


class ConfigError(ValueError):
    """The environment does not describe a usable client; the message names the variable."""


def env_value(environ: Mapping[str, str], name: str) -> str | None:
    """``name`` or the content of the file named by ``name_FILE`` (one trailing newline removed)."""
    value = environ.get(name)
    path = environ.get(f"{name}_FILE")
    if value and path:
        raise ConfigError(f"set {name} or {name}_FILE, not both")
    if path:
        try:
            return Path(path).read_text(encoding="utf-8").removesuffix("\n").removesuffix("\r")
        except OSError as exc:
            raise ConfigError(f"{name}_FILE: cannot read {path}: {exc.strerror}") from exc
    return value or None


def _auth(environ: Mapping[str, str], client_id: str) -> ClientAuth:
    method = env_value(environ, "OSTIARY_CLIENT_AUTH_METHOD")
    key = env_value(environ, "OSTIARY_CLIENT_KEY")
    if method == "private_key_jwt" or (method is None and key):
        if not key:
            raise ConfigError("private_key_jwt needs OSTIARY_CLIENT_KEY or OSTIARY_CLIENT_KEY_FILE")
        cert = env_value(environ, "OSTIARY_CLIENT_CERT")
        passphrase = env_value(environ, "OSTIARY_CLIENT_KEY_PASSPHRASE")
        return PrivateKeyJwt.from_pem(
            client_id, key.encode(), cert.encode() if cert else None,
            passphrase=passphrase.encode() if passphrase else None,
        )
    secret = env_value(environ, "OSTIARY_CLIENT_SECRET")
    if not secret:
        raise ConfigError("set OSTIARY_CLIENT_SECRET (or OSTIARY_CLIENT_SECRET_FILE)")
    if method in (None, "client_secret_basic"):
        return ClientSecretBasic(client_id, Secret(secret))
    if method == "client_secret_post":
        return ClientSecretPost(client_id, Secret(secret))
    if method == "client_secret_jwt":
        return ClientSecretJwt(client_id, Secret(secret))
    raise ConfigError(f"OSTIARY_CLIENT_AUTH_METHOD: unsupported method {method!r}")


def settings_from_env(environ: Mapping[str, str] | None = None) -> dict[str, object]:
    """Keyword arguments for ClientCredentials; raises ConfigError."""
    env = os.environ if environ is None else environ
    client_id = env_value(env, "OSTIARY_CLIENT_ID")
    if not client_id:
        raise ConfigError("set OSTIARY_CLIENT_ID (or OSTIARY_CLIENT_ID_FILE)")
    token_url = env_value(env, "OSTIARY_TOKEN_URL")
    issuer = env_value(env, "OSTIARY_ISSUER")
    if not token_url and not issuer:
        raise ConfigError("set OSTIARY_TOKEN_URL or OSTIARY_ISSUER")
    return {
        "auth": _auth(env, client_id),
        "token_url": token_url,
        "issuer": issuer,
        "scope": env_value(env, "OSTIARY_SCOPE"),
        "resource": env_value(env, "OSTIARY_RESOURCE"),
    }
