"""DESIGN (composition root): the provider is frozen and typed by the store Protocols, built from
settings in ostiary.app; a grant type is one entry of the grant table."""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, ClassVar

import pytest

from ostiary.app.grants import GRANT_TYPES, GrantDeps, build_grants
from ostiary.app.provider import Provider
from ostiary.store.backend import Stores


def _modules_named_by(hint: Any) -> set[str]:
    found = {getattr(hint, "__module__", "")}
    for arg in typing.get_args(hint):
        found |= _modules_named_by(arg)
    return found


def test_provider_is_frozen() -> None:
    params = Provider.__dataclass_params__  # type: ignore[attr-defined]
    assert params.frozen
    with pytest.raises(dataclasses.FrozenInstanceError):
        object.__new__(Provider).directory = None  # type: ignore[misc]


@pytest.mark.parametrize("cls", [Provider, Stores])
def test_typed_by_store_protocols_not_sql_or_redis_classes(cls: type) -> None:
    hints = typing.get_type_hints(cls)
    offenders = {name: hint for name, hint in hints.items()
                 if any(m.startswith(("ostiary.store.sql", "ostiary.store.redis", "ostiary.store.memory"))
                        for m in _modules_named_by(hint))}
    assert not offenders, offenders


def test_grant_table_keys_are_the_grant_types_they_build() -> None:
    assert set(GRANT_TYPES) == {"authorization_code", "client_credentials", "refresh_token"}


def test_a_new_grant_is_one_table_entry_and_a_misfiled_one_is_refused() -> None:
    class DeviceCode:  # RFC 8628 as an example of a custom grant
        grant_type: ClassVar[str] = "urn:ietf:params:oauth:grant-type:device_code"
        public_clients: ClassVar[bool] = True

        async def handle(self, request: Any, client: Any) -> dict[str, Any]:
            return {}

    deps = typing.cast(GrantDeps, None)  # these builders need nothing
    table = {DeviceCode.grant_type: lambda d: DeviceCode()}
    assert list(build_grants(deps, table)) == [DeviceCode.grant_type]
    with pytest.raises(ValueError, match="builds a"):
        build_grants(deps, {"password": lambda d: DeviceCode()})



def test_every_store_protocol_is_in_the_bundle_with_contract_tests() -> None:
    """A Protocol added to ostiary.store must join `Stores` (so every backend implements it: each
    builds a whole `Stores`) and have contract tests over every backend (tests/unit/store/)."""
    import importlib
    import inspect
    import pathlib
    import pkgutil

    import ostiary.store as package

    protocols = {}
    for info in pkgutil.iter_modules(package.__path__):
        if info.name in {"backend", "memory", "migrations", "redis", "sql"}:
            continue
        module = importlib.import_module(f"ostiary.store.{info.name}")
        protocols.update({name: obj for name, obj in vars(module).items()
                          if inspect.isclass(obj) and getattr(obj, "_is_protocol", False)
                          and obj.__module__ == module.__name__})
    fields = typing.get_type_hints(Stores)
    assert not [name for name, protocol in protocols.items() if protocol not in fields.values()]
    contract = "".join(p.read_text() for p in (pathlib.Path(__file__).parent / "store").glob("test_*.py"))
    assert not [field for field in fields if field != "database" and f"stores.{field}" not in contract]
