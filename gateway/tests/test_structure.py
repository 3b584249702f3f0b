"""The house rules (docs/conventions.md), run on the gateway's source: it has no database, so the
rules that matter most here are its transport's ownership of the wire parsers and its boundaries."""

from __future__ import annotations

from pathlib import Path

from gatehouse_platform.structure import HouseRules


class TestHouseRules(HouseRules):
    package = "gateway"
    source = Path(__file__).resolve().parents[1] / "src" / "gateway"
    sdk_owners = {"httptools": ("transport/http1.py",), "hiredis": ("transport/redis.py",)}
