"""`notification-service` command line: serve, migrate, replay-dead-letters."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer

from gatehouse_platform.cli import service_cli
from notification_service.main import bootstrap
from notification_service.settings import get_settings

app = service_cli(
    "notification-service",
    app_factory="notification_service.main:create_app",
    port=8003,
    service_root=Path(__file__).resolve().parents[2],
)


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
