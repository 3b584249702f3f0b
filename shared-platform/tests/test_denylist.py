"""RedisDenylist against the machine's real Redis, under a key prefix of this test's own."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from gatehouse_contracts.envelope import new_event
from gatehouse_contracts.events import ApiKeyRevoked, SessionRevoked, UserDeactivated, UserReactivated
from gatehouse_contracts.revocations import DeactivatedUser, Revocations, RevokedSession
from gatehouse_contracts.tokens import AccessTokenClaims
from gatehouse_platform import testing
from gatehouse_platform.denylist import (
    DenylistNotReady,
    DenylistRebuilder,
    RedisDenylist,
    denylist_handlers,
    revocations_from,
)

TTL = 900


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    client = Redis.from_url("redis://127.0.0.1:6379/0", socket_timeout=5)  # a lost reply fails, never hangs
    yield client
    await client.aclose()


NOTHING_REVOKED = Revocations(since=datetime.now(UTC), sessions=[], users=[])


@pytest.fixture
async def unready_denylist(redis: Redis) -> AsyncIterator[RedisDenylist]:
    """A denylist over an empty Redis: as after a restart that lost the data."""
    prefix = testing.unique_name("gh_denylist")
    yield RedisDenylist(redis, prefix=prefix, access_token_ttl_seconds=TTL, leeway_seconds=5)
    await lose_data(redis, prefix)


@pytest.fixture
async def denylist(unready_denylist: RedisDenylist) -> RedisDenylist:
    await unready_denylist.rebuild(NOTHING_REVOKED)
    return unready_denylist


async def lose_data(redis: Redis, prefix: str) -> None:
    keys = [key async for key in redis.scan_iter(f"{prefix}:*")]
    if keys:
        await redis.delete(*keys)


def claims(user_id: uuid.UUID, *, iat: float, sid: uuid.UUID | None = None) -> AccessTokenClaims:
    return AccessTokenClaims(
        iss="https://issuer.test",
        aud="gatehouse",
        sub=user_id,
        iat=int(iat),
        nbf=int(iat),
        exp=int(iat) + TTL,
        jti=uuid.uuid4().hex,
        sid=sid or uuid.uuid4(),
        email="ada@example.com",
        email_verified=True,
    )


async def test_a_deactivation_refuses_tokens_issued_until_then(denylist: RedisDenylist) -> None:
    user, at = uuid.uuid4(), datetime.now(UTC)
    await denylist.deactivate_user(user, at)
    assert await denylist.is_revoked(claims(user, iat=at.timestamp() - 1))
    assert await denylist.is_revoked(claims(user, iat=at.timestamp()))
    assert not await denylist.is_revoked(claims(user, iat=at.timestamp() + 1))
    assert not await denylist.is_revoked(claims(uuid.uuid4(), iat=at.timestamp() - 1))


async def test_the_newest_of_deactivation_and_reactivation_wins_whatever_the_order(
    denylist: RedisDenylist,
) -> None:
    user, at = uuid.uuid4(), datetime.now(UTC)
    token = claims(user, iat=at.timestamp() - 10)
    await denylist.deactivate_user(user, at)
    await denylist.reactivate_user(user, at + timedelta(seconds=1))
    assert not await denylist.is_revoked(token)
    await denylist.deactivate_user(user, at)  # redelivered late: older than the reactivation
    assert not await denylist.is_revoked(token)
    await denylist.deactivate_user(user, at + timedelta(seconds=2))  # a newer deactivation applies
    assert await denylist.is_revoked(token)


async def test_a_revoked_session_refuses_its_tokens_only(denylist: RedisDenylist) -> None:
    user, sid, now = uuid.uuid4(), uuid.uuid4(), time.time()
    await denylist.revoke_sessions([sid], datetime.now(UTC))
    await denylist.revoke_sessions([sid], datetime.now(UTC))  # idempotent
    assert await denylist.is_revoked(claims(user, iat=now, sid=sid))
    assert not await denylist.is_revoked(claims(user, iat=now))


async def test_entries_live_as_long_as_the_tokens_they_refuse(denylist: RedisDenylist, redis: Redis) -> None:
    user, sid = uuid.uuid4(), uuid.uuid4()
    at = datetime.now(UTC) - timedelta(seconds=100)
    await denylist.deactivate_user(user, at)
    await denylist.revoke_sessions([sid], at)
    for key in (denylist._user_key(user), denylist._sid_key(sid)):
        ttl_ms = await redis.pttl(key)
        assert (TTL + 5 - 100 - 2) * 1000 < ttl_ms <= (TTL + 5 - 100) * 1000

    long_ago = datetime.now(UTC) - timedelta(seconds=TTL + 60)  # every token of then has expired
    stale_user, stale_sid = uuid.uuid4(), uuid.uuid4()
    await denylist.deactivate_user(stale_user, long_ago)
    await denylist.revoke_sessions([stale_sid], long_ago)
    assert await redis.exists(denylist._user_key(stale_user), denylist._sid_key(stale_sid)) == 0


async def test_the_event_handlers_feed_the_denylist(denylist: RedisDenylist) -> None:
    handlers = denylist_handlers(denylist)
    user, sid, at = uuid.uuid4(), uuid.uuid4(), datetime.now(UTC)
    token = claims(user, iat=at.timestamp() - 5)
    events = [
        UserDeactivated(user_id=user, email="ada@example.com", by="self", deactivated_at=at),
        UserReactivated(user_id=user, email="ada@example.com", reactivated_at=at + timedelta(seconds=1)),
        SessionRevoked(user_id=user, session_ids=[sid], reason="logout", revoked_at=at),
    ]
    outcomes = []
    for data in events:
        await handlers[data.event_type](None, new_event(data, source="/auth-service"), data)
        outcomes.append(
            (await denylist.is_revoked(token), await denylist.is_revoked(claims(user, iat=0, sid=sid)))
        )
    assert outcomes == [(True, True), (False, False), (False, True)]


async def test_an_unreachable_redis_fails_closed() -> None:
    dead = Redis(host="127.0.0.1", port=1, retry=Retry(NoBackoff(), 0))
    denylist = RedisDenylist(dead, prefix="x", access_token_ttl_seconds=TTL)
    with pytest.raises(RedisConnectionError):
        await denylist.is_revoked(claims(uuid.uuid4(), iat=time.time()))
    await dead.aclose()


async def test_a_denylist_that_lost_its_data_refuses_to_judge(denylist: RedisDenylist, redis: Redis) -> None:
    """The fault drill's finding: after Redis came back empty, a logged-out session's token was
    accepted again. Now the lost `ready` marker makes every check fail closed instead."""
    user, sid, now = uuid.uuid4(), uuid.uuid4(), datetime.now(UTC)
    await denylist.revoke_sessions([sid], now)
    token = claims(user, iat=now.timestamp() - 5, sid=sid)
    assert await denylist.is_revoked(token)
    await lose_data(redis, denylist._prefix)
    with pytest.raises(DenylistNotReady):
        await denylist.is_revoked(token)
    with pytest.raises(DenylistNotReady):
        await denylist.is_revoked(claims(uuid.uuid4(), iat=now.timestamp()))  # even a good one


async def test_a_rebuild_restores_every_revocation_that_still_matters(
    unready_denylist: RedisDenylist,
) -> None:
    now = datetime.now(UTC)
    gone_user, revoked_sid, other_user = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await unready_denylist.rebuild(
        Revocations(
            since=now - timedelta(seconds=TTL),
            sessions=[RevokedSession(session_id=revoked_sid, revoked_at=now - timedelta(seconds=10))],
            users=[DeactivatedUser(user_id=gone_user, deactivated_at=now - timedelta(seconds=20))],
        )
    )
    assert await unready_denylist.is_revoked(claims(gone_user, iat=now.timestamp() - 30))
    assert await unready_denylist.is_revoked(claims(other_user, iat=now.timestamp() - 30, sid=revoked_sid))
    assert not await unready_denylist.is_revoked(claims(other_user, iat=now.timestamp() - 30))


async def test_a_rebuild_never_undoes_a_newer_event(unready_denylist: RedisDenylist) -> None:
    """Events keep arriving while a rebuild runs: a reactivation newer than the list's
    deactivation stands."""
    user, now = uuid.uuid4(), datetime.now(UTC)
    await unready_denylist.reactivate_user(user, now)
    await unready_denylist.rebuild(
        Revocations(
            since=now - timedelta(seconds=TTL),
            sessions=[],
            users=[DeactivatedUser(user_id=user, deactivated_at=now - timedelta(seconds=5))],
        )
    )
    assert not await unready_denylist.is_revoked(claims(user, iat=now.timestamp() - 60))


async def test_the_rebuilder_notices_the_loss_and_rebuilds_from_the_issuer_over_http(
    denylist: RedisDenylist, redis: Redis
) -> None:
    from fastapi import FastAPI

    sid, now = uuid.uuid4(), datetime.now(UTC)
    issuer = FastAPI()

    @issuer.get("/auth/internal/revocations")
    async def revocations() -> Revocations:
        return Revocations(
            since=now - timedelta(seconds=TTL),
            sessions=[RevokedSession(session_id=sid, revoked_at=now)],
            users=[],
        )

    with testing.serve_in_thread(issuer) as base:
        async with httpx.AsyncClient() as http:
            rebuilder = DenylistRebuilder(
                denylist, revocations_from(http, base + "/auth/internal/revocations"), interval=0.05
            )
            await rebuilder.start()
            try:
                await lose_data(redis, denylist._prefix)
                await testing.eventually(denylist.is_ready, "the denylist is ready again", within=5)
            finally:
                await rebuilder.stop()
    assert rebuilder.rebuilds == 1
    assert await denylist.is_revoked(claims(uuid.uuid4(), iat=now.timestamp() - 5, sid=sid))


async def test_the_rebuilder_keeps_failing_closed_while_the_issuer_is_down(
    unready_denylist: RedisDenylist,
) -> None:
    async with httpx.AsyncClient() as http:
        source = revocations_from(http, f"http://127.0.0.1:{testing.free_port()}/auth/internal/revocations")
        rebuilder = DenylistRebuilder(unready_denylist, source)
        assert await rebuilder.ensure_ready() is False
    with pytest.raises(DenylistNotReady):
        await unready_denylist.is_revoked(claims(uuid.uuid4(), iat=time.time()))


async def test_a_revoked_api_key_refuses_the_tokens_exchanged_from_it(denylist: RedisDenylist) -> None:
    handlers = denylist_handlers(denylist)
    user, key_id, at = uuid.uuid4(), uuid.uuid4(), datetime.now(UTC)
    data = ApiKeyRevoked(key_id=key_id, user_id=user, org_id=None, reason="revoked", revoked_at=at)
    await handlers[data.event_type](None, new_event(data, source="/auth-service"), data)
    assert await denylist.is_revoked(claims(user, iat=0, sid=key_id))
    assert not await denylist.is_revoked(claims(user, iat=0, sid=uuid.uuid4()))
