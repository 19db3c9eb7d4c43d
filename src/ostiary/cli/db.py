"""`ostiary db`: schema migrations."""

from __future__ import annotations

import click

from .common import config_option, database_error, database_option, load, with_provider


@click.group()
def db_group() -> None:
    """Database schema (Alembic migrations; also applied on every server start)."""


@db_group.command("upgrade")
@config_option
@database_option
def db_upgrade(config_file: str | None, database_url: str | None) -> None:
    """Apply every migration not yet applied."""
    from ..store.sql.engine import current_revision

    settings = load(config_file, database_url=database_url)

    async def action(provider: object) -> str | None:
        from ..app.provider import Provider

        assert isinstance(provider, Provider)
        return await current_revision(provider.engine)

    revision = with_provider(settings, action)  # with_provider migrates first
    click.echo(f"database at revision {revision}")


@db_group.command("current")
@config_option
@database_option
def db_current(config_file: str | None, database_url: str | None) -> None:
    """Show the applied and the newest schema revision (does not migrate)."""
    import asyncio

    from ..store.sql.engine import current_revision, head_revision, make_engine

    settings = load(config_file, database_url=database_url)

    async def run() -> str | None:
        engine = make_engine(settings.database_url)
        try:
            return await current_revision(engine)
        finally:
            await engine.dispose()

    try:
        applied = asyncio.run(run())
    except OSError as exc:
        raise click.ClickException(f"cannot reach the database: {exc}") from None
    except Exception as exc:
        raise database_error(exc) from None
    click.echo(f"applied: {applied}  newest: {head_revision()}")
