"""Issue 11 items 1 and 4: the sign-in service alone, over the in-memory store (no HTTP, no SQL).

Each test drives `InteractionService` through its typed outcomes, as the web routes do: begin, one
call per step, resume. The attacks: a password alone past an enrolled second factor, a second factor
for another user, a finished interaction replayed, a return_to elsewhere.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from argon2 import PasswordHasher

from ostiary.config import OidcSettings, load_settings
from ostiary.errors import RedirectTarget
from ostiary.server.factors import Proof, SecondFactor
from ostiary.server.flow import AuthorizationFlow, AuthorizationResponse
from ostiary.server.keyring import KeyRing
from ostiary.server.signin.outcomes import ErrorPage, Finish, Outcome, Redirect, ShowStep
from ostiary.server.signin.requirement import LevelPolicy
from ostiary.server.signin.service import InteractionService
from ostiary.server.signin.steps import STEPS
from ostiary.server.users import UserService, login_limits
from ostiary.store import Client
from ostiary.store.memory import open_memory
from tests.protocol._factors import CODE, FakeFactor

ISSUER = "https://as.example"
REDIRECT = "https://app.example/cb"
PASSWORD = "correct horse battery"


class Engine:
    def __init__(self) -> None:
        stores = open_memory()
        self.stores = stores
        self.factors: dict[str, SecondFactor] = {}
        self.users = UserService(stores.users, stores.throttle, login_limits(load_settings(env={})))
        self.users._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
        self.flow = AuthorizationFlow(
            issuer=ISSUER, clients=stores.clients, users=stores.users, user_service=self.users,
            sessions=stores.sessions, consents=stores.consents, codes=stores.codes,
            interactions=stores.interactions, keyring=KeyRing(stores.keys, 5.0), settings=OidcSettings(),
            levels=LevelPolicy(self.factors))
        self.service = InteractionService(self.flow, self.factors)
        self.cookie: str | None = None

    async def begin(self, **params: str) -> Outcome:
        query = {"client_id": "app", "redirect_uri": REDIRECT, "response_type": "code", "scope": "openid",
                 "state": "s", "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
                 "code_challenge_method": "S256", **params}
        return self.keep(await self.service.begin(query, (), self.cookie))

    def keep(self, outcome: Outcome) -> Outcome:
        if isinstance(outcome, Redirect) and outcome.cookie is not None:
            self.cookie = outcome.cookie  # as the browser would
        return outcome


@pytest.fixture
async def engine() -> Any:
    e = Engine()
    await e.stores.clients.create(Client(client_id="app", grant_types=("authorization_code",), response_types=("code",),
                                         redirect_uris=(REDIRECT,), skip_consent=True))
    return e


async def _interaction(engine: Engine, outcome: Outcome) -> Any:
    assert isinstance(outcome, Redirect) and outcome.starts is not None, outcome
    found = await engine.service.load(outcome.starts.id)
    assert found is not None
    return found


def _code(outcome: Outcome) -> str:
    assert isinstance(outcome, Finish) and isinstance(outcome.response, AuthorizationResponse), outcome
    return outcome.response.params["code"]


def test_steps_are_chosen_from_one_ordered_table():
    assert [rule.name for rule in STEPS] == ["login", "second_factor", "select_account", "consent", "select_patient"]
    assert [rule.name for rule in STEPS if rule.local] == ["login", "second_factor"]


async def test_password_sign_in_then_a_code(engine):
    user = await engine.users.create("alice", PASSWORD)
    interaction = await _interaction(engine, await engine.begin())
    shown = await engine.service.resume(interaction, engine.cookie)
    assert isinstance(shown, ShowStep) and shown.step == "login"
    wrong = await engine.service.password(interaction, "alice", "nope", "10.0.0.1", engine.cookie)
    assert isinstance(wrong, ShowStep) and wrong.status == 400 and engine.cookie is None
    done = engine.keep(await engine.service.password(interaction, "alice", PASSWORD, "10.0.0.1", None))
    assert isinstance(done, Redirect) and done.cookie is not None
    interaction = await engine.service.load(interaction.id)
    (proof,) = interaction.proofs  # with its time: a password reset since voids it (flow.auth.outdated)
    assert proof == Proof(user.id, ("pwd",), frozenset({"knowledge"}), time=proof.time) and proof.time
    code = _code(await engine.service.resume(interaction, engine.cookie))
    assert code
    # Single use: the finished interaction gives no second code (a double submit, a replay).
    again = await engine.service.resume(interaction, engine.cookie)
    assert isinstance(again, ErrorPage)


async def test_enrolled_factor_password_alone_makes_no_session(engine):
    user = await engine.users.create("bob", PASSWORD)
    factor = FakeFactor()
    factor.users.add(user.id)
    engine.factors["fake"] = factor
    interaction = await _interaction(engine, await engine.begin())
    after = engine.keep(await engine.service.password(interaction, "bob", PASSWORD, "10.0.0.2", None))
    assert isinstance(after, Redirect) and after.cookie is None
    interaction = await engine.service.load(interaction.id)
    shown = await engine.service.resume(interaction, engine.cookie)
    assert isinstance(shown, ShowStep) and shown.step == "second_factor" and shown.user.id == user.id
    assert [c.name for c in shown.factors] == ["fake"] and shown.factors[0].ctx["hint"]
    bad = await engine.service.second_factor(interaction, {"factor": "fake", "code": "000000"}, engine.cookie)
    assert isinstance(bad, ShowStep) and bad.status == 400
    good = engine.keep(await engine.service.second_factor(interaction, {"factor": "fake", "code": CODE}, None))
    assert isinstance(good, Redirect) and good.cookie is not None
    session = await engine.flow.session(engine.cookie)
    assert session is not None and session[0].acr == "urn:ostiary:acr:mfa"
    assert session[0].amr == ("pwd", "otp", "mfa")
    assert _code(await engine.service.resume(await engine.service.load(interaction.id), engine.cookie))


async def test_a_proof_of_another_user_starts_over_instead_of_adding_up(engine):
    """Proofs of one user only: Mallory's second factor never completes Alice's password sign-in."""
    alice = await engine.users.create("alice2", PASSWORD)
    mallory = await engine.users.create("mallory", PASSWORD)
    factor = FakeFactor()
    factor.users |= {alice.id, mallory.id}
    engine.factors["fake"] = factor
    interaction = await _interaction(engine, await engine.begin())
    await engine.service.password(interaction, "alice2", PASSWORD, "10.0.0.3", None)
    interaction = await engine.service.load(interaction.id)
    other = Proof(mallory.id, ("otp",), frozenset({"possession"}))
    await engine.service.prove(interaction, other, None)
    interaction = await engine.service.load(interaction.id)
    assert [p.user_id for p in interaction.proofs] == [mallory.id] and interaction.authenticated is None
    # The second-factor form verifies for the user of the proofs so far, never a user named in the form.
    await engine.service.second_factor(interaction, {"factor": "fake", "code": CODE, "user_id": alice.id}, None)
    assert factor.verified[-1][0] == mallory.id


async def test_local_sign_in_goes_back_to_its_path_and_refuses_others(engine):
    await engine.users.create("carol", PASSWORD)
    for hostile in ("//evil.example", "https://evil.example", "/\\evil", "/a\tb", None):
        assert isinstance(await engine.service.begin_local(hostile, None, None, None), ErrorPage)
    started = await engine.service.begin_local("/account", None, None, None)
    interaction = await _interaction(engine, started)
    assert interaction.local and interaction.request.client_id == ""
    engine.keep(await engine.service.password(interaction, "carol", PASSWORD, "10.0.0.4", None))
    back = await engine.service.resume(await engine.service.load(interaction.id), engine.cookie)
    assert isinstance(back, Redirect) and back.location == "/account" and back.ends is not None
    # Signed in: no interaction at all; prompt=login asks again.
    assert await engine.service.begin_local("/account", None, None, engine.cookie) == Redirect("/account")
    again = await engine.service.begin_local("/account", "login", None, engine.cookie)
    assert isinstance(again, Redirect) and again.starts is not None


async def test_abort_answers_access_denied_to_the_client(engine):
    interaction = await _interaction(engine, await engine.begin())
    outcome = await engine.service.abort(interaction)
    assert isinstance(outcome, Finish) and isinstance(outcome.response, AuthorizationResponse)
    assert outcome.response.params["error"] == "access_denied"
    assert outcome.response.target == RedirectTarget(REDIRECT, "query", "s")


async def test_cancelling_a_local_sign_in_goes_home(engine):
    interaction = await _interaction(engine, await engine.service.begin_local("/account", None, None, None))
    outcome = await engine.service.abort(interaction)
    assert outcome == Redirect("/", ends=interaction) and await engine.service.load(interaction.id) is None


async def test_the_same_proof_twice_is_kept_once(engine):
    """A repeated factor adds nothing: the interaction's proofs cannot grow without end."""
    user = await engine.users.create("dora", PASSWORD)
    engine.factors["key"] = FakeFactor("key", phishing_resistant=True, hardware_bound=True, amr=("hwk",))
    engine.factors["key"].users.add(user.id)
    interaction = await _interaction(engine, await engine.begin(acr_values="phrh", claims=json.dumps(
        {"id_token": {"acr": {"essential": True, "values": ["phrh"]}}})))
    await engine.service.password(interaction, "dora", PASSWORD, "10.0.0.5", None)
    await engine.service.password(await engine.service.load(interaction.id), "dora", PASSWORD, "10.0.0.5", None)
    assert len((await engine.service.load(interaction.id)).proofs) == 1
