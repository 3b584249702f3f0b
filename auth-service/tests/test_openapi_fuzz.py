"""schemathesis against auth-service's own OpenAPI, over real HTTP: no 5xx, every answer documented
(status, content type, headers, body schema), 405s with their true `Allow`."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from auth_service.main import create_app
from auth_service.settings import Settings
from conftest import PASSWORD, new_email, new_username
from gatehouse_platform.fuzz import FUZZ_CHECKS
from gatehouse_platform.testing import serve_in_thread

schema = schemathesis.openapi.from_dict(create_app(Settings(environment="test")).openapi())


@pytest.fixture(scope="module")
def live_url(settings: Settings) -> Iterator[str]:
    with serve_in_thread(create_app(settings)) as url:
        yield url


@pytest.fixture(scope="module")
def auth_headers(live_url: str) -> dict[str, str]:
    """A signed-in user, so the fuzzer reaches past the token check too."""
    with httpx.Client(base_url=live_url) as http:
        email = new_email()
        registered = http.post(
            "/auth/register", json={"email": email, "username": new_username(), "password": PASSWORD}
        )
        assert registered.status_code == 202, registered.text
        tokens = http.post("/auth/login", json={"email": email, "password": PASSWORD}).json()
    return {"Authorization": f"Bearer {tokens['access_token']}"}


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_never_fails_and_matches_its_schema(
    case: schemathesis.Case, live_url: str, auth_headers: dict[str, str]
) -> None:
    case.call_and_validate(
        base_url=live_url,
        headers=auth_headers,
        checks=FUZZ_CHECKS,
    )
