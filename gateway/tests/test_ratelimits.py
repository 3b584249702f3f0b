"""Rate limits in Redis: per route, per client IP and per user, shared by gateway replicas, with
the RateLimit headers; X-Forwarded-For believed only from configured proxies."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from conftest import Echo, asgi_gateway, bearer, gateway_settings, upstream
from gatehouse_platform.clientip import TrustedProxies
from gatehouse_platform.testing import TestIssuer
from gateway.settings import Settings

pytestmark = pytest.mark.timeout(60)

RULES = [
    {"name": "credentials", "methods": ["POST"], "paths": ["/auth/login"], "ip": "3/minute"},
    {"name": "default", "paths": ["/**"], "ip": "5/minute", "user": "4/minute"},
]


def limited_settings(echo: Echo, jwks_url: str, **overrides: Any) -> Settings:
    return gateway_settings(
        jwks_url=jwks_url,
        upstreams={"auth": upstream(echo.url, "/auth"), "billing": upstream(echo.url, "/billing")},
        rate_limit_rules=RULES,
        **overrides,
    )


async def test_credential_endpoints_have_their_own_stricter_limit(echo: Echo, jwks_url: str) -> None:
    async with asgi_gateway(limited_settings(echo, jwks_url)) as http:
        for remaining in (2, 1, 0):
            response = await http.post("/auth/login", json={})
            assert response.status_code == 200
            assert response.headers["ratelimit-limit"] == "3"
            assert response.headers["ratelimit-remaining"] == str(remaining)
            assert response.headers["ratelimit-policy"] == "3;w=60"
            assert 1 <= int(response.headers["ratelimit-reset"]) <= 60

        request_id = uuid.uuid4().hex
        refused = await http.post("/auth/login", json={}, headers={"X-Request-ID": request_id})
        assert refused.status_code == 429
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["type"].endswith("/rate-limited")
        # Sliding window: the full window's count slides out over the next one.
        assert 1 <= int(refused.headers["retry-after"]) <= 120
        assert refused.headers["ratelimit-remaining"] == "0"
        assert refused.headers["ratelimit-reset"] == refused.headers["retry-after"]
        assert echo.requests_with(request_id) == []

        other_route = await http.get("/billing/plans")  # the default rule's counters are separate
        assert other_route.status_code == 200
        assert other_route.headers["ratelimit-limit"] == "5"


async def test_gateway_replicas_share_their_counters(echo: Echo, jwks_url: str) -> None:
    settings = limited_settings(echo, jwks_url)  # one Redis key prefix for both
    async with asgi_gateway(settings) as first, asgi_gateway(settings) as second:
        statuses = [(await (first if i % 2 else second).get("/billing/plans")).status_code for i in range(6)]
    assert statuses == [200] * 5 + [429]


async def test_a_user_is_limited_across_addresses(echo: Echo, jwks_url: str, issuer: TestIssuer) -> None:
    settings = limited_settings(echo, jwks_url, trusted_proxies=["10.0.0.0/8"])
    user, other_user = bearer(issuer.token()), bearer(issuer.token())
    async with asgi_gateway(settings, client=("10.0.0.1", 4000)) as http:
        statuses = []
        for i in range(5):
            response = await http.get(
                "/billing/subscriptions/me", headers={**user, "X-Forwarded-For": f"198.51.100.{i}"}
            )
            statuses.append(response.status_code)
        assert statuses == [200] * 4 + [429]
        assert response.headers["ratelimit-policy"] == "5;w=60, 4;w=60"
        other = await http.get(
            "/billing/subscriptions/me", headers={**other_user, "X-Forwarded-For": "198.51.100.0"}
        )
        assert other.status_code == 200


async def test_forwarded_for_from_an_untrusted_peer_is_ignored(echo: Echo, jwks_url: str) -> None:
    settings = limited_settings(echo, jwks_url, trusted_proxies=["10.0.0.0/8"])
    async with asgi_gateway(settings, client=("203.0.113.9", 4000)) as http:
        statuses = []
        for i in range(6):
            request_id = uuid.uuid4().hex
            response = await http.get(
                "/billing/plans", headers={"X-Forwarded-For": f"192.0.2.{i}", "X-Request-ID": request_id}
            )
            statuses.append(response.status_code)
            if response.status_code == 200:
                (seen,) = echo.requests_with(request_id)
                assert seen.header("x-forwarded-for") == "203.0.113.9"  # the spoof is not passed on
    assert statuses == [200] * 5 + [429]


async def test_forwarded_for_from_a_trusted_proxy_names_the_client(echo: Echo, jwks_url: str) -> None:
    settings = limited_settings(echo, jwks_url, trusted_proxies=["10.0.0.0/8"])
    async with asgi_gateway(settings, client=("10.0.0.1", 4000)) as http:
        request_id = uuid.uuid4().hex
        await http.get(
            "/billing/plans",
            headers={"X-Forwarded-For": "198.51.100.7, 10.0.0.2", "X-Request-ID": request_id},
        )
        (seen,) = echo.requests_with(request_id)
        assert seen.header("x-forwarded-for") == "198.51.100.7, 10.0.0.2, 10.0.0.1"
        # Each client its own budget, whatever it prepends to the header itself.
        for client in ("198.51.100.7", "198.51.100.8"):
            statuses = [
                (
                    await http.get("/billing/plans", headers={"X-Forwarded-For": f"6.6.6.{i}, {client}"})
                ).status_code
                for i in range(5)
            ]
            assert statuses == ([200] * 4 + [429] if client.endswith(".7") else [200] * 5)


def test_the_client_is_the_rightmost_address_not_written_by_a_trusted_proxy() -> None:
    proxies = TrustedProxies(["10.0.0.0/8", "2001:db8::/32"])
    assert proxies.client("203.0.113.9", "1.2.3.4").ip == "203.0.113.9"
    assert proxies.client("10.0.0.1", None).ip == "10.0.0.1"
    assert proxies.client("10.0.0.1", "1.2.3.4, 198.51.100.7, 10.0.0.5").ip == "198.51.100.7"
    assert proxies.client("10.0.0.1", "10.0.0.9, 10.0.0.5").ip == "10.0.0.9"
    assert proxies.client("10.0.0.1", "garbage, 198.51.100.7:4711").ip == "198.51.100.7"
    assert proxies.client("10.0.0.1", "198.51.100.7, garbage").ip == "10.0.0.1"
    assert proxies.client("2001:db8::1", "[2001:db9::7]:443").ip == "2001:db9::7"


async def test_refused_tokens_count_against_the_address(echo: Echo, jwks_url: str) -> None:
    """The token check answers first (issue 22: `/auth/request/verify` without a token answered
    429 where 401 is due): a refused token is a 401 however many came before, and still spends
    the address's budget, so a guesser's other requests are limited."""
    async with asgi_gateway(limited_settings(echo, jwks_url)) as http:
        statuses = [
            (await http.get("/billing/subscriptions/me", headers=bearer("guess"))).status_code
            for _ in range(6)
        ]
        assert statuses == [401] * 6
        assert (await http.get("/billing/plans")).status_code == 429


async def test_limits_can_be_switched_off(echo: Echo, jwks_url: str) -> None:
    async with asgi_gateway(limited_settings(echo, jwks_url, rate_limits_enabled=False)) as http:
        responses = [await http.post("/auth/login", json={}) for _ in range(5)]
    assert [r.status_code for r in responses] == [200] * 5
    assert "ratelimit-limit" not in responses[0].headers
