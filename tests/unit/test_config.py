"""Settings: defaults, environment, *_FILE secrets, TOML, precedence and fail-fast validation."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ostiary.config import DEFAULT_DATABASE_URL, ConfigError, Settings, load_settings


def write_toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ostiary.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults() -> None:
    s = load_settings(env={})
    assert s == Settings()
    assert s.issuer == "http://127.0.0.1:8000"
    assert s.database_url == DEFAULT_DATABASE_URL
    assert s.redis_url is None
    assert s.registration_token is None
    assert s.tokens.signing_alg == "ES256"
    assert s.tokens.access_token_format == "jwt"
    assert s.tokens.access_token_lifetime == 3600
    assert s.tokens.openid_on_client_credentials == "accept"
    assert s.tokens.signing_alg in s.keys.generate and "RS256" in s.keys.generate
    assert s.client_auth.assertion_max_lifetime == 3600
    assert s.registration.open is False
    assert s.demo_enabled is True  # default SQLite database
    assert s.registration_enabled is False


def test_settings_are_frozen() -> None:
    s = load_settings(env={})
    with pytest.raises(AttributeError):
        s.issuer = "https://other.example"  # type: ignore[misc]


def test_top_level_environment_variables() -> None:
    s = load_settings(env={
        "OSTIARY_ISSUER": "https://auth.example.com",
        "OSTIARY_DATABASE_URL": "postgresql://app@db:5432/ostiary",
        "OSTIARY_REGISTRATION_TOKEN": "reg-token",
    })
    assert s.issuer == "https://auth.example.com"
    assert s.database_url == "postgresql://app@db:5432/ostiary"
    assert s.registration_token == "reg-token"
    assert s.registration_enabled is True
    assert s.demo_enabled is False  # not the default SQLite database


def test_nested_environment_variables() -> None:
    s = load_settings(env={
        "OSTIARY_TOKENS__SIGNING_ALG": "RS256",
        "OSTIARY_TOKENS__ACCESS_TOKEN_LIFETIME": "600",
        "OSTIARY_KEYS__GENERATE": "ES256, EdDSA",
        "OSTIARY_REGISTRATION__OPEN": "yes",
        "OSTIARY_CLIENT_AUTH__JWKS_FETCH_TIMEOUT": "2.5",
    })
    assert s.tokens.signing_alg == "RS256"
    assert s.tokens.access_token_lifetime == 600
    assert s.keys.generate == ("ES256", "EdDSA")
    assert s.registration.open is True
    assert s.client_auth.jwks_fetch_timeout == 2.5


def test_empty_optional_variable_means_unset() -> None:
    assert load_settings(env={"OSTIARY_REDIS_URL": ""}).redis_url is None


def test_file_variant_reads_the_secret(tmp_path: Path) -> None:
    secret = tmp_path / "reg_token"
    secret.write_text("from-a-file\n", encoding="utf-8")
    s = load_settings(env={"OSTIARY_REGISTRATION_TOKEN_FILE": str(secret)})
    assert s.registration_token == "from-a-file"  # the trailing newline is dropped


def test_file_variant_for_nested_setting(tmp_path: Path) -> None:
    passphrase = tmp_path / "pass"
    passphrase.write_text("s3cret\r\n", encoding="utf-8")
    s = load_settings(env={"OSTIARY_KEYS__PASSPHRASE_FILE": str(passphrase)})
    assert s.keys.passphrase == "s3cret"


def test_plain_variable_wins_over_file(tmp_path: Path) -> None:
    secret = tmp_path / "reg_token"
    secret.write_text("from-file", encoding="utf-8")
    s = load_settings(env={"OSTIARY_REGISTRATION_TOKEN": "direct", "OSTIARY_REGISTRATION_TOKEN_FILE": str(secret)})
    assert s.registration_token == "direct"


def test_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(ConfigError, match="OSTIARY_SECRET_KEY_FILE: cannot read"):
        load_settings(env={"OSTIARY_SECRET_KEY_FILE": str(missing)})


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads any file")
def test_file_without_permission_is_a_config_error(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("x", encoding="utf-8")
    secret.chmod(0)
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(env={"OSTIARY_SECRET_KEY_FILE": str(secret)})


def test_toml_file_with_sections(tmp_path: Path) -> None:
    path = write_toml(tmp_path, """
issuer = "https://login.example.org"
cache_ttl = 2
demo = false

[tokens]
access_token_format = "opaque"
access_token_lifetime = 900
signing_alg = "PS256"

[keys]
generate = ["PS256", "ES384"]

[registration]
open = true
""")
    s = load_settings(env={}, config_file=path)
    assert s.issuer == "https://login.example.org"
    assert s.cache_ttl == 2.0
    assert s.demo is False
    assert s.tokens.access_token_format == "opaque"
    assert s.tokens.access_token_lifetime == 900
    assert s.tokens.signing_alg == "PS256"
    assert s.keys.generate == ("PS256", "ES384")
    assert s.registration.open is True


def test_toml_file_named_by_environment(tmp_path: Path) -> None:
    path = write_toml(tmp_path, 'issuer = "https://env-file.example"\n')
    assert load_settings(env={"OSTIARY_CONFIG": str(path)}).issuer == "https://env-file.example"


def test_precedence_defaults_toml_env_overrides(tmp_path: Path) -> None:
    path = write_toml(tmp_path, """
issuer = "https://toml.example"
log_level = "debug"
[tokens]
access_token_lifetime = 100
signing_alg = "RS256"
""")
    env = {"OSTIARY_ISSUER": "https://env.example", "OSTIARY_TOKENS__ACCESS_TOKEN_LIFETIME": "200"}
    s = load_settings(env=env, config_file=path)
    assert s.issuer == "https://env.example"  # env beats TOML
    assert s.tokens.access_token_lifetime == 200  # env beats TOML in a section
    assert s.tokens.signing_alg == "RS256"  # TOML beats defaults
    assert s.log_level == "debug"
    assert s.cache_ttl == 5.0  # default
    s = load_settings(env=env, config_file=path, issuer="https://override.example", database_url=None)
    assert s.issuer == "https://override.example"  # overrides beat env
    assert s.database_url == DEFAULT_DATABASE_URL  # a None override changes nothing


@pytest.mark.parametrize(
    ("issuer", "message"),
    [
        ("http://auth.example.com", "http issuer is only allowed on loopback"),
        ("https://auth.example.com/", "must not end with '/'"),
        ("https://auth.example.com?tenant=a", "no query or fragment"),
        ("https://auth.example.com#frag", "no query or fragment"),
        ("auth.example.com", "absolute https URL"),
        ("ftp://auth.example.com", "absolute https URL"),
    ],
)
def test_invalid_issuer(issuer: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(env={"OSTIARY_ISSUER": issuer})


@pytest.mark.parametrize("issuer", [
    "http://localhost:8000", "http://127.0.0.1:9000", "http://[::1]:8000", "http://auth.localhost",
    "https://auth.example.com/tenant-a",
])
def test_valid_issuers(issuer: str) -> None:
    assert load_settings(env={"OSTIARY_ISSUER": issuer}).issuer == issuer


def test_unknown_signing_alg() -> None:
    with pytest.raises(ConfigError, match=r"tokens\.signing_alg must be one of"):
        load_settings(env={"OSTIARY_TOKENS__SIGNING_ALG": "HS256"})


def test_unknown_generated_alg() -> None:
    with pytest.raises(ConfigError, match=r"keys\.generate: unknown algorithm 'RSA1_5'"):
        load_settings(env={"OSTIARY_KEYS__GENERATE": "ES256 RSA1_5"})


def test_unknown_toml_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown setting.*isuer"):
        load_settings(env={}, config_file=write_toml(tmp_path, 'isuer = "https://x.example"\n'))


def test_unknown_toml_key_in_section(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown setting.*lifetime"):
        load_settings(env={}, config_file=write_toml(tmp_path, "[tokens]\nlifetime = 5\n"))


def test_section_must_be_a_table(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\[tokens\] must be a table"):
        load_settings(env={}, config_file=write_toml(tmp_path, 'tokens = "jwt"\n'))


def test_bad_bool() -> None:
    with pytest.raises(ConfigError, match="OSTIARY_REGISTRATION__OPEN must be true or false, not 'maybe'"):
        load_settings(env={"OSTIARY_REGISTRATION__OPEN": "maybe"})


def test_bad_int() -> None:
    with pytest.raises(ConfigError, match="OSTIARY_TOKENS__ACCESS_TOKEN_LIFETIME must be a number, not 'soon'"):
        load_settings(env={"OSTIARY_TOKENS__ACCESS_TOKEN_LIFETIME": "soon"})


def test_bad_int_in_toml(tmp_path: Path) -> None:
    path = write_toml(tmp_path, '[tokens]\naccess_token_lifetime = "an hour"\n')
    with pytest.raises(ConfigError, match="access_token_lifetime must be a number"):
        load_settings(env={}, config_file=path)


def test_bad_literal() -> None:
    with pytest.raises(ConfigError, match="must be one of jwt, opaque, not 'paseto'"):
        load_settings(env={"OSTIARY_TOKENS__ACCESS_TOKEN_FORMAT": "paseto"})


def test_non_positive_lifetime() -> None:
    with pytest.raises(ConfigError, match="access_token_lifetime must be positive"):
        load_settings(env={"OSTIARY_TOKENS__ACCESS_TOKEN_LIFETIME": "0"})


def test_unsupported_database() -> None:
    with pytest.raises(ConfigError, match="database_url must be"):
        load_settings(env={"OSTIARY_DATABASE_URL": "mysql://root@localhost/db"})


def test_unreadable_and_malformed_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings(env={}, config_file=tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="config file"):
        load_settings(env={}, config_file=write_toml(tmp_path, "issuer = \n"))


def test_replace_validates() -> None:
    s = load_settings(env={})
    with pytest.raises(ConfigError):
        s.replace(issuer="http://public.example.com")
