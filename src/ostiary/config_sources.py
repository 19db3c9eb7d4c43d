"""Reading settings from the TOML file and the environment into the frozen dataclasses of ``ostiary.config``.

Environment names are ``<PREFIX><FIELD>`` and ``<PREFIX><SECTION>__<FIELD>``; any variable may instead be
given as ``<NAME>_FILE``, naming a file that holds the value. Values are converted by the field's type hint.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

__all__ = ["ConfigError", "build", "env_value"]


class ConfigError(ValueError):
    """A setting is missing, malformed or inconsistent; the message names it."""


def _convert(name: str, value: Any, hint: Any) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None or (isinstance(value, str) and value == ""):
            if type(None) in args:
                return None
        inner = [a for a in args if a is not type(None)]
        return _convert(name, value, inner[0])
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{name} must be one of {', '.join(map(str, args))}, not {value!r}")
        return value
    if origin is tuple:
        if isinstance(value, str):
            value = [v for v in value.replace(",", " ").split() if v]
        return tuple(str(v) for v in value)
    if hint is bool:
        if isinstance(value, bool):
            return value
        low = str(value).strip().lower()
        if low in {"1", "true", "yes", "on"}:
            return True
        if low in {"0", "false", "no", "off"}:
            return False
        raise ConfigError(f"{name} must be true or false, not {value!r}")
    if hint in (int, float):
        try:
            return hint(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{name} must be a number, not {value!r}") from None
    if hint is str:
        return str(value)
    if origin in (Mapping, dict) and isinstance(value, Mapping):
        return types.MappingProxyType({str(k): str(v) for k, v in value.items()})
    raise ConfigError(f"{name}: unsupported setting type {hint!r}")  # pragma: no cover


def env_value(env: Mapping[str, str], name: str) -> str | None:
    if name in env:
        return env[name]
    path = env.get(name + "_FILE")
    if path:
        try:
            return Path(path).read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise ConfigError(f"{name}_FILE: cannot read {path}: {exc.strerror}") from None
    return None


def build(cls: type[Any], data: Mapping[str, Any], env: Mapping[str, str], prefix: str) -> Any:
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        env_name = f"{prefix}{f.name.upper()}"
        if typing.get_origin(hint) is tuple and dataclasses.is_dataclass(typing.get_args(hint)[0]):
            kwargs[f.name] = _build_tables(f.name, typing.get_args(hint)[0], data.get(f.name, []))
            continue
        if dataclasses.is_dataclass(hint):
            section = data.get(f.name, {})
            if not isinstance(section, Mapping):
                raise ConfigError(f"[{f.name}] must be a table")
            kwargs[f.name] = build(hint, section, env, f"{env_name}__")  # type: ignore[arg-type]
            continue
        raw = env_value(env, env_name)
        if raw is not None:
            kwargs[f.name] = _convert(env_name, raw, hint)
        elif f.name in data:
            kwargs[f.name] = _convert(f.name, data[f.name], hint)
    unknown = set(data) - {f.name for f in dataclasses.fields(cls)}
    if unknown:
        raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
    return cls(**kwargs)


def _build_tables(name: str, cls: type[Any], tables: Any) -> tuple[Any, ...]:
    """``[[name]]`` tables (a TOML array of tables), each built like a section; values from the file only."""
    if not isinstance(tables, list) or not all(isinstance(t, Mapping) for t in tables):
        raise ConfigError(f"{name} must be a list of tables ([[{name}]])")
    return tuple(build(cls, table, {}, "") for table in tables)
