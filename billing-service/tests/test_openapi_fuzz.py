"""schemathesis against billing-service's own OpenAPI, over real HTTP: no 5xx, every answer documented
(status, content type, headers, body schema), 405s with their true `Allow`."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, settings

from billing_service.main import create_app
from conftest import make_settings
from gatehouse_platform import testing
from gatehouse_platform.fuzz import FUZZ_CHECKS

schema = schemathesis.openapi.from_dict(create_app(make_settings()).openapi())


@schema.parametrize()
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_never_fails_and_matches_its_schema(
    case: schemathesis.Case, billing_url: str, issuer: testing.TestIssuer
) -> None:
    # A signed-in, verified user, so the fuzzer reaches past the token check too.
    case.call_and_validate(
        base_url=billing_url,
        headers=issuer.bearer(email="fuzz@example.com"),
        checks=FUZZ_CHECKS,
    )
