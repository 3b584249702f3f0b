"""The edge token check with tokens from a test issuer (its JWKS served over HTTP), and the
denylist fed by real CloudEvents published to this run's RabbitMQ vhost."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import aio_pika
import httpx
import pytest
from redis.asyncio import Redis

from conftest import Echo, asgi_gateway, bearer, gateway_settings, upstream
from gatehouse_contracts.envelope import EventData, new_event
from gatehouse_contracts.events import SessionRevoked, UserDeactivated, UserReactivated
from gatehouse_contracts.revocations import Revocations, RevokedSession
from gatehouse_platform.outbox import event_message
from gatehouse_platform.testing import TestIssuer, eventually

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
async def gateway(echo: Echo, jwks_url: str, amqp_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = gateway_settings(
        amqp_url=amqp_url,
        consume_events=True,
        jwks_url=jwks_url,
        upstreams={
            "auth": upstream(echo.url, "/auth"),
            "billing": upstream(echo.url, "/billing"),
            "notifications": upstream(echo.url, "/notifications"),
        },
    )
    async with asgi_gateway(settings) as http:
        yield http


async def get(http: httpx.AsyncClient, path: str, **headers: str) -> tuple[httpx.Response, str]:
    request_id = uuid.uuid4().hex
    return await http.get(path, headers={"X-Request-ID": request_id, **headers}), request_id


def assert_refused_at_the_edge(
    response: httpx.Response, request_id: str, echo: Echo, status: int = 401
) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == status
    assert echo.requests_with(request_id) == [], "the upstream saw a request the edge should have refused"


async def test_protected_routes_refuse_missing_and_invalid_tokens_at_the_edge(
    gateway: httpx.AsyncClient, issuer: TestIssuer, echo: Echo
) -> None:
    now = int(time.time())
    stranger = TestIssuer(kid=issuer.kid)  # same kid, another key: a forged signature
    invalid = {
        "garbage": "not-a-jwt",
        "expired": issuer.token(iat=now - 1000, nbf=now - 1000, exp=now - 60),
        "foreign audience": issuer.token(aud="someone-else"),
        "foreign issuer": issuer.token(iss="https://evil.example.com"),
        "forged": stranger.token(),
    }
    paths = (
        "/billing/subscriptions/me",
        "/auth/me",
        "/auth/me/export",
        "/billing/me/export",
        "/auth/sessions",
        "/notifications/templates",
    )
    for path in paths:
        response, request_id = await get(gateway, path)
        assert_refused_at_the_edge(response, request_id, echo)
        assert response.headers["www-authenticate"] == "Bearer"  # no token: no error code (RFC 6750)
        for what, token in invalid.items():
            response, request_id = await get(gateway, path, Authorization=f"Bearer {token}")
            assert_refused_at_the_edge(response, request_id, echo)
            assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"', what


async def test_a_valid_token_is_passed_on_unchanged(
    gateway: httpx.AsyncClient, issuer: TestIssuer, echo: Echo
) -> None:
    token = issuer.token()
    response, request_id = await get(gateway, "/billing/subscriptions/me", **bearer(token))
    assert response.status_code == 200
    (seen,) = echo.requests_with(request_id)
    assert seen.header("authorization") == f"Bearer {token}"


async def test_public_routes_need_no_token(gateway: httpx.AsyncClient, echo: Echo) -> None:
    for path in ("/billing/plans", "/auth/verify", "/notifications/unsubscribe"):
        response, request_id = await get(gateway, path)
        assert response.status_code == 200, path
        assert len(echo.requests_with(request_id)) == 1


async def test_cancelling_a_deletion_is_a_sign_in_and_needs_no_token(
    gateway: httpx.AsyncClient, echo: Echo
) -> None:
    """POST /auth/me/deletion/cancel takes the password (as /auth/login does): a person whose
    account is scheduled for deletion has no session, so the edge must not ask for a token."""
    request_id = uuid.uuid4().hex
    response = await gateway.post(
        "/auth/me/deletion/cancel",
        json={"email": "ada@example.com", "password": "a password"},
        headers={"X-Request-ID": request_id},
    )
    assert response.status_code == 200, response.text
    assert len(echo.requests_with(request_id)) == 1
    refused, refused_id = await get(gateway, "/auth/me/deletion")  # the rest of /auth/me/** still needs one
    assert_refused_at_the_edge(refused, refused_id, echo)


async def test_admin_routes_need_the_admin_role_at_the_edge(
    gateway: httpx.AsyncClient, issuer: TestIssuer, echo: Echo
) -> None:
    user, admin = issuer.token(), issuer.token(roles=["admin"])
    for path in (
        "/auth/admin/users",
        "/billing/admin/users/1/payments",
        "/billing/coupons",
        "/billing/coupons/1/promotion-codes",
        "/notifications/deliveries",
        "/auth/admin/system",  # the console's System page reads each service's
        "/billing/admin/system",
        "/notifications/admin/system",
    ):
        response, request_id = await get(gateway, path, **bearer(user))
        assert_refused_at_the_edge(response, request_id, echo, status=403)
        response, request_id = await get(gateway, path, **bearer(admin))
        assert response.status_code == 200, path
    plan_change = await gateway.patch("/billing/plans/pro", json={}, headers=bearer(user))
    assert plan_change.status_code == 403
    assert (await gateway.get("/billing/plans/pro")).status_code == 200


async def publish(amqp_url: str, data: EventData, subject: uuid.UUID) -> None:
    event = new_event(data, source="/auth-service", subject=str(subject))
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.declare_exchange(
            "gatehouse.events", aio_pika.ExchangeType.TOPIC, durable=True
        )
        await exchange.publish(
            event_message(event),
            routing_key=event.type,
        )


async def accepted(http: httpx.AsyncClient, token: str) -> bool:
    return (await http.get("/billing/subscriptions/me", headers=bearer(token))).status_code == 200


async def test_deactivated_users_are_refused_until_reactivated(
    gateway: httpx.AsyncClient, issuer: TestIssuer, amqp_url: str, echo: Echo
) -> None:
    user_id = uuid.uuid4()
    now = datetime.now(UTC)
    token = issuer.token(user_id, iat=int(now.timestamp()) - 5)
    assert await accepted(gateway, token)

    await publish(
        amqp_url,
        UserDeactivated(user_id=user_id, email="ada@example.com", by="admin", deactivated_at=now),
        user_id,
    )
    await eventually(lambda: _refused(gateway, token), "the deactivation to reach the edge")
    response, request_id = await get(gateway, "/billing/subscriptions/me", **bearer(token))
    assert_refused_at_the_edge(response, request_id, echo)
    assert response.json()["detail"] == "token revoked"

    later = now + timedelta(seconds=1)
    await publish(
        amqp_url, UserReactivated(user_id=user_id, email="ada@example.com", reactivated_at=later), user_id
    )
    await eventually(lambda: accepted(gateway, token), "the reactivation to lift the entry")

    # A deactivation older than the reactivation, delivered late, changes nothing.
    await publish(
        amqp_url,
        UserDeactivated(user_id=user_id, email="ada@example.com", by="self", deactivated_at=now),
        user_id,
    )
    marker_sid = uuid.uuid4()
    await publish(  # a marker: once it applies, the stale event published before it has been handled
        amqp_url,
        SessionRevoked(user_id=user_id, session_ids=[marker_sid], reason="logout", revoked_at=later),
        user_id,
    )
    await eventually(lambda: _refused(gateway, issuer.token(user_id, sid=str(marker_sid))), "the marker")
    assert await accepted(gateway, token)


async def test_revoked_sessions_are_refused_and_others_are_not(
    gateway: httpx.AsyncClient, issuer: TestIssuer, amqp_url: str
) -> None:
    user_id, revoked_sid, other_sid = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    revoked, other = issuer.token(user_id, sid=str(revoked_sid)), issuer.token(user_id, sid=str(other_sid))
    assert await accepted(gateway, revoked)
    await publish(
        amqp_url,
        SessionRevoked(
            user_id=user_id, session_ids=[revoked_sid], reason="logout", revoked_at=datetime.now(UTC)
        ),
        user_id,
    )
    await eventually(lambda: _refused(gateway, revoked), "the revocation to reach the edge")
    assert await accepted(gateway, other)


async def _refused(http: httpx.AsyncClient, token: str) -> bool:
    return (await http.get("/billing/subscriptions/me", headers=bearer(token))).status_code == 401


async def test_without_redis_limits_let_requests_through_but_tokens_are_not_trusted(
    echo: Echo, jwks_url: str, issuer: TestIssuer
) -> None:
    settings = gateway_settings(
        jwks_url=jwks_url,
        redis_url="redis://127.0.0.1:1/0",  # nothing listens there
        upstreams={"billing": upstream(echo.url, "/billing")},
    )
    async with asgi_gateway(settings) as http:
        public = await http.get("/billing/plans")
        protected, request_id = await get(http, "/billing/subscriptions/me", **bearer(issuer.token()))
        ready = await http.get("/readyz")
    assert public.status_code == 200
    assert "ratelimit-limit" not in public.headers
    assert_refused_at_the_edge(protected, request_id, echo, status=503)
    assert protected.json()["type"].endswith("/revocation-check-unavailable")
    assert protected.headers["retry-after"] == "1"
    assert ready.status_code == 503
    assert ready.json()["checks"]["redis"].startswith("fail")


async def test_a_revoked_session_stays_refused_when_redis_loses_the_denylist(
    echo: Echo, jwks_url: str, issuer: TestIssuer
) -> None:
    """The fault drill's finding: after Redis came back empty, a logged-out session's token was
    accepted again until it expired. Now the edge refuses to judge (503) until it has rebuilt the
    denylist from auth-service's revocation list, and then refuses the token (401)."""
    user_id, revoked_sid = uuid.uuid4(), uuid.uuid4()
    token = issuer.token(user_id, sid=str(revoked_sid))
    issuer.revocations = Revocations(
        since=datetime.now(UTC) - timedelta(minutes=16),
        sessions=[RevokedSession(session_id=revoked_sid, revoked_at=datetime.now(UTC))],
        users=[],
    )
    settings = gateway_settings(jwks_url=jwks_url, upstreams={"billing": upstream(echo.url, "/billing")})
    redis = Redis.from_url(settings.redis_url)
    try:
        async with asgi_gateway(settings) as http:
            assert await _refused(http, token)  # rebuilt at start from the list
            for _ in range(3):
                keys = [k async for k in redis.scan_iter(f"{settings.redis_key_prefix}:denylist:*")]
                await redis.delete(*keys)  # what a Redis restart without persistence does
                statuses = set()
                while 401 not in statuses:
                    response = await http.get("/billing/subscriptions/me", headers=bearer(token))
                    statuses.add(response.status_code)
                    assert response.status_code in (401, 503), "a revoked token was let through"
                    await asyncio.sleep(0.05)
    finally:
        issuer.revocations = Revocations(since=datetime.now(UTC), sessions=[], users=[])
        await redis.aclose()
