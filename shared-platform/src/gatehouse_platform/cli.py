"""The commands every service's CLI starts from: `serve` and `migrate`; `worker` and `beat` for a
service with a Celery app; `replay-dead-letters` for a service that consumes events.

    app = service_cli("auth-service", app_factory="auth_service.main:create_app", port=8001,
                      service_root=Path(__file__).resolve().parents[2],
                      celery_app="auth_service.tasks", consumers=lambda: [...])

and the service adds its own commands to `app`. One image per service runs any of them by command.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import typer

from gatehouse_platform.app import LIFESPAN_STOP_SECONDS, STOP_SECONDS_VARIABLE
from gatehouse_platform.consumer import EventConsumer

# uvicorn stops taking connections on SIGTERM and waits this long for requests in flight before it
# cancels them; then the lifespan stops consumers and relays within LIFESPAN_STOP_SECONDS (app.py).
GRACEFUL_SHUTDOWN_SECONDS = 25
# With --workers N, the parent kills a worker that does not answer its health check within this; a
# worker answers only once it has imported the service (seconds on a busy machine: uvicorn's 5 s
# default had the parent kill every worker before it started, over and over). The cost: a worker
# that dies while the parent pings it holds the parent (and a SIGTERM) up to this long, as
# uvicorn's parent keeps the worker's end of the pipe open (Kludex/uvicorn#3082 is on it).
WORKER_HEALTHCHECK_SECONDS = 30


def service_cli(
    name: str,
    *,
    app_factory: str,
    port: int,
    service_root: Path | None = None,
    celery_app: str | None = None,
    consumers: Callable[[], Sequence[EventConsumer]] | None = None,
    uvicorn_options: Mapping[str, Any] | None = None,
) -> typer.Typer:
    """`service_root` (where `alembic.ini` is) adds `migrate`; `uvicorn_options` add to (or
    override) how `serve` runs uvicorn."""
    app = typer.Typer(help=f"Gatehouse {name} operations.", no_args_is_help=True)

    @app.callback()
    def commands() -> None:
        # A callback keeps `serve` a named command even where it is the only one (the web front).
        pass

    @app.command()
    def serve(
        host: str = "127.0.0.1",
        port: int = port,
        workers: int = 1,
        drain_seconds: int = typer.Option(
            GRACEFUL_SHUTDOWN_SECONDS, min=0, help="On SIGTERM, how long requests in flight may take"
        ),
        stop_seconds: float = typer.Option(
            LIFESPAN_STOP_SECONDS, min=0, help="Then how long consumers and relays may take to stop"
        ),
    ) -> None:
        """Run the service with uvicorn. SIGTERM drains it gracefully, and ends it within
        drain + stop seconds whatever hangs (a client gone, the broker gone)."""
        import uvicorn

        os.environ[STOP_SECONDS_VARIABLE] = str(stop_seconds)  # for the lifespan, in every worker
        options: dict[str, Any] = {
            "proxy_headers": True,
            "loop": "uvloop",  # named, not "auto": a missing uvloop or httptools fails loudly
            "http": "httptools",
            "timeout_graceful_shutdown": drain_seconds,
            "timeout_worker_healthcheck": WORKER_HEALTHCHECK_SECONDS,
            **(uvicorn_options or {}),
        }
        uvicorn.run(app_factory, factory=True, host=host, port=port, workers=workers, **options)

    if service_root is not None:
        _add_migrate_command(app, service_root)

    if celery_app is not None:
        _add_celery_commands(app, name, celery_app)
    if consumers is not None:
        _add_replay_command(app, consumers)
    return app


def _add_migrate_command(app: typer.Typer, service_root: Path) -> None:
    @app.command()
    def migrate(revision: str = "head") -> None:
        """Apply the Alembic migrations to the service's database."""
        config = str(service_root / "alembic.ini")
        cmd = [sys.executable, "-m", "alembic", "-c", config, "upgrade", revision]
        raise typer.Exit(subprocess.call(cmd))  # noqa: S603 - our own interpreter and arguments


def _exec_celery(celery_app: str, *args: str) -> None:
    """Become the Celery process (exec), so SIGTERM from the container runtime reaches it directly:
    a worker finishes the task in hand (acks are late, so an unfinished one is redelivered)."""
    argv = [sys.executable, "-m", "celery", "-A", celery_app, *args]
    os.execv(sys.executable, argv)  # noqa: S606 - our own interpreter and arguments


def _add_celery_commands(app: typer.Typer, name: str, celery_app: str) -> None:
    @app.command()
    def worker(
        concurrency: int = typer.Option(1, min=1, help="Tasks run at once"),
        loglevel: str = "INFO",
    ) -> None:
        """Run the Celery worker for this service's periodic and background tasks."""
        _exec_celery(
            celery_app,
            "worker",
            "--loglevel",
            loglevel,
            "--concurrency",
            str(concurrency),
            "--hostname",
            f"{name}@%h",
        )

    @app.command()
    def beat(
        schedule: Path = typer.Option(
            Path(tempfile.gettempdir()) / f"celerybeat-{name}", help="Where beat keeps its schedule state"
        ),
        loglevel: str = "INFO",
    ) -> None:
        """Run Celery beat, which sends the periodic tasks on time. Run exactly one per service."""
        _exec_celery(celery_app, "beat", "--loglevel", loglevel, "--schedule", str(schedule))


def _add_replay_command(app: typer.Typer, consumers: Callable[[], Sequence[EventConsumer]]) -> None:
    @app.command("replay-dead-letters")
    def replay_dead_letters(
        limit: int = typer.Option(100, min=1, help="At most this many per queue"),
    ) -> None:
        """Move dead-lettered events back to their queues; the running service handles them again."""

        async def replay() -> list[tuple[str, int]]:
            return [(c.dead_letter_queue, await c.replay_dead_letters(limit=limit)) for c in consumers()]

        for queue, moved in asyncio.run(replay()):
            typer.echo(f"{queue}: replayed {moved} dead letters")
