"""notification-service refuses revoked access tokens before they expire, as billing and the gateway
do: the same denylist (`gatehouse_platform.denylist`), fed by auth-service's events on a queue of
its own, and rebuilt from auth-service's revocation list after Redis lost its data."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest
from redis.asyncio import Redis

from conftest import Stack, envelope
from gatehouse_contracts.events import SessionRevoked, UserDeactivated
from gatehouse_contracts.revocations import Revocations, RevokedSession
from gatehouse_platform import testing

pytestmark = pytest.mark.timeout(60)

DELIVERIES = "/notifications/deliveries"


async def eventually(check: Callable[[], Awaitable[bool]], what: str, within: float = 15.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await check():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def test_a_revoked_session_s_admin_token_is_refused(stack: Stack, issuer: testing.TestIssuer) -> None:
    admin_id, session_id = uuid.uuid4(), uuid.uuid4()
    revoked = issuer.bearer(admin_id, roles=["admin"], sid=str(session_id))
    other_session = issuer.bearer(admin_id, roles=["admin"], sid=str(uuid.uuid4()))
    assert (await stack.client.get(DELIVERIES, headers=revoked)).status_code == 200
    await stack.publish(
        envelope(
            SessionRevoked(
                user_id=admin_id, session_ids=[session_id], reason="logout", revoked_at=datetime.now(UTC)
            )
        )
    )

    async def refused() -> bool:
        response = await stack.client.get(DELIVERIES, headers=revoked)
        return response.status_code == 401

    await eventually(refused, "the revoked session's token to be refused")
    response = await stack.client.get(DELIVERIES, headers=revoked)
    assert response.headers["content-type"] == "application/problem+json"
    assert (await stack.client.get(DELIVERIES, headers=other_session)).status_code == 200


async def test_a_deactivated_admin_s_tokens_are_refused(stack: Stack, issuer: testing.TestIssuer) -> None:
    admin_id = uuid.uuid4()
    headers = issuer.bearer(admin_id, roles=["admin"], sid=str(uuid.uuid4()))
    assert (await stack.client.get(DELIVERIES, headers=headers)).status_code == 200
    deactivated_at = datetime.now(UTC) + timedelta(seconds=1)  # after the token was issued
    await stack.publish(
        envelope(
            UserDeactivated(
                user_id=admin_id, email="admin@example.com", by="admin", deactivated_at=deactivated_at
            )
        )
    )

    async def refused() -> bool:
        return (await stack.client.get(DELIVERIES, headers=headers)).status_code == 401

    await eventually(refused, "the deactivated admin's token to be refused")


async def test_a_revoked_session_stays_refused_when_redis_loses_the_denylist(
    stack: Stack, issuer: testing.TestIssuer
) -> None:
    """After a Redis restart without persistence the denylist is empty: the service refuses to
    judge tokens (503) until it has rebuilt the denylist from auth-service's revocation list, and
    then refuses the revoked session's token again (401); it never accepts it."""
    admin_id, session_id = uuid.uuid4(), uuid.uuid4()
    headers = issuer.bearer(admin_id, roles=["admin"], sid=str(session_id))
    issuer.revocations = Revocations(
        since=datetime.now(UTC) - timedelta(minutes=16),
        sessions=[RevokedSession(session_id=session_id, revoked_at=datetime.now(UTC))],
        users=[],
    )
    settings = stack.settings
    redis = Redis.from_url(settings.redis_url, socket_timeout=5)
    try:
        keys = [k async for k in redis.scan_iter(f"{settings.redis_key_prefix}:denylist:*")]
        assert keys, "the denylist has its ready marker"
        await redis.delete(*keys)
        statuses: set[int] = set()
        while 401 not in statuses:
            response = await stack.client.get(DELIVERIES, headers=headers)
            assert response.status_code in (401, 503), "a revoked token was accepted"
            statuses.add(response.status_code)
            await asyncio.sleep(0.05)
    finally:
        issuer.revocations = Revocations(since=datetime.now(UTC), sessions=[], users=[])
        await redis.aclose()
