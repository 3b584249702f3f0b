"""schemathesis over the gateway's merged OpenAPI with auth-service behind it, over real HTTP, as
issue 22's drill ran it: the edge's own answers (its token check, rate limits, refused paths) and
the upstream's must all be the documented ones, 405s with their true `Allow`."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from conftest import PASSWORD, gateway_settings, new_email, upstream
from gatehouse_platform.fuzz import FUZZ_CHECKS
from gatehouse_platform.testing import serve_in_thread
from gateway.main import create_app

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def gateway_url(auth_service: str) -> Iterator[str]:
    app = create_app(gateway_settings(upstreams={"auth": upstream(auth_service, "/auth", "/.well-known")}))
    with serve_in_thread(app) as url:
        yield url


@pytest.fixture(scope="module")
def merged(gateway_url: str) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{gateway_url}/openapi.json")


@pytest.fixture(scope="module")
def auth_headers(gateway_url: str) -> dict[str, str]:
    """A signed-in user, so the fuzzer reaches past the edge's token check too."""
    with httpx.Client(base_url=gateway_url) as http:
        email = new_email()
        registered = http.post(
            "/auth/register",
            json={"email": email, "username": f"u{uuid.uuid4().hex[:12]}", "password": PASSWORD},
        )
        assert registered.status_code == 202, registered.text
        tokens = http.post("/auth/login", json={"email": email, "password": PASSWORD}).json()
    return {"Authorization": f"Bearer {tokens['access_token']}"}


def test_the_merged_document_says_what_the_gateway_answers(
    merged: schemathesis.BaseSchema, gateway_url: str, auth_headers: dict[str, str]
) -> None:
    # The document exists only once the gateway runs, so each operation is fuzzed here rather
    # than through `schema.parametrize()` at collection time.
    for result in merged.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
        def answers_as_documented(case: schemathesis.Case) -> None:
            case.call_and_validate(base_url=gateway_url, headers=auth_headers, checks=FUZZ_CHECKS)

        answers_as_documented()
