"""`ostiary serve`: migrate, make keys, create the demo client, then run uvicorn workers."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..config import MEMORY_DATABASE_URL
from .common import config_option, database_error, database_option, load

if TYPE_CHECKING:
    from ..app.bootstrap import BootstrapReport
    from ..config import Settings


def _self_signed(host: str) -> tuple[str, str]:
    """A development certificate for localhost / 127.0.0.1 / host, written to a private temp dir."""
    from cryptography.hazmat.primitives import serialization

    from ..keys import generate_private_key, private_key_pem, self_signed_certificate

    key = generate_private_key("ES256")
    names = sorted({"localhost", host} - {"127.0.0.1", "0.0.0.0", "::1", "::"})  # noqa: S104
    cert = self_signed_certificate(key, "localhost", days=30, dns_names=names, ip_addresses=["127.0.0.1", "::1"])
    folder = Path(tempfile.mkdtemp(prefix="ostiary-tls-"))
    key_path, cert_path = folder / "key.pem", folder / "cert.pem"
    key_path.write_bytes(private_key_pem(key))
    key_path.chmod(0o600)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return str(cert_path), str(key_path)


def _banner(settings: Settings, report: BootstrapReport) -> None:
    iss = settings.issuer
    click.secho(f"Ostiary authorization server: {iss}", bold=True)
    click.echo(f"  discovery  {iss}/.well-known/oauth-authorization-server")
    click.echo(f"  database   {settings.database_url}")
    if report.created_keys:
        click.echo(f"  keys       generated {len(report.created_keys)} signing keys")
    if report.demo_client_id and report.demo_client_secret:
        cid, secret = report.demo_client_id, report.demo_client_secret
        click.secho("\nDemo client (created now; the secret is shown only once):", fg="green")
        click.echo(f"  client_id      {cid}\n  client_secret  {secret}")
        click.echo("\nGet a token:")
        click.echo(f"  curl -s -u '{cid}:{secret}' -d grant_type=client_credentials -d scope=api:read {iss}/token")
    elif report.demo_client_id:
        click.echo(f"\nDemo client '{report.demo_client_id}' exists; new secret: "
                   f"ostiary client rotate-secret {report.demo_client_id}")
    if report.demo_user:
        shown = report.demo_user_password or "(set earlier; change it: ostiary user set-password demo --password-stdin)"
        click.secho("\nDemo user (log in through the browser):", fg="green")
        click.echo(f"  username  {report.demo_user}\n  password  {shown}")
        click.echo(f"  try it    {iss}/demo  (signs in the public demo app with PKCE)")
    click.echo("")


def _check_bind(host: str, port: int) -> None:
    """Fail in one line before the banner when the address cannot be listened on (in use, not ours)."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = infos[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
            probe.bind(address)
    except OSError as exc:
        reason = "address already in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
        raise click.ClickException(f"cannot listen on {host}:{port}: {reason}") from None


async def _bootstrap(settings: Settings) -> BootstrapReport:
    from ..app.bootstrap import bootstrap
    from ..app.provider import open_provider

    provider = await open_provider(settings)
    try:
        return await bootstrap(provider)
    finally:
        await provider.aclose()


def _export(settings: Settings, config_file: str | None) -> None:
    """Worker processes read settings from the environment: hand them what the command line chose."""
    os.environ["OSTIARY_ISSUER"] = settings.issuer
    os.environ["OSTIARY_DATABASE_URL"] = settings.database_url
    os.environ["OSTIARY_BOOTSTRAP"] = "0"  # done once, here, before the workers start
    if settings.demo is not None:
        os.environ["OSTIARY_DEMO"] = "true" if settings.demo else "false"
    if config_file:
        os.environ["OSTIARY_CONFIG"] = config_file


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535), envvar="OSTIARY_PORT",
              help="Port to listen on (env: OSTIARY_PORT).")
@click.option("--issuer", envvar="OSTIARY_ISSUER", help="Public issuer URL (default: from host and port).")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64), help="Worker processes.")
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False), help="TLS certificate (PEM).")
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False), help="TLS private key (PEM).")
@click.option("--tls-self-signed", is_flag=True, help="Serve HTTPS with a generated development certificate.")
@click.option("--demo/--no-demo", default=None, help="Create a demo client (default: on the default SQLite only).")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]))
@config_option
@database_option
def serve(host: str, port: int, issuer: str | None, workers: int, tls_cert: str | None, tls_key: str | None,
          tls_self_signed: bool, demo: bool | None, log_level: str, config_file: str | None,
          database_url: str | None) -> None:
    """Run the authorization server."""
    import uvicorn

    if bool(tls_cert) != bool(tls_key):
        raise click.UsageError("--tls-cert and --tls-key go together")
    if tls_self_signed:
        tls_cert, tls_key = _self_signed(host)
    scheme = "https" if tls_cert else "http"
    shown_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104
    default_issuer = f"{scheme}://{'[' + shown_host + ']' if ':' in shown_host else shown_host}:{port}"
    from ..config import Settings as Defaults

    settings = load(config_file, issuer=issuer, database_url=database_url, demo=demo)
    if issuer is None and settings.issuer == Defaults().issuer:  # none configured (TOML, *_FILE): host and port
        settings = load(config_file, issuer=default_issuer, database_url=database_url, demo=demo)
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    from ..config import ConfigError
    from ..keys import KeyError_

    in_memory = settings.database_url == MEMORY_DATABASE_URL
    if in_memory and workers != 1:
        raise click.UsageError('database_url "memory:" keeps everything in one process: use --workers 1')
    _check_bind(host, port)  # before the database work and the banner: a busy port fails in one line
    if in_memory:
        _serve_in_memory(settings, host, port, tls_cert, tls_key, log_level)
        return
    try:
        report = asyncio.run(_bootstrap(settings))
    except ConfigError as exc:
        raise click.ClickException(f"configuration: {exc}") from None
    except KeyError_ as exc:
        raise click.ClickException(f"signing key: {exc}") from None
    except OSError as exc:
        raise click.ClickException(f"cannot reach the database: {exc}") from None
    except Exception as exc:
        raise database_error(exc) from None
    _banner(settings, report)
    sys.stdout.flush()  # before uvicorn takes over: people and scripts read the banner at once
    _export(settings, config_file)
    _raise_open_files(settings.http.max_connections + 64)
    from .http_protocol import GuardedHttpToolsProtocol

    uvicorn.run(
        "ostiary.web.app:create_app", factory=True, host=host, port=port, workers=workers,
        ssl_certfile=tls_cert, ssl_keyfile=tls_key, log_level=log_level, access_log=False,
        loop="uvloop", http=GuardedHttpToolsProtocol, server_header=False, proxy_headers=False,
    )


def _serve_in_memory(settings: Settings, host: str, port: int, tls_cert: str | None, tls_key: str | None,
                     log_level: str) -> None:
    """database_url "memory:": storage lives in the one serving process, so it bootstraps there too
    (a bootstrap in this command's own process would be forgotten) and prints the banner then."""
    import uvicorn

    from ..web.app import make_app
    from .http_protocol import GuardedHttpToolsProtocol

    def banner(report: BootstrapReport) -> None:
        _banner(settings, report)
        sys.stdout.flush()

    app = make_app(settings, on_bootstrap=banner)
    _raise_open_files(settings.http.max_connections + 64)
    uvicorn.run(app, host=host, port=port, ssl_certfile=tls_cert, ssl_keyfile=tls_key, log_level=log_level,
                access_log=False, loop="uvloop", http=GuardedHttpToolsProtocol, server_header=False,
                proxy_headers=False)


def _raise_open_files(wanted: int) -> None:
    """Let a worker hold http.max_connections sockets: raise the soft open-files limit up to the hard one."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
