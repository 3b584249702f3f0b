"""The house rules (docs/conventions.md), run on the web front's source: it owns no database, so
what matters here is its boundaries — it talks to Gatehouse only through the public API (no import
of another service) — and each library's one owner module."""

from __future__ import annotations

from pathlib import Path

from gatehouse_platform.structure import HouseRules


class TestHouseRules(HouseRules):
    package = "gatehouse_web"
    source = Path(__file__).resolve().parents[1] / "src" / "gatehouse_web"
    sdk_owners = {
        "httpx": ("api.py",),
        "jinja2": ("rendering.py",),
        "cryptography": ("session.py",),
        "babel": ("i18n.py",),  # languages, dates and money
    }
