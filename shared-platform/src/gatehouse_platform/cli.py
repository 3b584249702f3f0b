"""The commands every service's CLI starts from: `serve` and `migrate`.

    app = service_cli("auth-service", app_factory="auth_service.main:create_app", port=8001,
                      service_root=Path(__file__).resolve().parents[2])

and the service adds its own commands to `app`.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import typer

# uvicorn stops taking connections on SIGTERM and waits this long for requests in flight (and the
# lifespan's own drain of consumers and relays) before it gives up.
GRACEFUL_SHUTDOWN_SECONDS = 25


def service_cli(name: str, *, app_factory: str, port: int, service_root: Path) -> typer.Typer:
    app = typer.Typer(help=f"Gatehouse {name} operations.", no_args_is_help=True)

    @app.command()
    def serve(host: str = "127.0.0.1", port: int = port, workers: int = 1) -> None:
        """Run the service with uvicorn (SIGTERM drains it gracefully)."""
        import uvicorn

        uvicorn.run(
            app_factory,
            factory=True,
            host=host,
            port=port,
            workers=workers,
            proxy_headers=True,
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        )

    @app.command()
    def migrate(revision: str = "head") -> None:
        """Apply the Alembic migrations to the service's database."""
        config = str(service_root / "alembic.ini")
        cmd = [sys.executable, "-m", "alembic", "-c", config, "upgrade", revision]
        raise typer.Exit(subprocess.call(cmd))  # noqa: S603 - our own interpreter and arguments

    return app
