"""API keys through the gateway to a real auth-service: `Bearer gk_live_…` exchanged for an access
token (remembered, sent upstream instead of the key), refused when garbled, revoked or beyond its
per-key rate limit, and a revocation reaching the edge within seconds through the events."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import pytest

from conftest import Echo, asgi_gateway, bearer, gateway_settings, sign_up, upstream
from gatehouse_platform.testing import eventually
from gateway.metrics import API_KEY_EXCHANGES
from gateway.settings import RateLimitRule

pytestmark = pytest.mark.timeout(60)

ALL_SCOPES = ["profile:read", "orgs:read", "billing:read", "billing:write"]


def _settings(auth_service: str, echo: Echo, amqp_url: str, **overrides: Any) -> Any:
    return gateway_settings(
        amqp_url=amqp_url,
        upstreams={
            "auth": upstream(auth_service, "/auth", "/.well-known"),
            "billing": upstream(echo.url, "/billing"),
        },
        **overrides,
    )


@pytest.fixture(scope="module")
async def gateway(auth_service: str, echo: Echo, amqp_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_gateway(_settings(auth_service, echo, amqp_url, consume_events=True)) as http:
        yield http


async def new_key(http: httpx.AsyncClient, scopes: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A person (their tokens) and a key of theirs, created through the gateway."""
    _, tokens = await sign_up(http)
    created = await http.post(
        "/auth/api-keys", json={"name": "script", "scopes": scopes}, headers=bearer(tokens["access_token"])
    )
    assert created.status_code == 201, created.text
    return tokens, dict(created.json())


async def through(http: httpx.AsyncClient, echo: Echo, key: str) -> tuple[httpx.Response, str | None]:
    """A billing request with `key`; the answer and the Authorization the upstream got (if any)."""
    request_id = uuid.uuid4().hex
    response = await http.get(
        "/billing/subscriptions/me", headers={**bearer(key), "X-Request-ID": request_id}
    )
    seen = echo.requests_with(request_id)
    return response, seen[0].header("authorization") if seen else None


def exchanges() -> float:
    return API_KEY_EXCHANGES.labels("exchanged")._value.get()


async def test_a_key_is_exchanged_once_and_upstreams_get_the_token_not_the_key(
    gateway: httpx.AsyncClient, echo: Echo
) -> None:
    _, created = await new_key(gateway, ["profile:read", "billing:read"])
    before = exchanges()
    response, forwarded = await through(gateway, echo, created["key"])
    assert response.status_code == 200, response.text
    assert forwarded is not None and created["key"] not in forwarded
    claims = jwt.decode(forwarded.removeprefix("Bearer "), options={"verify_signature": False})
    assert claims["sid"] == created["id"] and claims["scope"] == "profile:read billing:read"
    for _ in range(5):
        again, forwarded_again = await through(gateway, echo, created["key"])
        assert again.status_code == 200 and forwarded_again == forwarded  # the remembered exchange
    assert exchanges() - before == 1

    me = await gateway.get("/auth/me", headers=bearer(created["key"]))  # auth-service checks the scope
    assert me.status_code == 200, me.text


async def test_a_key_is_refused_where_its_scopes_do_not_reach(gateway: httpx.AsyncClient) -> None:
    _, created = await new_key(gateway, ["billing:read"])
    me = await gateway.get("/auth/me", headers=bearer(created["key"]))
    assert me.status_code == 403 and me.json()["type"].endswith("/insufficient-scope")
    more = await gateway.post(
        "/auth/api-keys", json={"name": "x", "scopes": ["billing:read"]}, headers=bearer(created["key"])
    )
    assert more.status_code == 403 and more.json()["type"].endswith("/insufficient-scope")
    admin = await gateway.get("/billing/admin/users/x/subscriptions", headers=bearer(created["key"]))
    assert admin.status_code == 403 and admin.json()["type"].endswith("/insufficient-scope")


async def test_an_org_key_reads_its_orgs_billing_and_org_with_a_token_naming_no_person(
    gateway: httpx.AsyncClient, echo: Echo
) -> None:
    _, tokens = await sign_up(gateway)
    owner = bearer(tokens["access_token"])
    org = await gateway.post(
        "/auth/orgs", json={"name": "Acme", "slug": f"acme-{uuid.uuid4().hex[:8]}"}, headers=owner
    )
    assert org.status_code == 201, org.text
    org_id = org.json()["id"]
    created = await gateway.post(
        "/auth/api-keys",
        json={"name": "reports", "scopes": ["orgs:read", "billing:read"], "org_id": org_id},
        headers=owner,
    )
    assert created.status_code == 201, created.text
    key = created.json()["key"]

    request_id = uuid.uuid4().hex
    response = await gateway.get(
        f"/billing/orgs/{org_id}/subscription", headers={**bearer(key), "X-Request-ID": request_id}
    )
    assert response.status_code == 200, response.text
    (seen,) = echo.requests_with(request_id)
    claims = jwt.decode(
        seen.header("authorization").removeprefix("Bearer "), options={"verify_signature": False}
    )
    assert claims["sub"] == claims["sid"] == created.json()["id"] and claims["email"] == ""
    assert claims["org_id"] == org_id and claims["org_role"] == "member"
    read = await gateway.get(f"/auth/orgs/{org_id}", headers=bearer(key))  # auth-service verifies it too
    assert read.status_code == 200 and read.json()["role"] == "member", read.text


async def test_garbled_and_unknown_keys_are_refused_at_the_edge(
    gateway: httpx.AsyncClient, echo: Echo
) -> None:
    _, created = await new_key(gateway, ALL_SCOPES)
    key: str = created["key"]
    for presented in (
        key[:-1] + ("A" if key[-1] != "A" else "B"),
        "gk_live_garbage",
        f"gk_live_{'0' * 12}_{key[21:]}",
    ):
        response, forwarded = await through(gateway, echo, presented)
        assert response.status_code == 401, presented
        assert response.json()["type"].endswith("/invalid-api-key")
        assert forwarded is None  # nothing reached billing
    # a public route with a bad key: refused too, rather than passed on with the key in it
    plans = await gateway.get("/billing/plans", headers=bearer("gk_live_garbage"))
    assert plans.status_code == 401


async def test_the_exchange_is_not_reachable_from_outside(gateway: httpx.AsyncClient) -> None:
    _, created = await new_key(gateway, ALL_SCOPES)
    response = await gateway.post("/auth/internal/api-keys/exchange", json={"key": created["key"]})
    assert response.status_code == 404


async def test_a_revoked_key_is_refused_at_the_edge_within_seconds(
    gateway: httpx.AsyncClient, echo: Echo
) -> None:
    tokens, created = await new_key(gateway, ALL_SCOPES)
    response, _ = await through(gateway, echo, created["key"])
    assert response.status_code == 200  # exchanged and remembered

    revoked_at = time.monotonic()
    revoked = await gateway.delete(f"/auth/api-keys/{created['id']}", headers=bearer(tokens["access_token"]))
    assert revoked.status_code == 204

    async def refused() -> bool:
        answer, forwarded = await through(gateway, echo, created["key"])
        return answer.status_code == 401 and forwarded is None

    await eventually(refused, "the revoked key to be refused at the edge", within=5.0)
    assert time.monotonic() - revoked_at < 5.0
    # once forgotten, the next request asks auth-service, which refuses the key itself
    again, _ = await through(gateway, echo, created["key"])
    assert again.status_code == 401 and again.json()["type"].endswith(("/invalid-api-key", "/unauthorized"))


async def test_another_replica_refuses_a_revoked_key_through_the_shared_denylist(
    auth_service: str, echo: Echo, amqp_url: str, gateway: httpx.AsyncClient
) -> None:
    """Only one replica receives each event; a replica that remembered the exchange refuses the key
    all the same, because the denylist in Redis is shared."""
    prefix = f"replicas-{uuid.uuid4().hex[:8]}"
    with_events = _settings(auth_service, echo, amqp_url, consume_events=True, redis_key_prefix=prefix)
    without = _settings(auth_service, echo, amqp_url, consume_events=False, redis_key_prefix=prefix)
    async with asgi_gateway(with_events) as first, asgi_gateway(without) as second:
        tokens, created = await new_key(first, ALL_SCOPES)
        assert (await through(second, echo, created["key"]))[0].status_code == 200
        revoked = await first.delete(
            f"/auth/api-keys/{created['id']}", headers=bearer(tokens["access_token"])
        )
        assert revoked.status_code == 204

        async def refused() -> bool:
            return (await through(second, echo, created["key"]))[0].status_code == 401

        await eventually(refused, "the other replica to refuse the revoked key", within=5.0)


async def test_each_key_has_its_own_rate_limit(auth_service: str, echo: Echo, amqp_url: str) -> None:
    rules = [RateLimitRule(name="default", paths=["/**"], api_key="3/minute")]
    async with asgi_gateway(_settings(auth_service, echo, amqp_url, rate_limit_rules=rules)) as http:
        tokens, created = await new_key(http, ALL_SCOPES)
        other = await http.post(
            "/auth/api-keys",
            json={"name": "other", "scopes": ["billing:read"]},
            headers=bearer(tokens["access_token"]),
        )
        statuses = [(await through(http, echo, created["key"]))[0].status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        limited, _ = await through(http, echo, created["key"])
        assert limited.json()["type"].endswith("/rate-limited") and int(limited.headers["retry-after"]) >= 1
        assert limited.headers["ratelimit-limit"] == "3"
        # the same person's other key, and their own session, are not limited by it
        assert (await through(http, echo, other.json()["key"]))[0].status_code == 200
        assert (await through(http, echo, tokens["access_token"]))[0].status_code == 200


async def test_the_key_is_never_logged_at_the_edge(
    gateway: httpx.AsyncClient, echo: Echo, caplog: pytest.LogCaptureFixture
) -> None:
    _, created = await new_key(gateway, ALL_SCOPES)
    with caplog.at_level(logging.DEBUG):
        await through(gateway, echo, created["key"])
        await through(gateway, echo, created["key"][:-3] + "abc")
    secret = created["key"][21:]
    for record in caplog.records:
        assert secret not in record.getMessage() and secret not in str(record.__dict__)
