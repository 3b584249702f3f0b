"""`web` command line: serve (the platform's, as every service's: SIGTERM drains it in time)."""

from __future__ import annotations

from gatehouse_platform.cli import service_cli

app = service_cli(
    "web",
    app_factory="gatehouse_web.main:create_app",
    port=8004,
    uvicorn_options={
        "server_header": False,
        # Links carry one-time tokens in their query (/reset-password?token=): uvicorn's access
        # log would write them down. The platform's request log names the route template instead.
        "access_log": False,
        # The person's address is judged by the web itself (WEB_TRUSTED_PROXIES, web.client_of).
        "proxy_headers": False,
    },
)

if __name__ == "__main__":
    app()
