"""SQLAlchemy implementations of the store Protocols (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from typing import Any

import orjson
from cryptography import x509
from sqlalchemy import delete, exists, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from ...keys import KeyError_, KeyStatus, SigningKey, signing_key_from_pem
from ..protocols import Client, ClientExists, TokenRecord
from .dialect import insert_for
from .schema import (
    authorization_codes,
    clients,
    interactions,
    login_failures,
    replay,
    revoked_grants,
    revoked_jtis,
    server_state,
    sessions,
    signing_keys,
    tokens,
)
from .sealed import Sealing, is_plaintext

__all__ = ["SqlClientStore", "SqlKeyStore", "SqlReplayCache", "SqlStateStore", "SqlTokenStore"]

# How long a family's revoked mark outlives its last token at least (covers issues still in flight).
GRANT_MARK_TTL = 24 * 3600

_CLIENT_COLUMNS = ("client_id", "secret_digest", "sealed_secret", "registration_token_digest",
                   "created_at", "updated_at")


def _client_row(client: Client) -> dict[str, Any]:
    record = client.to_record()
    row = {name: record.pop(name) for name in _CLIENT_COLUMNS}
    row["data"] = orjson.dumps(record).decode()
    return row


def _client_from_row(row: Any) -> Client:
    data = orjson.loads(row.data)
    data.update({name: getattr(row, name) for name in _CLIENT_COLUMNS})
    return Client.from_record(data)


class SqlClientStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def get(self, client_id: str) -> Client | None:
        if "\x00" in client_id:  # PostgreSQL text cannot hold NUL (it raises); no client has one
            return None
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(clients).where(clients.c.client_id == client_id))).first()
        return _client_from_row(row) if row else None

    async def list(self) -> Sequence[Client]:
        async with self._engine.connect() as conn:
            rows = (await conn.execute(select(clients).order_by(clients.c.client_id))).all()
        return [_client_from_row(r) for r in rows]

    async def create(self, client: Client) -> None:
        try:
            async with self._engine.begin() as conn:
                await conn.execute(insert(clients).values(**_client_row(client)))
        except IntegrityError:
            raise ClientExists(client.client_id) from None

    async def update(self, client: Client) -> bool:
        row = _client_row(client)
        row.pop("created_at")
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(clients).where(clients.c.client_id == client.client_id).values(**row)
            )
        return result.rowcount > 0

    async def delete(self, client_id: str) -> bool:
        async with self._engine.begin() as conn:
            await conn.execute(delete(tokens).where(tokens.c.client_id == client_id))
            result = await conn.execute(delete(clients).where(clients.c.client_id == client_id))
        return result.rowcount > 0


def _key_from_row(row: Any, parsed: dict[str, SigningKey], sealer: Sealing) -> SigningKey:
    """A SigningKey for a row; the private key is opened and parsed once per process (RSA parsing costs ~0.1 s)."""
    key = parsed.get(row.kid)
    if key is None:
        pem = row.private_pem if is_plaintext(row.private_pem) else sealer.unseal(row.private_pem)
        if pem is None:
            raise KeyError_(f"signing key {row.kid} cannot be opened: it was sealed under another secret key "
                            "(OSTIARY_SECRET_KEY, or the key file beside the SQLite database)")
        key = signing_key_from_pem(pem.encode(), row.cert_pem.encode() if row.cert_pem else None, alg=row.alg)
        parsed[row.kid] = key
    return SigningKey(
        alg=key.alg, jwk=key.jwk, certificates=key.certificates, status=row.status,
        created_at=dt.datetime.fromtimestamp(row.created_at, dt.UTC),
        publish_until=dt.datetime.fromtimestamp(row.publish_until, dt.UTC) if row.publish_until else None,
    )


class SqlKeyStore:
    """Signing keys; the private halves are stored sealed under the secret key (docs/security.md)."""

    def __init__(self, engine: AsyncEngine, sealer: Sealing) -> None:
        self._engine = engine
        self._sealer = sealer
        self._parsed: dict[str, SigningKey] = {}

    async def list(self) -> Sequence[SigningKey]:
        async with self._engine.connect() as conn:
            rows = (await conn.execute(
                select(signing_keys).order_by(signing_keys.c.created_at, signing_keys.c.kid)
            )).all()
        return [_key_from_row(r, self._parsed, self._sealer) for r in rows]

    async def add(self, key: SigningKey) -> bool:
        certs: tuple[x509.Certificate, ...] = key.certificates
        values = {
            "kid": key.kid, "alg": key.alg, "status": key.status,
            "private_pem": self._sealer.seal(key.private_pem().decode()),
            "cert_pem": key.certificates_pem().decode() if certs else None,
            "created_at": int(key.created_at.timestamp()),
            "publish_until": int(key.publish_until.timestamp()) if key.publish_until else None,
        }
        try:
            async with self._engine.begin() as conn:
                await conn.execute(insert(signing_keys).values(**values))
        except IntegrityError:
            return False
        return True

    async def set_status(self, kid: str, status: KeyStatus, publish_until: int | None = None) -> bool:
        async with self._engine.begin() as conn:
            result = await conn.execute(
                update(signing_keys).where(signing_keys.c.kid == kid)
                .values(status=status, publish_until=publish_until)
            )
        return result.rowcount > 0

    async def delete(self, kid: str) -> bool:
        async with self._engine.begin() as conn:
            result = await conn.execute(delete(signing_keys).where(signing_keys.c.kid == kid))
        return result.rowcount > 0


class SqlTokenStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def save(self, record: TokenRecord) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(insert(tokens).values(
                digest=record.digest, kind=record.kind, client_id=record.client_id, jti=record.jti,
                claims=orjson.dumps(dict(record.claims)).decode(), expires_at=record.expires_at,
                revoked=record.revoked, grant_id=record.grant_id, consumed_at=record.consumed_at,
                successor=record.successor,
            ))

    async def find(self, digest: str) -> TokenRecord | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(tokens).where(tokens.c.digest == digest))).first()
        return _token_from_row(row) if row is not None else None

    async def consume(self, digest: str, now: int) -> TokenRecord | None:
        # One conditional UPDATE decides who wins a race (DESIGN: scale model): exactly one caller
        # gets the row back; a token of a revoked family is never consumed (RFC 9700 §4.14.2).
        family_revoked = exists().where(revoked_grants.c.grant_id == tokens.c.grant_id)
        async with self._engine.begin() as conn:
            row = (await conn.execute(
                update(tokens)
                .where(tokens.c.digest == digest, tokens.c.consumed_at.is_(None),
                       tokens.c.revoked.is_(False), tokens.c.expires_at > now, ~family_revoked)
                .values(consumed_at=now)
                .returning(*tokens.c)
            )).first()
        return _token_from_row(row) if row is not None else None

    async def grant_ids_for(self, client_id: str | None, user_id: str) -> set[str]:
        """Grants of one user with one client, or with every client (None): to end them when consent
        is withdrawn or the user is disabled or deleted."""
        where = [tokens.c.grant_id.is_not(None), tokens.c.claims.contains(user_id, autoescape=True)]
        if client_id is not None:
            where.append(tokens.c.client_id == client_id)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(select(tokens.c.grant_id, tokens.c.claims).where(*where))).all()
        found = set()
        for row in rows:
            claims = orjson.loads(row.claims)
            if user_id in (claims.get("sub"), claims.get("user_id")):
                found.add(row.grant_id)
        return found

    async def revoke_grant(self, grant_id: str) -> int:
        # Idempotent and safe to run many times at once (RFC 7009 §2.2): every write is one
        # statement that ignores what is already there. The family mark is committed first, so a
        # token saved concurrently is either seen by the UPDATE below or sees the mark when its
        # issuer checks (TokenStore.is_grant_revoked after save).
        now = int(time.time())
        async with self._engine.connect() as conn:
            last = (await conn.execute(
                select(func.max(tokens.c.expires_at)).where(tokens.c.grant_id == grant_id)
            )).scalar()
        until = max(int(last or 0), now + GRANT_MARK_TTL)
        async with self._engine.begin() as conn:
            await conn.execute(insert_for(self._engine, revoked_grants)
                               .values(grant_id=grant_id, expires_at=until).on_conflict_do_nothing())
        async with self._engine.begin() as conn:
            # Sorted, so concurrent revocations lock revoked_jtis entries in one order (no deadlock).
            access = (select(tokens.c.jti, tokens.c.expires_at)
                      .where(tokens.c.grant_id == grant_id, tokens.c.kind == "access_token")
                      .order_by(tokens.c.jti))
            await conn.execute(insert_for(self._engine, revoked_jtis)
                               .from_select(["jti", "expires_at"], access).on_conflict_do_nothing())
            result = await conn.execute(
                update(tokens).where(tokens.c.grant_id == grant_id, tokens.c.revoked.is_(False)).values(revoked=True)
            )
        return result.rowcount

    async def set_successor(self, digest: str, sealed: str) -> bool:
        async with self._engine.begin() as conn:
            result = await conn.execute(update(tokens).where(tokens.c.digest == digest).values(successor=sealed))
        return result.rowcount > 0

    async def is_grant_revoked(self, grant_id: str) -> bool:
        async with self._engine.connect() as conn:
            row = (await conn.execute(
                select(revoked_grants.c.grant_id).where(revoked_grants.c.grant_id == grant_id)
            )).first()
        return row is not None

    async def revoke(self, digest: str) -> bool:
        async with self._engine.begin() as conn:
            result = await conn.execute(update(tokens).where(tokens.c.digest == digest).values(revoked=True))
        return result.rowcount > 0

    async def revoke_jti(self, jti: str, expires_at: int) -> None:
        # Already revoked is fine: revocation is idempotent (RFC 7009 §2.2), also when concurrent.
        async with self._engine.begin() as conn:
            await conn.execute(insert_for(self._engine, revoked_jtis)
                               .values(jti=jti, expires_at=expires_at).on_conflict_do_nothing())

    async def is_jti_revoked(self, jti: str) -> bool:
        async with self._engine.connect() as conn:
            row = (await conn.execute(
                select(revoked_jtis.c.expires_at).where(revoked_jtis.c.jti == jti)
            )).first()
        return row is not None

    async def purge_expired(self, now: int) -> int:
        async with self._engine.begin() as conn:
            n = (await conn.execute(delete(tokens).where(tokens.c.expires_at < now))).rowcount
            n += (await conn.execute(delete(revoked_jtis).where(revoked_jtis.c.expires_at < now))).rowcount
            n += (await conn.execute(delete(revoked_grants).where(revoked_grants.c.expires_at < now))).rowcount
            n += (await conn.execute(delete(replay).where(replay.c.expires_at < now))).rowcount
            for table in (authorization_codes, interactions, sessions):
                n += (await conn.execute(delete(table).where(table.c.expires_at < now))).rowcount
            n += (await conn.execute(delete(login_failures).where(
                login_failures.c.locked_until < now - 86400))).rowcount  # a day without an attempt
        return n


def _token_from_row(row: Any) -> TokenRecord:
    return TokenRecord(
        digest=row.digest, kind=row.kind, client_id=row.client_id, jti=row.jti,
        claims=orjson.loads(row.claims), expires_at=row.expires_at, revoked=bool(row.revoked),
        grant_id=row.grant_id, consumed_at=row.consumed_at, successor=row.successor,
    )


class SqlReplayCache:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def first_use(self, key: str, expires_at: int) -> bool:
        now = int(time.time())
        try:
            async with self._engine.begin() as conn:
                # An expired entry may be reused: delete it in the same transaction first.
                await conn.execute(delete(replay).where(replay.c.key == key, replay.c.expires_at < now))
                await conn.execute(insert(replay).values(key=key, expires_at=expires_at))
        except IntegrityError:
            return False
        return True


class SqlStateStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def get_or_create(self, name: str, value: str) -> str:
        try:
            async with self._engine.begin() as conn:
                await conn.execute(insert(server_state).values(name=name, value=value))
            return value
        except IntegrityError:
            async with self._engine.connect() as conn:
                stored = (await conn.execute(
                    select(server_state.c.value).where(server_state.c.name == name)
                )).scalar_one()
            return str(stored)

