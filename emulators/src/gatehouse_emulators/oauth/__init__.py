"""Google- and GitHub-like OAuth providers over real HTTP, for local runs and tests.

In a test (`serve_in_thread` yields the base URL, e.g. `http://127.0.0.1:<port>`)::

    with serve_in_thread(gatehouse_emulators.oauth.create_app()) as base:
        discovery = f"{base}/google/.well-known/openid-configuration"

From a shell: `gatehouse-oauth-emulator --port 8090` (see emulators/README.md).
"""

from .app import create_app, main
from .config import (
    GitHubEmail,
    GitHubUser,
    GoogleUser,
    OAuthClient,
    OAuthEmulatorConfig,
)

__all__ = [
    "GitHubEmail",
    "GitHubUser",
    "GoogleUser",
    "OAuthClient",
    "OAuthEmulatorConfig",
    "create_app",
    "main",
]
