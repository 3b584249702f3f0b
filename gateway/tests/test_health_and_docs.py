"""/healthz, /readyz (upstreams + Redis), /metrics, and the aggregated OpenAPI document."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from pydantic import BaseModel

from conftest import Echo, asgi_gateway, dead_url, gateway_settings, upstream
from gatehouse_platform.testing import serve_in_thread
from gateway.openapi import merge_documents
from gateway.routing import RouteTable

pytestmark = pytest.mark.timeout(60)


class UserOut(BaseModel):  # a schema name auth-service uses too, defined differently
    subscriber: bool


@pytest.fixture(scope="module")
def billing() -> Iterator[str]:
    """A stand-in billing-service with an OpenAPI document of its own."""
    app = FastAPI(title="billing")

    @app.get("/billing/plans")
    async def plans() -> list[str]:
        return []

    @app.get("/billing/subscriptions/me")
    async def mine() -> UserOut:
        return UserOut(subscriber=False)

    @app.post("/billing/stripe/webhook")
    async def webhook() -> dict[str, str]:
        return {}

    @app.get("/readyz")
    async def ready() -> dict[str, str]:
        return {"status": "ok"}

    with serve_in_thread(app) as url:
        yield url


async def test_healthz_answers_while_upstreams_are_down(echo: Echo) -> None:
    settings = gateway_settings(upstreams={"auth": upstream(dead_url(), "/auth")})
    async with asgi_gateway(settings) as http:
        response = await http.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_checks_every_upstream_and_redis(auth_service: str, billing: str) -> None:
    settings = gateway_settings(
        upstreams={"auth": upstream(auth_service, "/auth"), "billing": upstream(billing, "/billing")}
    )
    async with asgi_gateway(settings) as http:
        response = await http.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ok", "checks": {"redis": "ok", "auth": "ok", "billing": "ok"}}


async def test_readyz_reports_a_down_upstream(auth_service: str) -> None:
    settings = gateway_settings(
        upstreams={"auth": upstream(auth_service, "/auth"), "billing": upstream(dead_url(), "/billing")}
    )
    async with asgi_gateway(settings) as http:
        response = await http.get("/readyz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["auth"] == "ok" and checks["redis"] == "ok"
    assert checks["billing"].startswith("fail")


async def test_readyz_excludes_named_checks_for_a_probe_of_the_gateway_alone(auth_service: str) -> None:
    """As kube-apiserver's `/readyz?exclude=`: Kubernetes probes the gateway's own readiness, so
    one service down does not take every gateway pod out of rotation."""
    settings = gateway_settings(
        upstreams={"auth": upstream(auth_service, "/auth"), "billing": upstream(dead_url(), "/billing")}
    )
    async with asgi_gateway(settings) as http:
        response = await http.get("/readyz", params=[("exclude", "auth"), ("exclude", "billing")])
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ok", "checks": {"redis": "ok"}}


async def test_metrics_count_requests_latency_breakers_and_refusals(echo: Echo, jwks_url: str) -> None:
    settings = gateway_settings(
        jwks_url=jwks_url,
        upstreams={"billing": upstream(echo.url, "/billing")},
        rate_limit_rules=[{"name": "tiny", "paths": ["/billing/**"], "ip": "1/minute"}],
    )
    async with asgi_gateway(settings) as http:
        assert (await http.get("/billing/plans")).status_code == 200
        assert (await http.get("/billing/plans")).status_code == 429
        text = (await http.get("/metrics")).text
    assert 'gateway_requests_total{status="200",upstream="billing"}' in text
    assert 'gateway_requests_total{status="429",upstream="billing"}' in text
    assert 'gateway_request_duration_seconds_bucket{le="0.005",upstream="billing"}' in text
    assert 'gateway_breaker_state{upstream="billing"} 0.0' in text
    assert 'gateway_rate_limited_total{rule="tiny"}' in text


async def test_the_openapi_document_merges_every_upstream(auth_service: str, billing: str) -> None:
    settings = gateway_settings(
        upstreams={
            "auth": upstream(auth_service, "/auth", "/.well-known"),
            "billing": upstream(billing, "/billing"),
            "notifications": upstream(dead_url(), "/notifications"),
        }
    )
    async with asgi_gateway(settings) as http:
        response = await http.get("/openapi.json")
        docs = await http.get("/docs")
    assert response.status_code == 200
    document = response.json()
    paths = document["paths"]
    assert {"/auth/register", "/auth/login", "/auth/me", "/billing/plans"} <= set(paths)
    assert "/billing/stripe/webhook" not in paths  # not routed by the gateway
    assert paths["/auth/me"]["get"]["security"] == [{"bearerAuth": []}]
    assert "security" not in paths["/auth/login"]["post"]
    assert document["x-gatehouse-unavailable"] == ["notifications"]
    schemas = document["components"]["schemas"]
    assert "UserOut" in schemas and "billing_UserOut" in schemas
    ref = paths["/billing/subscriptions/me"]["get"]["responses"]["200"]["content"]["application/json"]
    assert ref["schema"]["$ref"] == "#/components/schemas/billing_UserOut"
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()


async def test_the_openapi_document_survives_every_upstream_being_down() -> None:
    settings = gateway_settings(upstreams={"auth": upstream(dead_url(), "/auth")})
    async with asgi_gateway(settings) as http:
        response = await http.get("/openapi.json")
    assert response.status_code == 200
    assert response.json()["paths"] == {}
    assert response.json()["x-gatehouse-unavailable"] == ["auth"]


def test_the_merged_document_lists_what_the_edge_answers() -> None:
    """issue 22: schemathesis over the merged document met 429 on register, new-password and
    refresh-token, and 401 on notification templates, none of them documented."""
    settings = gateway_settings(
        upstreams={
            "auth": upstream(dead_url(), "/auth"),
            "notifications": upstream(dead_url(), "/notifications"),
        }
    )
    ok = {"200": {"description": "OK"}}
    body = {"content": {"application/json": {"schema": {"type": "object"}}}}
    documents: dict[str, dict[str, Any]] = {
        "auth": {
            "paths": {
                "/auth/register": {"post": {"requestBody": body, "responses": dict(ok)}},
                "/auth/refresh-token": {"post": {"responses": dict(ok)}},
                "/auth/admin/users": {"get": {"responses": dict(ok)}},
            }
        },
        "notifications": {"paths": {"/notifications/templates": {"get": {"responses": dict(ok)}}}},
    }
    pristine = copy.deepcopy(documents)
    paths = merge_documents(documents, RouteTable(settings), title="t", version="1")["paths"]

    def answers(path: str, method: str) -> set[str]:
        return set(paths[path][method]["responses"])

    gateway_answers = {"400", "502", "503", "504"}
    assert answers("/auth/register", "post") == {"200", "413", "429"} | gateway_answers
    assert answers("/auth/refresh-token", "post") == {"200", "429"} | gateway_answers
    assert answers("/notifications/templates", "get") == {"200", "401", "429"} | gateway_answers
    assert answers("/auth/admin/users", "get") == {"200", "401", "403", "429"} | gateway_answers
    limited = paths["/auth/register"]["post"]["responses"]["429"]
    assert limited["content"] == {
        "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
    }
    assert limited["headers"]["Retry-After"]["required"] is True
    assert documents == pristine  # the cached upstream documents are left as fetched
