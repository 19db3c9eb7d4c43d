"""The API gateway: routes, edge checks with the guard of ``ostiary.resource``, rate limits, proxying, forward-auth.

Needs the server extras (uvicorn to run, redis for shared rate limits).
"""

from .app import Gateway
from .config import GatewayConfig, GatewayConfigError, Route, load_config, parse_config

__all__ = ["Gateway", "GatewayConfig", "GatewayConfigError", "Route", "load_config", "parse_config"]
