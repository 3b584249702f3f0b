"""`gateway` command line: serve."""

from __future__ import annotations

import os

import typer

from gatehouse_platform.app import LIFESPAN_STOP_SECONDS, STOP_SECONDS_VARIABLE
from gatehouse_platform.cli import WORKER_HEALTHCHECK_SECONDS
from gateway.settings import Settings

app = typer.Typer(help="Gatehouse gateway operations.", no_args_is_help=True)


@app.callback()
def main() -> None:
    """Gatehouse gateway."""


@app.command()
def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    stop_seconds: float = typer.Option(
        LIFESPAN_STOP_SECONDS,
        min=0,
        help="After the drain, how long the consumer and clients may take to stop",
    ),
) -> None:
    """Run the gateway with uvicorn. On SIGTERM it stops accepting, lets requests in flight finish
    (up to GATEWAY_SHUTDOWN_GRACE_SECONDS), then stops its consumer and closes its connections
    within --stop-seconds, whatever hangs."""
    import uvicorn

    settings = Settings()
    os.environ[STOP_SECONDS_VARIABLE] = str(stop_seconds)  # for the lifespan, in every worker
    uvicorn.run(
        "gateway.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        # X-Forwarded-For is judged by the gateway itself (GATEWAY_TRUSTED_PROXIES): uvicorn must
        # not rewrite the peer address from it first.
        proxy_headers=False,
        server_header=False,
        access_log=False,  # the edge logs each proxied request itself ("request", with its timing)
        timeout_graceful_shutdown=settings.shutdown_grace_seconds,
        timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS,
        log_level=settings.log_level.lower(),
    )


if __name__ == "__main__":
    app()
