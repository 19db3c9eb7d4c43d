"""Passkey ceremonies (W3C WebAuthn Level 2 §7) over every backend (memory, SQLite, PostgreSQL), with a
software authenticator: what is accepted, and each attack refused (replay, another user's credential,
a foreign origin or RP ID, a regressed counter, hostile JSON)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
import uuid
from dataclasses import replace

import pytest

from ostiary.server.factors import Proof, combined_amr
from ostiary.server.passkeys import PasskeyError, PasskeyFactor, PasskeyService, PasskeysOff, RelyingParty
from ostiary.server.policy.levels import MFA, PHR, PHRH, achieved
from ostiary.store.backend import Stores
from ostiary.store.identity import Session, User
from tests.unit._passkey_authenticator import SoftAuthenticator, b64
from tests.unit.store.conftest import RACERS

RP = RelyingParty.from_issuer("http://localhost:8000", "Ostiary")


@pytest.fixture
def service(stores: Stores) -> PasskeyService:
    return PasskeyService(RP, stores.passkeys, stores.passkey_challenges, stores.users, stores.sessions)


async def new_user(stores: Stores, **changes: object) -> User:
    user = replace(User(id=uuid.uuid4().hex[:12], username="u" + uuid.uuid4().hex[:10]), **changes)  # type: ignore[arg-type]
    await stores.users.create(user)
    return user


def sess(user: User, sid: str) -> Session:
    """A session of `user` with public id `sid` (registration challenges are bound to it)."""
    now = int(time.time())
    return Session(digest=hashlib.sha256(sid.encode()).hexdigest(), sid=sid, user_id=user.id, auth_time=now,
                   expires_at=now + 600)


async def enrolled(service: PasskeyService, user: User, **kw: object) -> SoftAuthenticator:
    device = SoftAuthenticator(RP.id, RP.origin, **kw)  # type: ignore[arg-type]
    options = await service.registration_options(user, sess(user, "sid-" + user.id))
    await service.register(user, sess(user, "sid-" + user.id), device.create(options), "Laptop")
    return device


def iid() -> str:
    return uuid.uuid4().hex


async def passwordless(service: PasskeyService, device: SoftAuthenticator) -> Proof:
    interaction = iid()
    return await service.authenticate(interaction, None, device.get(
        await service.authentication_options(interaction, None)))


# -- the relying party -------------------------------------------------------------------------------

@pytest.mark.parametrize("issuer", ["http://127.0.0.1:8000", "http://[::1]:8000", "https://10.0.0.1",
                                    "http://example.org", "ftp://localhost"])
def test_webauthn_5_1_4_no_rp_id_for_ip_literal_or_insecure_issuer(issuer: str) -> None:
    with pytest.raises(PasskeysOff):
        RelyingParty.from_issuer(issuer, "x")


def test_rp_id_is_issuer_host_and_origin_is_issuer_origin() -> None:
    assert (RP.id, RP.origin) == ("localhost", "http://localhost:8000")
    rp = RelyingParty.from_issuer("https://Login.Example.org:443/tenant", "x")
    assert (rp.id, rp.origin) == ("login.example.org", "https://login.example.org")


# -- registration (§7.1) ----------------------------------------------------------------------------

async def test_webauthn_7_1_register_discoverable_uv_preferred_and_exclude_existing(
        service: PasskeyService, stores: Stores, caplog: pytest.LogCaptureFixture) -> None:
    user = await new_user(stores)
    with caplog.at_level(logging.INFO, "ostiary.audit"):
        device = await enrolled(service, user)
    assert '"event":"passkey_registered"' in caplog.text
    options = await service.registration_options(user, sess(user, "sid-" + user.id))
    assert options["authenticatorSelection"]["residentKey"] == "required"
    assert options["authenticatorSelection"]["userVerification"] == "preferred"
    assert options["rp"]["id"] == "localhost" and options["user"]["name"] == user.username
    assert [c["id"] for c in options["excludeCredentials"]] == [b64(device.credential_id)]
    assert options["user"]["id"] == b64(device.user_handle)  # one user handle per user, never the username
    [stored] = await service.credentials.list_for_user(user.id)
    assert stored.name == "Laptop" and not stored.backup_eligible and stored.transports == ("internal",)


async def test_registration_challenge_is_bound_to_the_session_and_single_use(service: PasskeyService,
                                                                            stores: Stores) -> None:
    user, other = await new_user(stores), await new_user(stores)
    options = await service.registration_options(user, sess(user, "sid-a"))
    response = SoftAuthenticator(RP.id, RP.origin).create(options)
    with pytest.raises(PasskeyError):  # another session (or user) cannot use the challenge
        await service.register(other, sess(other, "sid-a"), response, "x")
    with pytest.raises(PasskeyError):  # ... and the attempt spent it
        await service.register(user, sess(user, "sid-a"), response, "x")
    assert await service.credentials.list_for_user(user.id) == []


async def test_registration_of_a_credential_id_already_registered_is_refused(service: PasskeyService,
                                                                            stores: Stores) -> None:
    user, other = await new_user(stores), await new_user(stores)
    device = await enrolled(service, user)
    options = await service.registration_options(other, sess(other, "sid-o"))
    with pytest.raises(PasskeyError):
        await service.register(other, sess(other, "sid-o"), device.create(options), "stolen id")


@pytest.mark.parametrize("bad", [{"origin": "http://localhost:8001"}, {"origin": "http://evil.localhost:8000"},
                                 {"rp_id": "evil.example"}])
async def test_webauthn_7_1_registration_wrong_origin_or_rp_id_hash_refused(service: PasskeyService,
                                                                            stores: Stores, bad: dict) -> None:
    user = await new_user(stores)
    options = await service.registration_options(user, sess(user, "s"))
    with pytest.raises(PasskeyError):
        await service.register(user, sess(user, "s"), SoftAuthenticator(RP.id, RP.origin).create(options, **bad), "x")


async def test_credential_name_is_cleaned(service: PasskeyService, stores: Stores) -> None:
    user = await new_user(stores)
    options = await service.registration_options(user, sess(user, "s"))
    cred = await service.register(user, sess(user, "s"), SoftAuthenticator(RP.id, RP.origin).create(options),
                                  "\u202eKey\x00\n" + "x" * 100)
    assert cred.name == "Key" + "x" * 61
    assert await service.rename(user.id, cred.credential_id, "  ") and \
        (await service.credentials.get(cred.credential_id)).name == "Passkey"  # type: ignore[union-attr]


# -- authentication (§7.2) ----------------------------------------------------------------------------

async def test_passwordless_hardware_bound_with_uv_meets_phrh(service: PasskeyService, stores: Stores,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    user = await new_user(stores)
    device = await enrolled(service, user, counter=5)
    interaction = iid()
    options = await service.authentication_options(interaction, None)
    assert options["userVerification"] == "required" and options.get("allowCredentials", []) == []
    with caplog.at_level(logging.INFO, "ostiary.audit"):
        proof = await service.authenticate(interaction, None, device.get(options))
    assert proof.user_id == user.id and proof.amr == ("hwk",) and proof.hardware_bound
    assert combined_amr([proof]) == ("hwk", "mfa") and achieved([proof]) == PHRH
    assert '"event":"passkey_used"' in caplog.text
    assert (await service.credentials.get(b64(device.credential_id))).sign_count == 6  # type: ignore[union-attr]


async def test_rfc8176_synced_passkey_is_swk_and_meets_phr_not_phrh(service: PasskeyService,
                                                                   stores: Stores) -> None:
    user = await new_user(stores)
    device = await enrolled(service, user, backup_eligible=True)
    interaction = iid()
    proof = await service.authenticate(interaction, None, device.get(
        await service.authentication_options(interaction, None)))
    assert proof.amr == ("swk",) and not proof.hardware_bound and achieved([proof]) == PHR
    assert "pin" not in combined_amr([proof]) and "fpt" not in combined_amr([proof])


async def test_second_factor_without_uv_is_possession_only(service: PasskeyService, stores: Stores) -> None:
    user = await new_user(stores)
    device = await enrolled(service, user, user_verifying=False)
    factor, interaction = PasskeyFactor(service), iid()
    assert await factor.enrolled(user.id)
    ctx = await factor.challenge(user.id, interaction)
    assert [c["id"] for c in ctx["options"]["allowCredentials"]] == [b64(device.credential_id)]
    proof = await factor.verify(user.id, interaction, {"credential": device.get(dict(ctx["options"]))})
    assert proof is not None and proof.classes == {"possession"} and combined_amr([proof]) == ("hwk",)
    assert achieved([proof]) != MFA


async def test_passwordless_requires_user_verification(service: PasskeyService, stores: Stores) -> None:
    user = await new_user(stores)
    device = await enrolled(service, user, user_verifying=False)
    with pytest.raises(PasskeyError):
        await passwordless(service, device)


async def test_replayed_assertion_is_refused(service: PasskeyService, stores: Stores) -> None:
    user = await new_user(stores)
    device = await enrolled(service, user)
    interaction = iid()
    response = device.get(await service.authentication_options(interaction, None))
    await service.authenticate(interaction, None, response)
    with pytest.raises(PasskeyError):
        await service.authenticate(interaction, None, response)


async def test_fifty_at_once_one_assertion_gives_one_proof(service: PasskeyService, stores: Stores) -> None:
    user = await new_user(stores)
    device = await enrolled(service, user)
    interaction = iid()
    response = device.get(await service.authentication_options(interaction, None))
    results = await asyncio.gather(*[service.authenticate(interaction, None, response) for _ in range(RACERS)],
                                   return_exceptions=True)
    assert sum(not isinstance(r, BaseException) for r in results) == 1
    assert all(isinstance(r, PasskeyError) for r in results if isinstance(r, BaseException))


async def test_challenge_is_bound_to_its_interaction(service: PasskeyService, stores: Stores) -> None:
    user = await new_user(stores)
    device = await enrolled(service, user)
    options = await service.authentication_options(iid(), None)
    with pytest.raises(PasskeyError):
        await service.authenticate(iid(), None, device.get(options))


async def test_another_users_credential_refused_as_second_factor(service: PasskeyService,
                                                                 stores: Stores) -> None:
    alice, mallory = await new_user(stores), await new_user(stores)
    await enrolled(service, alice)
    mallory_device = await enrolled(service, mallory)
    interaction = iid()
    options = await service.authentication_options(interaction, alice.id)  # Alice's second-factor step
    with pytest.raises(PasskeyError):
        await service.authenticate(interaction, alice.id, mallory_device.get(options))


async def test_webauthn_7_2_6_user_handle_must_match_the_credential(service: PasskeyService,
                                                                    stores: Stores) -> None:
    user = await new_user(stores)
    device = await enrolled(service, user)
    device.user_handle = b"someone else"
    with pytest.raises(PasskeyError):
        await passwordless(service, device)


async def test_disabled_user_refused(service: PasskeyService, stores: Stores) -> None:
    user = await new_user(stores)
    device = await enrolled(service, user)
    await stores.users.update(replace(user, disabled=True))
    with pytest.raises(PasskeyError):
        await passwordless(service, device)


async def test_webauthn_7_2_21_sign_count_regression_refused_and_audited(
        service: PasskeyService, stores: Stores, caplog: pytest.LogCaptureFixture) -> None:
    user = await new_user(stores)
    device = await enrolled(service, user, counter=10)
    interaction = iid()
    await service.authenticate(interaction, None, device.get(await service.authentication_options(interaction, None)))
    with caplog.at_level(logging.INFO, "ostiary.audit"), pytest.raises(PasskeyError):
        await service.authenticate(interaction, None, device.get(
            await service.authentication_options(interaction, None), count=3))  # a clone's counter
    assert '"reason":"signature counter did not grow"' in caplog.text and '"event":"passkey_failed"' in caplog.text


@pytest.mark.parametrize("bad", [{"origin": "https://localhost:8000"}, {"origin": "http://localhost"},
                                 {"rp_id": "example.org"}])
async def test_webauthn_7_2_wrong_origin_or_rp_id_hash_refused(service: PasskeyService, stores: Stores,
                                                               bad: dict) -> None:
    user = await new_user(stores)
    device = await enrolled(service, user)
    interaction = iid()
    with pytest.raises(PasskeyError):
        await service.authenticate(interaction, None, device.get(
            await service.authentication_options(interaction, None), **bad))


HOSTILE = ["", "null", "[]", "{}", "not json", '{"id": 1, "response": {}}', '{"id": "x", "response": []}',
           '{"id": "x", "response": {"clientDataJSON": "!!!"}}', '{"id": "x", "response": {"clientDataJSON": "e30"}}',
           json.dumps({"id": "x" * 2000, "response": {"clientDataJSON": "e30"}}), "{" * 10_000,
           json.dumps({"id": "x", "response": {"clientDataJSON": "x" * 70_000}}), "\x00"]


@pytest.mark.parametrize("body", HOSTILE, ids=range(len(HOSTILE)))
async def test_hostile_responses_are_refused_cleanly(service: PasskeyService, stores: Stores,
                                                     body: str) -> None:
    user = await new_user(stores)
    with pytest.raises(PasskeyError):
        await service.authenticate(iid(), None, body)
    with pytest.raises(PasskeyError):
        await service.register(user, sess(user, "s"), body, "x")


async def test_hostile_fields_with_a_live_challenge_are_refused_cleanly(service: PasskeyService,
                                                                       stores: Stores) -> None:
    user = await new_user(stores)
    device = await enrolled(service, user)
    for mutate in ("authenticatorData", "signature", "userHandle"):
        interaction = iid()
        payload = json.loads(device.get(await service.authentication_options(interaction, None)))
        payload["response"][mutate] = "%%%" if mutate != "userHandle" else 5
        with pytest.raises(PasskeyError):
            await service.authenticate(interaction, None, json.dumps(payload))


async def test_remove_only_own_credential_and_audit(service: PasskeyService, stores: Stores,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    user, other = await new_user(stores), await new_user(stores)
    device = await enrolled(service, user)
    assert not await service.remove(other.id, b64(device.credential_id))
    assert not await service.rename(other.id, b64(device.credential_id), "mine now")
    with caplog.at_level(logging.INFO, "ostiary.audit"):
        assert await service.remove(user.id, b64(device.credential_id))
    assert '"event":"passkey_removed"' in caplog.text and await service.credentials.list_for_user(user.id) == []


async def test_store_record_use_counter_must_grow_atomically(stores: Stores) -> None:
    service = PasskeyService(RP, stores.passkeys, stores.passkey_challenges, stores.users, stores.sessions)
    user = await new_user(stores)
    device = await enrolled(service, user, counter=1)
    store, cid = stores.passkeys, b64(device.credential_id)
    results = await asyncio.gather(*[store.record_use(cid, 7, False, 1) for _ in range(RACERS)])
    assert sum(results) == 1 and not await store.record_use(cid, 7, False, 2)
    assert await store.record_use(cid, 8, True, 3)


async def test_user_deletion_removes_their_passkeys(service: PasskeyService, stores: Stores) -> None:
    user = await new_user(stores)
    await enrolled(service, user)
    await stores.users.delete(user.id)
    assert await service.credentials.list_for_user(user.id) == []


def test_ip_issuer_says_once_at_start_that_passkeys_are_off(caplog: pytest.LogCaptureFixture) -> None:
    from ostiary.app.passkeys import log_passkeys_off
    from ostiary.config import Settings

    with caplog.at_level(logging.INFO, "ostiary"):
        log_passkeys_off(Settings(issuer="http://localhost:8000"))
        assert caplog.records == []
        log_passkeys_off(Settings(issuer="http://127.0.0.1:8000"))
    [record] = caplog.records
    assert "passkeys are off" in record.getMessage() and "127.0.0.1" in record.getMessage()


async def test_registering_ends_the_users_other_sessions(service: PasskeyService, stores: Stores,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    """A phished password's session made before the owner added a passkey must not outlive it (as for TOTP)."""
    user, bystander = await new_user(stores), await new_user(stores)
    mine, phished, theirs = sess(user, uuid.uuid4().hex), sess(user, uuid.uuid4().hex), sess(bystander, iid())
    for s in (mine, phished, theirs):
        await stores.sessions.create(s)
    options = await service.registration_options(user, mine)
    with caplog.at_level(logging.INFO, "ostiary.audit"):
        await service.register(user, mine, SoftAuthenticator(RP.id, RP.origin).create(options), "Key")
    now = int(time.time())
    assert await stores.sessions.get(mine.digest, now) is not None and await stores.sessions.get(theirs.digest, now)
    assert await stores.sessions.get(phished.digest, now) is None
    assert '"sessions_ended":1' in caplog.text
