"""`notification-service` command line: serve, migrate, replay-dead-letters."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import typer

from notification_service.main import bootstrap
from notification_service.settings import get_settings

app = typer.Typer(help="Gatehouse notification-service operations.", no_args_is_help=True)
SERVICE_ROOT = Path(__file__).resolve().parents[2]


@app.command()
def serve(host: str = "127.0.0.1", port: int = 8003, workers: int = 1) -> None:
    """Run the API and the event consumer with uvicorn."""
    import uvicorn

    uvicorn.run(
        "notification_service.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        proxy_headers=True,
    )


@app.command()
def migrate(revision: str = "head") -> None:
    """Apply the Alembic migrations to NOTIFICATION_DATABASE_URL."""
    cmd = [sys.executable, "-m", "alembic", "-c", str(SERVICE_ROOT / "alembic.ini"), "upgrade", revision]
    raise typer.Exit(subprocess.call(cmd))  # noqa: S603


@app.command("replay-dead-letters")
def replay_dead_letters(limit: int = typer.Option(100, min=1, help="At most this many")) -> None:
    """Move dead-lettered events back to the queue; the running service handles them again."""

    async def run() -> int:
        services = bootstrap(get_settings())
        try:
            return await services.consumer.replay_dead_letters(limit=limit)
        finally:
            await services.verifier.aclose()
            await services.engine.dispose()

    typer.echo(f"replayed {asyncio.run(run())} dead letters")


if __name__ == "__main__":
    app()
