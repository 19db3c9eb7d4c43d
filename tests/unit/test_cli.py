"""The `ostiary` management commands against a temporary SQLite database."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from ostiary.app.secret_key import secret_key_file
from ostiary.cli import main
from ostiary.keys import generate_private_key, private_key_pem, self_signed_certificate
from ostiary.server.credentials import Sealer, matches
from ostiary.store import Client
from ostiary.store.sql.engine import head_revision, make_engine
from ostiary.store.sql.stores import SqlClientStore, SqlKeyStore
from tests.conftest import TEST_SECRET_KEY, needs_postgres


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("OSTIARY_"):
            monkeypatch.delenv(name)


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cli.db'}"


def run(db: str, *args: str) -> Result:
    result = CliRunner().invoke(main, [*args, "--database-url", db])
    assert "Traceback" not in result.output
    return result


def ok(db: str, *args: str) -> Result:
    result = run(db, *args)
    assert result.exit_code == 0, result.output
    return result


def stored_client(db: str, client_id: str) -> Client | None:
    async def get() -> Client | None:
        engine = make_engine(db)
        try:
            return await SqlClientStore(engine).get(client_id)
        finally:
            await engine.dispose()

    return asyncio.run(get())


def stored_keys(db: str) -> dict[str, str]:
    async def get() -> dict[str, str]:
        engine = make_engine(db)
        try:
            sealer = Sealer(secret_key_file(db).read_text().strip())  # the key generated beside the database
            return {k.kid: k.status for k in await SqlKeyStore(engine, sealer).list()}
        finally:
            await engine.dispose()

    return asyncio.run(get())


def text_fields(output: str) -> dict[str, str]:
    fields = {}
    for line in output.splitlines():
        if line and not line.startswith(" ") and "  " in line:
            key, _, value = line.partition(" ")
            fields[key] = value.strip()
    return fields


def create_json(db: str, *args: str) -> dict[str, object]:
    data = json.loads(ok(db, "client", "create", *args, "--json").stdout)
    assert isinstance(data, dict)
    return data


# -- clients ------------------------------------------------------------------------------------


def test_client_create_text(db: str) -> None:
    result = ok(db, "client", "create", "Reporting job", "--scope", "api:read api:write",
                "--audience", "https://api.example.com")
    fields = text_fields(result.stdout)
    assert fields["client_name"] == "Reporting job"
    assert fields["scope"] == "api:read api:write"
    assert fields["grant_types"] == "client_credentials"
    assert len(fields["client_secret"]) == 43
    assert "shown only now" in result.stderr
    client = stored_client(db, fields["client_id"])
    assert client is not None and matches(fields["client_secret"], client.secret_digest)
    assert client.audiences == ("https://api.example.com",)


def test_client_create_json(db: str) -> None:
    data = create_json(db, "--name", "Batch", "--client-id", "batch-1", "--auth-method", "client_secret_post",
                       "--token-format", "opaque", "--token-lifetime", "600")
    assert data["client_id"] == "batch-1"
    assert data["token_endpoint_auth_method"] == "client_secret_post"
    assert data["access_token_format"] == "opaque" and data["access_token_lifetime"] == 600
    secret = data["client_secret"]
    assert isinstance(secret, str) and len(secret) == 43
    client = stored_client(db, "batch-1")
    assert client is not None and matches(secret, client.secret_digest)
    assert client.secret_digest != secret  # only the digest is stored


def test_client_create_duplicate_id(db: str) -> None:
    create_json(db, "--client-id", "twice")
    result = run(db, "client", "create", "--client-id", "twice")
    assert result.exit_code == 1
    assert "already exists" in result.output


def test_client_create_invalid_metadata(db: str) -> None:
    result = run(db, "client", "create", "--grant-type", "authorization_code")
    assert result.exit_code == 1
    assert "invalid_redirect_uri" in result.output


def test_client_create_private_key_jwt_has_no_secret(db: str, tmp_path: Path) -> None:
    from ostiary.keys import SigningKey

    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [SigningKey.generate("ES256").public_jwk()]}))
    data = create_json(db, "--auth-method", "private_key_jwt", "--jwks-file", str(jwks))
    assert "client_secret" not in data
    assert isinstance(data["jwks"], dict)


def test_client_list(db: str) -> None:
    create_json(db, "--client-id", "b-client", "--name", "Bee")
    create_json(db, "--client-id", "a-client", "--name", "Ay")
    lines = ok(db, "client", "list").stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["a-client", "b-client"]
    assert "client_secret_basic" in lines[0] and lines[0].endswith("Ay")
    listed = json.loads(ok(db, "client", "list", "--json").stdout)
    assert [c["client_id"] for c in listed] == ["a-client", "b-client"]
    assert all("client_secret" not in c and "secret_digest" not in c for c in listed)


def test_client_show(db: str) -> None:
    create_json(db, "--client-id", "shown", "--scope", "api:read")
    data = json.loads(ok(db, "client", "show", "shown", "--json").stdout)
    assert data["client_id"] == "shown" and data["scope"] == "api:read"
    assert "client_secret" not in data
    assert text_fields(ok(db, "client", "show", "shown").stdout)["scope"] == "api:read"


def test_client_update_changes_only_given_options(db: str) -> None:
    create_json(db, "--client-id", "upd", "--name", "Before", "--scope", "api:read api:write",
                "--audience", "https://api.example.com", "--token-lifetime", "900")
    before = stored_client(db, "upd")
    assert before is not None
    data = json.loads(ok(db, "client", "update", "upd", "--name", "After", "--json").stdout)
    assert data["client_name"] == "After"
    assert "client_secret" not in data  # the secret is kept, not reissued
    after = stored_client(db, "upd")
    assert after is not None
    assert after.client_name == "After"
    assert (after.scope, after.audiences, after.access_token_lifetime, after.grant_types) == (
        before.scope, before.audiences, before.access_token_lifetime, before.grant_types)
    assert after.secret_digest == before.secret_digest
    ok(db, "client", "update", "upd", "--scope", "api:read")
    again = stored_client(db, "upd")
    assert again is not None and again.scope == "api:read" and again.client_name == "After"


def test_client_update_unknown(db: str) -> None:
    result = run(db, "client", "update", "ghost", "--name", "x")
    assert result.exit_code == 1 and "no client 'ghost'" in result.output


def test_client_rotate_secret(db: str) -> None:
    old = create_json(db, "--client-id", "rot")["client_secret"]
    assert isinstance(old, str)
    data = json.loads(ok(db, "client", "rotate-secret", "rot", "--json").stdout)
    new = data["client_secret"]
    assert data["client_id"] == "rot" and len(new) == 43 and new != old
    client = stored_client(db, "rot")
    assert client is not None
    assert matches(new, client.secret_digest)
    assert not matches(old, client.secret_digest)
    fields = text_fields(ok(db, "client", "rotate-secret", "rot").stdout)
    assert len(fields["client_secret"]) == 43


def test_client_rotate_secret_without_secret(db: str, tmp_path: Path) -> None:
    from ostiary.keys import SigningKey

    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [SigningKey.generate("ES256").public_jwk()]}))
    create_json(db, "--client-id", "pkj", "--auth-method", "private_key_jwt", "--jwks-file", str(jwks))
    result = run(db, "client", "rotate-secret", "pkj")
    assert result.exit_code == 1 and "has no secret" in result.output


def test_client_delete(db: str) -> None:
    create_json(db, "--client-id", "gone")
    result = ok(db, "client", "delete", "gone", "--yes")
    assert "deleted gone" in result.stdout
    assert stored_client(db, "gone") is None
    again = run(db, "client", "delete", "gone", "--yes")
    assert again.exit_code == 1 and "no client 'gone'" in again.output


def test_client_delete_asks_first(db: str) -> None:
    create_json(db, "--client-id", "kept")
    result = CliRunner().invoke(main, ["client", "delete", "kept", "--database-url", db], input="n\n")
    assert result.exit_code == 1
    assert stored_client(db, "kept") is not None


# -- keys ---------------------------------------------------------------------------------------


def write_key_and_cert(tmp_path: Path, alg: str = "ES256") -> tuple[Path, Path, object]:
    private = generate_private_key(alg)
    cert = self_signed_certificate(private, "signer.example")
    key_file, cert_file = tmp_path / "key.pem", tmp_path / "cert.pem"
    key_file.write_bytes(private_key_pem(private))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_file, cert_file, private


def test_keys_list_and_rotate(db: str) -> None:
    assert ok(db, "keys", "list", "--json").stdout.strip() == "[]"
    first = ok(db, "keys", "rotate", "--alg", "ES256").stdout
    active_kid = first.split()[1]
    rows = json.loads(ok(db, "keys", "list", "--json").stdout)
    assert sorted(r["status"] for r in rows) == ["active", "next"]
    next_kid = next(r["kid"] for r in rows if r["status"] == "next")
    second = ok(db, "keys", "rotate", "--alg", "ES256").stdout
    assert second.split()[1] == next_kid  # the published next key now signs
    statuses = stored_keys(db)
    assert statuses[active_kid] == "retired" and statuses[next_kid] == "active"
    text = ok(db, "keys", "list").stdout
    assert "published until" in text and active_kid in text


def test_keys_import_pem_with_certificate(db: str, tmp_path: Path) -> None:
    key_file, cert_file, _ = write_key_and_cert(tmp_path)
    out = ok(db, "keys", "import", "--key", str(key_file), "--cert", str(cert_file)).stdout
    kid, alg, state = out.split()
    assert (alg, state) == ("ES256", "next")
    rows = json.loads(ok(db, "keys", "list", "--json").stdout)
    assert rows == [{**rows[0], "kid": kid, "status": "next", "x509": True}]
    again = ok(db, "keys", "import", "--key", str(key_file)).stdout
    assert again.strip().endswith("already present")
    out = ok(db, "keys", "import", "--key", str(key_file), "--activate").stdout
    assert out.split()[2] == "active" and stored_keys(db)[kid] == "active"


def test_keys_import_pkcs12_with_passphrase_file(db: str, tmp_path: Path) -> None:
    private = generate_private_key("RS256")
    cert = self_signed_certificate(private, "p12.example")
    p12 = tmp_path / "signer.p12"
    p12.write_bytes(pkcs12.serialize_key_and_certificates(
        b"signer", private, cert, None, serialization.BestAvailableEncryption(b"p12 pass")))  # type: ignore[arg-type]
    passphrase = tmp_path / "passphrase"
    passphrase.write_text("p12 pass\n")
    out = ok(db, "keys", "import", "--pkcs12", str(p12), "--passphrase-file", str(passphrase), "--activate").stdout
    kid, alg, state = out.split()
    assert (alg, state) == ("RS256", "active")
    assert stored_keys(db) == {kid: "active"}
    wrong = tmp_path / "wrong"
    wrong.write_text("nope")
    result = run(db, "keys", "import", "--pkcs12", str(p12), "--passphrase-file", str(wrong))
    assert result.exit_code == 1 and "PKCS#12" in result.output


def test_keys_import_unreadable_key(db: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("this is not a key")
    result = run(db, "keys", "import", "--key", str(bad))
    assert result.exit_code == 1
    assert result.output.startswith("Error: not a readable private key")


def test_keys_import_certificate_of_another_key(db: str, tmp_path: Path) -> None:
    key_file, _, _ = write_key_and_cert(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    _, cert_file, _ = write_key_and_cert(other)
    result = run(db, "keys", "import", "--key", str(key_file), "--cert", str(cert_file))
    assert result.exit_code == 1 and "does not belong" in result.output


def test_keys_import_needs_key_or_pkcs12(db: str) -> None:
    result = run(db, "keys", "import")
    assert result.exit_code == 2 and "--pkcs12" in result.output


def test_keys_prune(db: str) -> None:
    ok(db, "keys", "rotate", "--alg", "ES256")
    ok(db, "keys", "rotate", "--alg", "ES256")
    assert ok(db, "keys", "prune").stdout == ""  # the retired key is still published


# -- db -----------------------------------------------------------------------------------------


def test_db_upgrade_and_current(db: str) -> None:
    head = head_revision()
    assert ok(db, "db", "current").stdout.strip() == f"applied: None  newest: {head}"
    assert ok(db, "db", "upgrade").stdout.strip() == f"database at revision {head}"
    assert ok(db, "db", "upgrade").stdout.strip() == f"database at revision {head}"
    assert ok(db, "db", "current").stdout.strip() == f"applied: {head}  newest: {head}"


# -- errors are messages, never tracebacks ------------------------------------------------------


def test_show_unknown_client(db: str) -> None:
    result = run(db, "client", "show", "nobody")
    assert result.exit_code == 1
    assert result.output == "Error: no client 'nobody'\n"


@pytest.mark.parametrize(("url", "message"), [
    ("mysql://root@localhost/db", "configuration: database_url must be"),
    ("postgresql://nobody@127.0.0.1:1/db", "cannot reach the database"),
    ("sqlite", "configuration: database_url: Could not parse"),
    pytest.param("postgresql://postgres@127.0.0.1:5432/ostiary_no_such_db",
                 'cannot use the database: database "ostiary_no_such_db" does not exist', marks=needs_postgres),
])
@pytest.mark.parametrize("command", [["client", "list"], ["db", "current"], ["db", "upgrade"]])
def test_bad_database_url(url: str, message: str, command: list[str]) -> None:
    env = {"OSTIARY_SECRET_KEY": TEST_SECRET_KEY}  # PostgreSQL needs one before any connection
    result = CliRunner().invoke(main, [*command, "--database-url", url], env=env)
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    assert result.output == f"Error: {result.output.removeprefix('Error: ')}"
    assert message in result.output and "Traceback" not in result.output


def test_bad_config_file(tmp_path: Path, db: str) -> None:
    config = tmp_path / "ostiary.toml"
    config.write_text("isuer = 'https://x.example'\n")
    result = run(db, "client", "list", "--config", str(config))
    assert result.exit_code == 1 and "configuration: unknown setting(s): isuer" in result.output


def test_user_access_facts_are_set_only_by_the_access_command_and_must_resolve(tmp_path):
    """Issue "Who sees which patient" 1: fhirUser is an access fact, not a profile claim; it must resolve."""
    import orjson
    from click.testing import CliRunner

    from ostiary.cli import main

    db = f"sqlite:///{tmp_path / 'u.db'}"
    env = {"OSTIARY_ISSUER": "https://ehr.example"}

    def cli(*args: str) -> Any:
        return CliRunner().invoke(main, [*args, "--database-url", db], env=env)

    assert cli("user", "create", "drsmith", "--password", "long enough pw").exit_code == 0
    # the attack: a profile claim that decides clinical access; --claim cannot set it
    sneaky = cli("user", "update", "drsmith", "--claim", "fhirUser=https://ehr.example/fhir/Patient/pat-001")
    assert sneaky.exit_code != 0 and "fhirUser" in sneaky.output
    missing = cli("user", "access", "drsmith", "--fhir-user", "Practitioner/prac-01")
    assert missing.exit_code != 0 and "does not exist" in missing.output  # no sample data yet
    assert cli("fhir", "load-sample").exit_code == 0
    foreign = cli("user", "access", "drsmith", "--fhir-user", "https://other.example/fhir/Practitioner/prac-01")
    assert foreign.exit_code != 0 and "this server's FHIR base" in foreign.output
    assert cli("user", "access", "drsmith", "--fhir-user", "Organization/1").exit_code != 0
    done = cli("user", "access", "drsmith", "--fhir-user", "https://ehr.example/fhir/Practitioner/prac-01",
               "--patient", "pat-001", "--patient", "pat-002", "--role", "launch", "--json")
    assert done.exit_code == 0, done.output
    assert orjson.loads(done.output) == {"username": "drsmith", "fhirUser": "Practitioner/prac-01",
                                         "roles": ["launch"], "patients": ["pat-001", "pat-002"], "group": None,
                                         "all_patients": False}
    assert cli("user", "access", "drsmith", "--patient", "nope").exit_code != 0
    shown = cli("user", "access", "drsmith", "--remove-patient", "pat-001")
    assert shown.exit_code == 0 and "patients: pat-002" in shown.output and "roles=launch" in shown.output


def test_client_create_resource_server_with_audiences_and_update(db: str) -> None:
    """docs/resource-server.md: the operator registers the API that introspects (RFC 7662 §2.1)."""
    data = create_json(db, "Notes API", "--client-id", "notes-api", "--resource-server",
                       "--audience", "https://notes.example", "--audience", "https://notes2.example")
    assert data["resource_server"] is True and data["trust_level"] == "admin"
    stored = stored_client(db, "notes-api")
    assert stored is not None and stored.resource_server
    assert stored.audiences == ("https://notes.example", "https://notes2.example")
    ok(db, "client", "update", "notes-api", "--no-resource-server")
    stored = stored_client(db, "notes-api")
    assert stored is not None and not stored.resource_server and stored.audiences  # audiences kept


def test_client_update_keeps_a_self_registered_clients_level_unless_the_operator_raises_it(db: str) -> None:
    """An operator adding system/ to a self-registered client is told so; --trust-level admin is the decision."""
    create_json(db, "App", "--client-id", "dcr-app", "--trust-level", "registrant", "--scope", "openid")
    refused = run(db, "client", "update", "dcr-app", "--scope", "openid system/*.rs")
    assert refused.exit_code != 0 and "system/*.rs" in refused.output and "--trust-level admin" in refused.output
    ok(db, "client", "update", "dcr-app", "--scope", "openid system/*.rs", "--trust-level", "admin")
    stored = stored_client(db, "dcr-app")
    assert stored is not None and stored.trust_level == "admin" and "system/*.rs" in stored.scope


def test_client_openid_on_client_credentials_is_set_per_client_and_reset_to_default(db: str) -> None:
    data = create_json(db, "--client-id", "oid", "--openid-on-client-credentials", "reject")
    assert data["openid_on_client_credentials"] == "reject"
    ok(db, "client", "update", "oid", "--openid-on-client-credentials", "ignore")
    stored = stored_client(db, "oid")
    assert stored is not None and stored.extra["openid_on_client_credentials"] == "ignore"
    ok(db, "client", "update", "oid", "--openid-on-client-credentials", "default")
    stored = stored_client(db, "oid")
    assert stored is not None and "openid_on_client_credentials" not in stored.extra
    assert "openid_on_client_credentials" not in create_json(db, "--client-id", "dflt",
                                                             "--openid-on-client-credentials", "default")


def test_client_subject_type_pairwise_is_set_by_the_cli(db: str) -> None:
    data = create_json(db, "--client-id", "pw", "--grant-type", "authorization_code",
                       "--redirect-uri", "https://rp.example/cb", "--subject-type", "pairwise")
    assert data["subject_type"] == "pairwise"
    result = run(db, "client", "update", "pw", "--redirect-uri", "https://rp.example/cb",
                 "--redirect-uri", "https://other.example/cb")
    assert result.exit_code != 0 and "sector_identifier_uri" in result.output
