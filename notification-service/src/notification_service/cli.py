"""`notification-service` command line: serve, migrate, replay-dead-letters."""

from __future__ import annotations

from pathlib import Path

from gatehouse_platform.cli import service_cli
from notification_service.main import bootstrap
from notification_service.settings import get_settings

app = service_cli(
    "notification-service",
    app_factory="notification_service.main:create_app",
    port=8003,
    service_root=Path(__file__).resolve().parents[2],
    consumers=lambda: [bootstrap(get_settings())[0].consumer],
)


if __name__ == "__main__":
    app()
