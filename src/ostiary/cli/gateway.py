"""`ostiary gateway`: run the API gateway, or `ostiary gateway check` one request against its configuration."""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from ..gateway.config import GatewayConfig

__all__ = ["gateway_group"]


def _config(path: str) -> GatewayConfig:
    from ..gateway.config import GatewayConfigError, load_config
    from ..gateway.internal_jwt import InternalTokens

    try:
        config = load_config(path)
        if config.internal_jwt is not None:
            InternalTokens(config.internal_jwt, config.source)  # an unusable key is refused before start
    except GatewayConfigError as exc:
        raise click.ClickException(str(exc)) from None
    return config


@click.group("gateway", invoke_without_command=True)
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="The gateway's TOML file.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8080, show_default=True)
@click.option("--workers", type=int, default=1, show_default=True,
              help="Processes (rate limits are shared only with a redis:// rate_limit_backend).")
@click.option("--access-log/--no-access-log", default=True, show_default=True, help="JSON access log on stderr.")
@click.pass_context
def gateway_group(ctx: click.Context, config_file: str | None, host: str, port: int, workers: int,
                  access_log: bool) -> None:
    """API gateway: protect any HTTP API with Ostiary tokens, scopes and rate limits."""
    if ctx.invoked_subcommand is not None:
        return
    if not config_file:
        raise click.UsageError("--config is required")
    import os

    import uvicorn

    config = _config(config_file)  # refuse a bad file before anything listens
    os.environ["OSTIARY_GATEWAY_CONFIG"] = os.path.abspath(config_file)
    os.environ["OSTIARY_GATEWAY_ACCESS_LOG"] = "1" if access_log else "0"
    click.echo(f"Ostiary gateway on http://{host}:{port} ({len(config.routes)} routes, tokens from {config.issuer})")
    from .http_protocol import GuardedHttpToolsProtocol  # a header-read deadline against slow clients

    uvicorn.run("ostiary.gateway.serve:app", factory=True, host=host, port=port, workers=workers,
                log_level="warning", proxy_headers=False, server_header=False, date_header=False, access_log=False,
                lifespan="on", http=GuardedHttpToolsProtocol)


@gateway_group.command("check")
@click.option("--config", "config_file", required=True, type=click.Path(dir_okay=False))
@click.option("--token", help="The bearer token to check (omit for none).")
@click.option("--method", default="GET", show_default=True)
@click.option("--path", "path", required=True, help="The request path, as sent (percent-encoded).")
@click.option("--address", default="127.0.0.1", show_default=True, help="The caller's address.")
def gateway_check(config_file: str, token: str | None, method: str, path: str, address: str) -> None:
    """Say what the gateway would do with one request, and why (rate limits are not counted)."""
    from ..gateway.decision import EdgeCheck
    from ..gateway.verifiers import Verifiers

    config = _config(config_file)

    async def run() -> int:
        verifiers = Verifiers(config)
        try:
            edge = EdgeCheck(config.routes, verifiers, None)
            decision = await edge.decide(method.upper(), path.partition("?")[0].encode(),
                                         [f"Bearer {token}"] if token else [], address, count=False)
        finally:
            await verifiers.aclose()
        verdict = "ALLOW" if decision.allowed else f"DENY {decision.status} {decision.error}"
        click.echo(f"{verdict}: {method.upper()} {path}")
        for reason in decision.reasons:
            click.echo(f"  - {reason}")
        for name, value in sorted(decision.headers.items()):
            click.echo(f"  {name}: {value}")
        return 0 if decision.allowed else 1

    sys.exit(asyncio.run(run()))
