"""schemathesis against billing-service's own OpenAPI, over real HTTP: no 5xx, and every documented
response matches its schema and content type."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from billing_service.main import create_app
from conftest import make_settings
from gatehouse_platform import testing

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
        checks=[not_a_server_error, response_schema_conformance, content_type_conformance],
    )
