"""The console script every service shares: how `serve` runs uvicorn."""

from __future__ import annotations

from typing import Any

import pytest
import uvicorn
from typer.testing import CliRunner

from gatehouse_platform.cli import GRACEFUL_SHUTDOWN_SECONDS, service_cli


def served_with(monkeypatch: pytest.MonkeyPatch, **uvicorn_options: Any) -> dict[str, Any]:
    """The options `serve` hands to uvicorn (uvicorn.run caught, so no server starts)."""
    seen: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: seen.update(options, app=app))
    cli = service_cli("demo", app_factory="demo.main:create_app", port=8123, uvicorn_options=uvicorn_options)
    result = CliRunner().invoke(cli, ["serve", "--port", "8124"])
    assert result.exit_code == 0, result.output
    return seen


def test_serve_trusts_proxy_headers_and_drains_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    options = served_with(monkeypatch)
    assert options["app"] == "demo.main:create_app" and options["factory"] is True
    assert options["port"] == 8124
    assert options["proxy_headers"] is True
    assert options["timeout_graceful_shutdown"] == GRACEFUL_SHUTDOWN_SECONDS


def test_a_service_overrides_a_default_without_losing_the_others(monkeypatch: pytest.MonkeyPatch) -> None:
    # auth-service and the web front judge X-Forwarded-For themselves (gatehouse_platform.clientip)
    options = served_with(monkeypatch, proxy_headers=False, access_log=False)
    assert options["proxy_headers"] is False and options["access_log"] is False
    assert options["timeout_graceful_shutdown"] == GRACEFUL_SHUTDOWN_SECONDS
