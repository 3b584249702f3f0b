"""The OAuth emulator app: Google (`/google`) and GitHub (`/github`) over real HTTP, in memory.

gatehouse-oauth-emulator --host 127.0.0.1 --port 8090 [--users users.json]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from . import control, github, google
from .config import OAuthEmulatorConfig
from .state import EmulatorState


def create_app(config: OAuthEmulatorConfig | None = None) -> FastAPI:
    """A fresh emulator (own users, codes, tokens and RSA key) for `config` (default: dev defaults)."""
    app = FastAPI(
        title="Gatehouse OAuth emulator",
        description="Google- and GitHub-like OAuth providers for local runs and tests.",
        version="1",
    )
    app.state.oauth_emulator = EmulatorState(config or OAuthEmulatorConfig())
    app.include_router(google.router)
    app.include_router(github.router)
    app.include_router(github.api)
    app.include_router(control.router)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Environment: OAUTH_EMULATOR_BASE_URL, OAUTH_EMULATOR_BROWSER_URL, "
        "OAUTH_EMULATOR_{GOOGLE,GITHUB}_CLIENT_ID, "
        "..._CLIENT_SECRET, ..._REDIRECT_URIS (comma-separated allow-list).",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--users", type=Path, help="JSON file of extra users (and clients)")
    args = parser.parse_args(argv)
    config = OAuthEmulatorConfig.from_env(users_file=args.users)
    advertised = config.base_url or "the URL each request uses"
    print(f"OAuth emulator on http://{args.host}:{args.port} (advertises {advertised})", flush=True)
    uvicorn.run(create_app(config), host=args.host, port=args.port, log_level="info")
