"""schemathesis against notification-service's own OpenAPI, over real HTTP: no 5xx, every answer
documented (status, content type, headers, body schema), 405s with their true `Allow`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from conftest import Catcher, make_settings
from gatehouse_platform.fuzz import FUZZ_CHECKS
from gatehouse_platform.testing import serve_in_thread
from notification_service.main import create_app
from notification_service.settings import Settings

schema = schemathesis.openapi.from_dict(create_app(Settings(environment="test")).openapi())


@pytest.fixture(scope="module")
def live_url(stack_settings: Settings) -> Iterator[str]:
    # The session's consumer is running already; this server only answers the API.
    with serve_in_thread(create_app(stack_settings, run_consumer=False)) as url:
        yield url


@pytest.fixture(scope="module")
def stack_settings(database_url: str, amqp_url: str, jwks_url: str, catcher: Catcher) -> Settings:
    return make_settings(database_url, amqp_url, jwks_url, catcher.port)


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_never_fails_and_matches_its_schema(
    case: schemathesis.Case, live_url: str, admin: dict[str, str]
) -> None:
    case.call_and_validate(
        base_url=live_url,
        headers=admin,
        checks=FUZZ_CHECKS,
    )
