"""Secrets at rest: private signing keys and sealed secrets encrypted under a secret key that is not in
the database; the migration from plaintext; rewrap; the PostgreSQL refusal; file modes."""

from __future__ import annotations

import base64
import hashlib
import os
import stat
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from alembic import command
from click.testing import CliRunner
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ostiary.app.bootstrap import bootstrap
from ostiary.app.provider import Provider, open_provider
from ostiary.app.secret_key import POSTGRES_NEEDS_KEY, rewrap, secret_key_file, secret_keys
from ostiary.cli import main
from ostiary.config import ConfigError, KeySettings
from ostiary.keys import KeyError_, SigningKey
from ostiary.server.credentials import Sealer
from ostiary.store import TokenRecord
from ostiary.store.sql.engine import _alembic_config, make_engine, upgrade
from tests.conftest import POSTGRES_PARAM, TEST_SECRET_KEY, create_pg_database, drop_pg_database, settings_for

OTHER_KEY = "another-secret-key-for-rotation-0123456789abc"


@pytest.fixture(params=["sqlite", POSTGRES_PARAM])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ostiary.db'}"
        return
    url = create_pg_database()
    try:
        yield url
    finally:
        drop_pg_database(url)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ostiary.db'}"


def settings(database_url: str, **overrides: Any) -> Any:
    return settings_for(database_url, keys=KeySettings(generate=("ES256",)), **overrides)  # no slow RSA keys


async def started(database_url: str, **overrides: Any) -> Provider:
    provider = await open_provider(settings(database_url, **overrides))
    await bootstrap(provider)
    return provider


async def rows(provider: Provider, sql: str) -> list[Any]:
    async with provider.engine.connect() as conn:
        return list((await conn.execute(sa.text(sql))).all())


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
async def provider(sqlite_url: str) -> AsyncIterator[Provider]:
    p = await started(sqlite_url)
    try:
        yield p
    finally:
        await p.aclose()


async def test_private_signing_keys_are_stored_sealed_never_in_plaintext(provider: Provider) -> None:
    stored = await rows(provider, "SELECT kid, private_pem FROM signing_keys")
    assert stored
    for kid, value in stored:
        assert value.startswith("s1.") and "PRIVATE KEY" not in value, kid
    assert await rows(provider, "SELECT name FROM server_state WHERE name = 'secret_key'") == []
    assert len((await provider.keyring.verification_keys()).keys) == len(stored)  # they open with the key


async def test_sqlite_database_and_generated_key_file_are_owner_only(provider: Provider, sqlite_url: str) -> None:
    key_file = secret_key_file(sqlite_url)
    assert key_file is not None and key_file.parent == Path(sqlite_url.removeprefix("sqlite:///")).parent
    assert mode(key_file) == 0o600
    for name in ("ostiary.db", "ostiary.db-wal", "ostiary.db-shm"):
        path = key_file.parent / name
        if path.exists():
            assert mode(path) & 0o077 == 0, name


async def test_client_secret_jwt_key_and_registration_token_are_sealed(provider: Provider) -> None:
    client, issued = await provider.registry.create(
        {"token_endpoint_auth_method": "client_secret_jwt", "grant_types": ["client_credentials"]})
    raw = (await rows(provider, f"SELECT sealed_secret, data FROM clients WHERE client_id = '{client.client_id}'"))[0]
    assert raw.sealed_secret.startswith("s1.") and issued.client_secret not in raw.data
    assert provider.sealer.unseal(raw.sealed_secret) == issued.client_secret


def legacy_seal(secret_key: str, plaintext: str) -> str:
    """What the version before secrets at rest wrote: base64url(nonce | AES-GCM box), no key id."""
    box = AESGCM(hashlib.sha256(b"ostiary-seal:" + secret_key.encode()).digest())
    nonce = os.urandom(12)
    return base64.urlsafe_b64encode(nonce + box.encrypt(nonce, plaintext.encode(), b"ostiary")).decode()


async def database_at_0004(url: str, legacy_key: str) -> tuple[SigningKey, dict[str, str]]:
    """A database as the previous version left it: plaintext private key, the key in server_state."""
    engine = make_engine(url)
    key = SigningKey.generate("ES256")
    secrets = {"secret": "the-client-secret-jwt-key", "rat": "the-registration-access-token"}
    data = {"token_endpoint_auth_method": "client_secret_jwt", "sealed_registration_token":
            legacy_seal(legacy_key, secrets["rat"]), "grant_types": ["client_credentials"]}
    try:
        async with engine.begin() as conn:
            await conn.run_sync(lambda c: command.upgrade(_alembic_config(c, None, []), "0004"))
            await conn.execute(sa.text("INSERT INTO server_state (name, value) VALUES ('secret_key', :v)"),
                               {"v": legacy_key})
            await conn.execute(sa.text(
                "INSERT INTO signing_keys (kid, alg, status, private_pem, created_at) VALUES (:k, 'ES256', 'active',"
                " :p, 1700000000)"), {"k": key.kid, "p": key.private_pem().decode()})
            await conn.execute(sa.text(
                "INSERT INTO clients (client_id, sealed_secret, data, created_at, updated_at) VALUES ('old', :s, :d,"
                " 1700000000, 1700000000)"), {"s": legacy_seal(legacy_key, secrets["secret"]),
                                              "d": orjson.dumps(data).decode()})
    finally:
        await engine.dispose()
    return key, secrets


async def test_migration_0005_seals_plaintext_keys_and_moves_the_key_out_of_the_database(fresh_url: str) -> None:
    legacy_key = "the-key-an-older-version-kept-in-the-database"
    key, secrets = await database_at_0004(fresh_url, legacy_key)
    p = await started(fresh_url)  # PostgreSQL: OSTIARY_SECRET_KEY from the test settings
    try:
        (pem,) = [r.private_pem for r in await rows(p, f"SELECT private_pem FROM signing_keys WHERE kid = '{key.kid}'")]
        assert pem.startswith("s1.") and "PRIVATE KEY" not in pem
        assert p.sealer.unseal(pem) == key.private_pem().decode()
        assert await rows(p, "SELECT name FROM server_state WHERE name = 'secret_key'") == []
        old = await p.clients.get("old")
        assert old is not None and old.sealed_secret and old.sealed_registration_token
        only_new = Sealer(secret_keys(p.settings)[0])  # the database's old key is no longer needed
        assert only_new.unseal(old.sealed_secret) == secrets["secret"]
        assert only_new.unseal(old.sealed_registration_token) == secrets["rat"]
        assert Sealer(legacy_key).unseal(old.sealed_secret) is None
        assert key.kid in {k.kid for k in await p.key_store.list()}
    finally:
        await p.aclose()


async def test_migration_0005_needs_the_secret_key_for_a_database_with_plaintext_keys(sqlite_url: str) -> None:
    await database_at_0004(sqlite_url, "the-key-an-older-version-kept-in-the-database")
    engine = make_engine(sqlite_url)
    try:
        with pytest.raises(RuntimeError, match="needs the secret key"):
            await upgrade(engine)
    finally:
        await engine.dispose()


async def test_rewrap_with_a_previous_key_reseals_everything_under_the_new_one(fresh_url: str) -> None:
    p = await started(fresh_url, secret_key=TEST_SECRET_KEY)
    try:
        client, issued = await p.registry.create(
            {"token_endpoint_auth_method": "client_secret_jwt", "grant_types": ["client_credentials"]})
        rotated = TokenRecord(digest="d" * 64, kind="refresh_token", client_id=client.client_id, jti="j1", claims={},
                              expires_at=int(time.time()) + 600, consumed_at=int(time.time()),
                              successor=p.sealer.seal('{"refresh_token": "next"}'))  # grace period
        await p.tokens.save(rotated)
    finally:
        await p.aclose()
    p = await open_provider(settings(fresh_url, secret_key=OTHER_KEY, secret_key_previous=TEST_SECRET_KEY))
    try:
        await bootstrap(p)  # a node with both keys starts and opens what the old key sealed
        report = await rewrap(p)
        assert report.resealed >= 3 and report.unreadable == ()
        stored = await p.clients.get(client.client_id)
        assert stored is not None and stored.sealed_secret
        assert Sealer(OTHER_KEY).unseal(stored.sealed_secret) == issued.client_secret
        assert Sealer(TEST_SECRET_KEY).unseal(stored.sealed_secret) is None
        token = await p.tokens.find("d" * 64)
        assert token is not None and token.successor
        assert Sealer(OTHER_KEY).unseal(token.successor) == '{"refresh_token": "next"}'
        assert (await rewrap(p)).resealed == 0  # idempotent
    finally:
        await p.aclose()
    p = await started(fresh_url, secret_key=OTHER_KEY)  # the previous key is gone: everything still opens
    try:
        assert await p.key_store.list()
    finally:
        await p.aclose()


async def test_rewrap_of_the_generated_key_file_replaces_the_key(provider: Provider, sqlite_url: str) -> None:
    key_file = secret_key_file(sqlite_url)
    assert key_file is not None
    before = key_file.read_text()
    report = await rewrap(provider)
    assert report.key_file == key_file and report.resealed > 0 and report.unreadable == ()
    assert key_file.read_text() != before and mode(key_file) == 0o600
    assert not key_file.with_name(key_file.name + ".next").exists()
    await provider.aclose()
    again = await started(sqlite_url)
    try:
        assert len(await again.key_store.list()) == report.resealed
    finally:
        await again.aclose()


async def test_a_wrong_secret_key_stops_the_start_with_a_clear_error(sqlite_url: str) -> None:
    p = await started(sqlite_url, secret_key=TEST_SECRET_KEY)
    await p.aclose()
    p = await open_provider(settings(sqlite_url, secret_key=OTHER_KEY))
    try:
        with pytest.raises(KeyError_, match="sealed under another secret key"):
            await bootstrap(p)
    finally:
        await p.aclose()


def test_postgresql_without_a_secret_key_refuses_to_start() -> None:
    url = "postgresql://postgres@127.0.0.1:5432/never_connected"
    with pytest.raises(ConfigError, match="required with PostgreSQL"):
        secret_keys(settings_for(url, secret_key=None))
    env = {k: "" for k in os.environ if k.startswith("OSTIARY_")}
    for command_line in (["serve", "--port", "1"], ["client", "list"], ["keys", "rewrap"]):
        result = CliRunner().invoke(main, [*command_line, "--database-url", url], env=env)
        assert result.exit_code == 1 and "Traceback" not in result.output
        assert f"Error: configuration: {POSTGRES_NEEDS_KEY}" in result.output, result.output


def test_keys_rewrap_command(sqlite_url: str) -> None:
    env = {k: "" for k in os.environ if k.startswith("OSTIARY_")}
    runner = CliRunner()
    assert runner.invoke(main, ["keys", "rotate", "--database-url", sqlite_url], env=env).exit_code == 0
    result = runner.invoke(main, ["keys", "rewrap", "--database-url", sqlite_url], env=env)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("re-sealed ") and ".secret-key" in result.output
    listed = runner.invoke(main, ["keys", "list", "--database-url", sqlite_url], env=env)
    assert listed.exit_code == 0 and "active" in listed.output


def test_short_secret_key_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match="at least 32 characters"):
        settings_for("sqlite:///x.db", secret_key="too-short")
