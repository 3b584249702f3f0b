"""The user events billing consumes: the customer projection, email changes reaching Stripe, and a
deactivated account losing its subscription and its tokens at once."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import stripe
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing_service.models import Customer, EndReason, SubscriptionStatus
from billing_service.settings import Settings
from conftest import (
    Emulator,
    EventTap,
    NewPlan,
    PaidSubscription,
    eventually,
    of_subscription,
    payments_of,
    settled,
    subscribe,
    wait_for_status,
)
from gatehouse_contracts.envelope import EventData
from gatehouse_contracts.events import (
    SessionRevoked,
    UserDeactivated,
    UserDeleted,
    UserEmailChanged,
    UserErased,
    UserReactivated,
    UserRegistered,
)
from gatehouse_contracts.revocations import Revocations, RevokedSession
from gatehouse_platform import testing

Publish = Callable[[EventData], Awaitable[None]]


async def customer(db: async_sessionmaker[AsyncSession], user_id: uuid.UUID) -> Customer | None:
    async with db() as session:
        return await session.get(Customer, user_id)


async def test_a_registered_user_becomes_a_customer(
    publish: Publish, db: async_sessionmaker[AsyncSession]
) -> None:
    user_id = uuid.uuid4()
    await publish(
        UserRegistered(
            user_id=user_id,
            email="new@example.com",
            username="new",
            provider="password",
            email_verified=False,
            registered_at=datetime.now(UTC),
        )
    )
    row = await eventually(lambda: customer(db, user_id), "the customer row")
    assert row.email == "new@example.com" and row.is_active and row.stripe_customer_id is None


async def test_an_email_change_reaches_the_stripe_customer_and_older_ones_lose(
    client: httpx.AsyncClient,
    new_plan: NewPlan,
    new_user: Any,
    publish: Publish,
    sdk: stripe.StripeClient,
    db: async_sessionmaker[AsyncSession],
) -> None:
    user = new_user()
    checkout = await subscribe(client, user, (await new_plan())["code"])
    stripe_customer = sdk.v1.checkout.sessions.retrieve(checkout["session_id"]).customer
    now = datetime.now(UTC)
    await publish(
        UserEmailChanged(
            user_id=user.id, old_email=user.email, new_email="second@example.com", changed_at=now
        )
    )

    async def changed() -> Customer | None:
        row = await customer(db, user.id)
        return row if row is not None and row.email == "second@example.com" else None

    await eventually(changed, "the new email in the projection")
    assert sdk.v1.customers.retrieve(stripe_customer).email == "second@example.com"

    # A change made earlier but delivered later does not win.
    await publish(
        UserEmailChanged(
            user_id=user.id,
            old_email=user.email,
            new_email="first@example.com",
            changed_at=now - timedelta(minutes=1),
        )
    )
    await publish(
        UserEmailChanged(
            user_id=user.id,
            old_email="second@example.com",
            new_email="third@example.com",
            changed_at=now + timedelta(seconds=1),
        )
    )

    async def third() -> Customer | None:
        row = await customer(db, user.id)
        return row if row is not None and row.email == "third@example.com" else None

    await eventually(third, "the newest email")
    assert sdk.v1.customers.retrieve(stripe_customer).email == "third@example.com"


async def test_deactivation_cancels_at_stripe_and_rejects_tokens_at_once(
    client: httpx.AsyncClient,
    paid_subscription: PaidSubscription,
    issuer: testing.TestIssuer,
    emulator: Emulator,
    publish: Publish,
    sdk: stripe.StripeClient,
    db: async_sessionmaker[AsyncSession],
    events: EventTap,
) -> None:
    subscribed = await paid_subscription()
    headers = subscribed.user.headers
    assert (await client.get("/billing/subscriptions/me", headers=headers)).status_code == 200

    await publish(
        UserDeactivated(
            user_id=subscribed.user.id,
            email=subscribed.user.email,
            by="admin",
            deactivated_at=datetime.now(UTC),
        )
    )
    row = await wait_for_status(db, subscribed.subscription_id, SubscriptionStatus.CANCELED)
    assert row.end_reason == EndReason.ACCOUNT_DEACTIVATED
    assert sdk.v1.subscriptions.retrieve(subscribed.stripe_subscription_id).status == "canceled"
    ended = await events.wait_for("subscription.ended", of_subscription(subscribed.subscription_id))
    assert ended["data"]["reason"] == "account_deactivated"

    async def rejected() -> bool:
        return (await client.get("/billing/subscriptions/me", headers=headers)).status_code == 401

    await eventually(rejected, "the token to be rejected")
    assert (await customer(db, subscribed.user.id)).is_active is False  # type: ignore[union-attr]

    # Even a token issued later cannot start a new subscription for the deactivated account.
    later = issuer.bearer(subscribed.user.id, email=subscribed.user.email, iat=int(time.time()) + 2)
    refused = await client.post(
        "/billing/subscriptions/subscribe", json={"plan_code": subscribed.plan["code"]}, headers=later
    )
    assert refused.status_code == 403 and refused.json()["type"].endswith("/account-inactive")

    # Stripe's own webhook for the cancellation changes nothing more.
    await emulator.flush()
    assert len(await events.all_of("subscription.ended", of_subscription(subscribed.subscription_id))) == 1

    await publish(
        UserReactivated(
            user_id=subscribed.user.id, email=subscribed.user.email, reactivated_at=datetime.now(UTC)
        )
    )

    async def active_again() -> bool:
        row = await customer(db, subscribed.user.id)
        return bool(row and row.is_active)

    await eventually(active_again, "the customer to be active again")


async def test_a_revoked_session_s_tokens_are_rejected(
    client: httpx.AsyncClient, issuer: testing.TestIssuer, publish: Publish
) -> None:
    user_id, session_id = uuid.uuid4(), uuid.uuid4()
    headers = issuer.bearer(user_id, sid=str(session_id))
    other = issuer.bearer(user_id, sid=str(uuid.uuid4()))
    assert (await client.get("/billing/entitlements/me", headers=headers)).status_code == 200
    await publish(
        SessionRevoked(
            user_id=user_id, session_ids=[session_id], reason="logout", revoked_at=datetime.now(UTC)
        )
    )

    async def rejected() -> bool:
        return (await client.get("/billing/entitlements/me", headers=headers)).status_code == 401

    await eventually(rejected, "the revoked session's token to be rejected")
    assert (await client.get("/billing/entitlements/me", headers=other)).status_code == 200


async def test_a_revoked_session_stays_refused_when_redis_loses_the_denylist(
    client: httpx.AsyncClient, issuer: testing.TestIssuer, settings: Settings
) -> None:
    """After a Redis restart without persistence the denylist is empty: billing refuses to judge
    tokens (503) until it has rebuilt the denylist from auth-service's revocation list, and then
    refuses the revoked session's token again (401) — never accepts it (issue 22's fault drill)."""
    user_id, session_id = uuid.uuid4(), uuid.uuid4()
    headers = issuer.bearer(user_id, sid=str(session_id))
    issuer.revocations = Revocations(
        since=datetime.now(UTC) - timedelta(minutes=16),
        sessions=[RevokedSession(session_id=session_id, revoked_at=datetime.now(UTC))],
        users=[],
    )
    redis = Redis.from_url(settings.redis_url)
    try:
        keys = [k async for k in redis.scan_iter(f"{settings.redis_key_prefix}:denylist:*")]
        await redis.delete(*keys)
        statuses: set[int] = set()
        while 401 not in statuses:
            response = await client.get("/billing/entitlements/me", headers=headers)
            assert response.status_code in (401, 503), "a revoked token was accepted"
            statuses.add(response.status_code)
            await asyncio.sleep(0.05)
    finally:
        issuer.revocations = Revocations(since=datetime.now(UTC), sessions=[], users=[])
        await redis.aclose()


async def test_a_deactivated_user_s_pending_checkout_is_abandoned(
    client: httpx.AsyncClient,
    new_plan: NewPlan,
    new_user: Any,
    publish: Publish,
    sdk: stripe.StripeClient,
    db: async_sessionmaker[AsyncSession],
) -> None:
    user = new_user()
    checkout = await subscribe(client, user, (await new_plan())["code"])
    await publish(
        UserDeactivated(user_id=user.id, email=user.email, by="self", deactivated_at=datetime.now(UTC))
    )
    await wait_for_status(db, checkout["subscription_id"], SubscriptionStatus.CHECKOUT_EXPIRED)
    assert sdk.v1.checkout.sessions.retrieve(checkout["session_id"]).status == "expired"


async def test_a_deleted_account_loses_its_subscription_and_its_erasure_forgets_the_person(
    client: httpx.AsyncClient,
    paid_subscription: PaidSubscription,
    emulator: Emulator,
    publish: Publish,
    sdk: stripe.StripeClient,
    db: async_sessionmaker[AsyncSession],
    events: EventTap,
    settings: Settings,
) -> None:
    subscribed = await paid_subscription()
    user = subscribed.user
    now = datetime.now(UTC)
    # user.deleted alone (whichever of it and user.deactivated comes first) cancels at Stripe now.
    await publish(
        UserDeleted(
            user_id=user.id,
            email=user.email,
            username="leaving",
            by="self",
            requested_at=now,
            erase_at=now + timedelta(days=7),
        )
    )
    row = await wait_for_status(db, subscribed.subscription_id, SubscriptionStatus.CANCELED)
    assert row.end_reason == EndReason.ACCOUNT_DEACTIVATED
    assert sdk.v1.subscriptions.retrieve(subscribed.stripe_subscription_id).status == "canceled"
    await events.wait_for("subscription.ended", of_subscription(subscribed.subscription_id))
    await settled(emulator, db)
    payments_before = await payments_of(db, user.id)
    assert payments_before and await testing.rows_mentioning(settings.database_url, user.email)

    await publish(UserErased(user_id=user.id, erased_at=datetime.now(UTC)))

    async def erased() -> Customer | None:
        row = await customer(db, user.id)
        return row if row is not None and row.erased_at is not None else None

    row_after = await eventually(erased, "the customer to be erased")
    assert row_after.email == f"erased-{user.id.hex}@erased.invalid" and not row_after.is_active
    assert sdk.v1.customers.retrieve(subscribed.stripe_customer_id).to_dict().get("deleted") is True
    await settled(emulator, db)
    # The books stay (the payments, their amounts and invoices), without the person.
    assert [p.stripe_invoice_id for p in await payments_of(db, user.id)] == [
        p.stripe_invoice_id for p in payments_before
    ]

    async def forgotten() -> bool:
        return not await testing.rows_mentioning(settings.database_url, user.email)

    with contextlib.suppress(AssertionError):
        await eventually(forgotten, "no row naming the person")
    assert await testing.rows_mentioning(settings.database_url, user.email) == {}
    # A second user.erased (a redelivery, a replay) changes nothing.
    await publish(UserErased(user_id=user.id, erased_at=datetime.now(UTC)))
    await asyncio.sleep(0.5)
    assert (await customer(db, user.id)).erased_at == row_after.erased_at  # type: ignore[union-attr]
