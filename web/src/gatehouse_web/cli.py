"""`web` command line: serve."""

from __future__ import annotations

import typer

from gatehouse_web.settings import Settings

app = typer.Typer(help="Gatehouse web front operations.", no_args_is_help=True)


@app.callback()
def main() -> None:
    """Gatehouse web front."""


@app.command()
def serve(host: str = "127.0.0.1", port: int = 8004, workers: int = 1) -> None:
    """Run the pages with uvicorn (behind the gateway, which routes every non-API path here)."""
    import uvicorn

    settings = Settings()
    uvicorn.run(
        "gatehouse_web.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        server_header=False,
        # Links carry one-time tokens in their query (/reset-password?token=): uvicorn's access log
        # would write them down. The platform's request log names the route template instead.
        access_log=False,
        log_level=settings.log_level.lower(),
    )


if __name__ == "__main__":
    app()
