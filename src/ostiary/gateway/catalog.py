"""The APIs a gateway offers on the developer portal: its routes marked ``self_service``.

The authorization server reads the same gateway TOML file (``portal.gateway_config``), so the portal lists
exactly what the gateway enforces: each self-service route's audience, the scopes its methods need and its
description. Routes with the same audience are one API.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .config import GatewayConfig, load_config

__all__ = ["PortalApi", "load_catalog", "self_service_apis"]


@dataclass(frozen=True, slots=True)
class PortalApi:
    audience: str
    scopes: tuple[str, ...]
    name: str
    description: str
    paths: tuple[str, ...]


def self_service_apis(config: GatewayConfig) -> tuple[PortalApi, ...]:
    by_audience: dict[str, PortalApi] = {}
    for route in config.routes:
        if not route.self_service or route.public or route.audience is None:
            continue
        scopes = tuple(dict.fromkeys(s for needed in route.scopes.values() for s in needed))
        known = by_audience.get(route.audience)
        if known is None:
            by_audience[route.audience] = PortalApi(route.audience, scopes, route.name, route.description,
                                                    (route.path or "/",))
        else:
            by_audience[route.audience] = PortalApi(
                known.audience, tuple(dict.fromkeys((*known.scopes, *scopes))), known.name,
                known.description or route.description, (*known.paths, route.path or "/"))
    return tuple(by_audience.values())


def load_catalog(path: str | Path) -> tuple[PortalApi, ...]:
    """The self-service APIs of the gateway file at ``path``; raises GatewayConfigError."""
    return self_service_apis(load_config(path))
