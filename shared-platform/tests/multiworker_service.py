"""The smallest service `serve` can run (a /readyz and nothing else), for tests of a real uvicorn
process with several workers (`testing.ServiceProcess`). Run as `python -m multiworker_service`
with this folder on PYTHONPATH."""

from __future__ import annotations

from fastapi import FastAPI

from gatehouse_platform.cli import service_cli


def create_app() -> FastAPI:
    app = FastAPI()

    @app.get("/readyz")
    async def readyz() -> dict[str, str]:
        return {"status": "ready"}

    return app


cli = service_cli("multiworker", app_factory="multiworker_service:create_app", port=0)

if __name__ == "__main__":
    cli()
