"""CORS at the edge: configured origins only, preflights answered here, no wildcard with
credentials."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from pydantic import ValidationError

from conftest import Echo, asgi_gateway, gateway_settings, upstream

APP = "https://app.example.com"


@pytest.fixture(scope="module")
async def gateway(echo: Echo, jwks_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = gateway_settings(
        jwks_url=jwks_url, upstreams={"billing": upstream(echo.url, "/billing")}, cors_origins=[APP]
    )
    async with asgi_gateway(settings) as http:
        yield http


def preflight(
    origin: str, method: str = "POST", headers: str = "authorization, content-type"
) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": headers,
    }


async def test_an_allowed_preflight_is_answered_at_the_edge(gateway: httpx.AsyncClient, echo: Echo) -> None:
    path = f"/billing/cors-{uuid.uuid4().hex}"
    response = await gateway.options(path, headers=preflight(APP))
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == APP
    assert response.headers["access-control-allow-credentials"] == "true"
    assert "POST" in response.headers["access-control-allow-methods"]
    assert response.headers["access-control-allow-headers"] == "authorization, content-type"
    assert "Origin" in response.headers["vary"]
    assert not [s for s in echo.seen if s.path == path]


async def test_preflights_outside_the_policy_are_refused(gateway: httpx.AsyncClient) -> None:
    for headers in (
        preflight("https://evil.example.com"),
        preflight(APP, method="TRACE"),
        preflight(APP, headers="x-sneaky"),
    ):
        response = await gateway.options("/billing/plans", headers=headers)
        assert response.status_code == 403
        assert response.headers["content-type"] == "application/problem+json"
        assert "access-control-allow-origin" not in response.headers


async def test_responses_carry_cors_headers_for_allowed_origins_only(gateway: httpx.AsyncClient) -> None:
    allowed = await gateway.get("/billing/plans", headers={"Origin": APP})
    assert allowed.headers["access-control-allow-origin"] == APP
    assert allowed.headers["access-control-allow-credentials"] == "true"
    assert "x-request-id" in allowed.headers["access-control-expose-headers"].lower()
    assert "Origin" in allowed.headers["vary"]

    refused_at_edge = await gateway.get("/billing/subscriptions/me", headers={"Origin": APP})
    assert refused_at_edge.status_code == 401
    assert refused_at_edge.headers["access-control-allow-origin"] == APP  # so the app can read the 401

    local = await gateway.get("/healthz", headers={"Origin": APP})
    assert local.headers["access-control-allow-origin"] == APP

    foreign = await gateway.get("/billing/plans", headers={"Origin": "https://evil.example.com"})
    assert foreign.status_code == 200
    assert "access-control-allow-origin" not in foreign.headers


def test_a_wildcard_origin_with_credentials_is_refused_at_startup() -> None:
    with pytest.raises(ValidationError, match="credentials"):
        gateway_settings(cors_origins=["*"])
    assert gateway_settings(cors_origins=["*"], cors_allow_credentials=False).cors_origins == ["*"]


async def test_a_wildcard_without_credentials_allows_any_origin(echo: Echo, jwks_url: str) -> None:
    settings = gateway_settings(
        jwks_url=jwks_url,
        upstreams={"billing": upstream(echo.url, "/billing")},
        cors_origins=["*"],
        cors_allow_credentials=False,
    )
    async with asgi_gateway(settings) as http:
        response = await http.get("/billing/plans", headers={"Origin": "https://anyone.example.com"})
    assert response.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in response.headers
