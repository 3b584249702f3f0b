"""`auth-service` command line: serve, migrate, worker, beat, replay-dead-letters, create-admin,
rotate-keys, purge."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from auth_service import maintenance
from auth_service.accounts.deletion import erase_due
from auth_service.errors import InvalidField
from auth_service.keys.service import rotate_keys
from auth_service.maintenance import run_in_transaction
from auth_service.settings import Settings
from gatehouse_platform.cli import service_cli
from gatehouse_platform.consumer import EventConsumer
from gatehouse_platform.db import make_engine, make_session_factory

app = service_cli(
    "auth-service",
    app_factory="auth_service.main:create_app",
    port=8001,
    service_root=Path(__file__).resolve().parents[2],
    celery_app="auth_service.tasks",
    # The client's address is judged by the service itself (AUTH_TRUSTED_PROXIES, see
    # dependencies.get_client): uvicorn must not rewrite the peer from X-Forwarded-For first.
    uvicorn_options={"proxy_headers": False},
    consumers=lambda: [_consumer()],
)


def _consumer() -> EventConsumer:
    from auth_service.main import event_consumer  # the composition root, only when replaying

    settings = Settings()
    return event_consumer(settings, make_session_factory(make_engine(settings.database_url)))


@app.command("create-admin")
def create_admin(
    email: str,
    password: str = typer.Option(..., prompt=True, hide_input=True, envvar="AUTH_ADMIN_PASSWORD"),
    username: str = "",
) -> None:
    """Create the first admin (or make an existing account admin). The password is asked for, or
    read from AUTH_ADMIN_PASSWORD; never pass it as an argument (it would show in `ps`)."""

    async def work(session: AsyncSession, settings: Settings) -> Any:
        return await maintenance.create_admin(
            session, settings, email=email, password=password, username=username or None
        )

    try:
        user = asyncio.run(run_in_transaction(work))
    except InvalidField as exc:
        problems = "; ".join(f"{field}: {message}" for field, message in exc.extra["errors"].items())
        typer.echo(f"no admin created: {problems}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"admin {user.email} ({user.id})")


@app.command("rotate-keys")
def rotate(
    publish_ahead: float = typer.Option(
        None, help="Seconds the new key is published before it signs (default AUTH_KEY_PUBLISH_AHEAD_SECONDS)"
    ),
) -> None:
    """Publish a new signing key now; it signs once every verifier can have fetched it, and the
    old one stays in the JWKS until its tokens expire. Nobody is signed out."""

    async def work(session: AsyncSession, settings: Settings) -> Any:
        key = await rotate_keys(session, settings, publish_ahead_seconds=publish_ahead)
        return f"new signing key {key.kid}: published now, signs from {key.activates_at.isoformat()}"

    typer.echo(asyncio.run(run_in_transaction(work)))


@app.command()
def purge() -> None:
    """Delete expired and long-spent tokens, codes and sessions, and audit events past retention."""

    async def work(session: AsyncSession, settings: Settings) -> Any:
        return await maintenance.purge_expired(session, settings)

    typer.echo(str(asyncio.run(run_in_transaction(work))))


@app.command("erase-deleted")
def erase_deleted(
    as_of: datetime = typer.Option(
        None, help="Erase as if it were this time (ISO 8601, UTC): what the beat would do then"
    ),
) -> None:
    """Erase the deleted accounts whose grace period is over (the beat does this periodically)."""

    async def work(session: AsyncSession, settings: Settings) -> Any:
        return await erase_due(session, now=as_of.replace(tzinfo=as_of.tzinfo or UTC) if as_of else None)

    for user_id in asyncio.run(run_in_transaction(work)):
        typer.echo(f"erased {user_id}")


if __name__ == "__main__":
    app()
