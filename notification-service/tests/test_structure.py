"""The house rules (docs/conventions.md), run on notification-service's source."""

from __future__ import annotations

from conftest import SERVICE_ROOT
from gatehouse_platform.structure import HouseRules


class TestHouseRules(HouseRules):
    package = "notification_service"
    source = SERVICE_ROOT / "src" / "notification_service"
    sdk_owners = {"aiosmtplib": ("email/smtp.py",), "jinja2": ("email/render.py",)}
