"""The periodic jobs: reconciliation heals missed webhooks from Stripe's Events API; the expiry sweep
ends access at period end plus grace, trusting Stripe over our stale copy."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import stripe
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing_service.integrations.stripe import StripeGateway
from billing_service.models import EndReason, StripeEvent, SubscriptionStatus
from billing_service.settings import Settings
from billing_service.subscriptions.lifecycle import sweep_expired
from billing_service.webhooks.reconcile import reconcile
from conftest import (
    Emulator,
    EventTap,
    NewPlan,
    PaidSubscription,
    WebhookEndpoint,
    of_subscription,
    subscribe,
    subscription_row,
    wait_for_status,
    webhooks_off,
)

DAY = 86400


async def test_reconciliation_heals_a_missed_checkout_completion(
    client: httpx.AsyncClient,
    new_plan: NewPlan,
    new_user: Any,
    emulator: Emulator,
    sdk: stripe.StripeClient,
    webhook_endpoint: WebhookEndpoint,
    settings: Settings,
    gateway: StripeGateway,
    db: async_sessionmaker[AsyncSession],
    events: EventTap,
) -> None:
    plan = await new_plan()
    user = new_user()
    checkout = await subscribe(client, user, plan["code"])
    async with webhooks_off(sdk, webhook_endpoint, emulator, db):
        completed = await emulator.complete_checkout(checkout["session_id"], "paid")
        # Meanwhile the customer asks for another plan: Stripe will not expire a paid session.
        other = await client.post(
            "/billing/subscriptions/subscribe",
            json={"plan_code": (await new_plan())["code"]},
            headers=user.headers,
        )
        assert other.status_code == 409 and other.json()["type"].endswith("/subscription-exists")
    await asyncio.sleep(0.3)
    assert (
        await subscription_row(db, checkout["subscription_id"])
    ).status == SubscriptionStatus.CHECKOUT_PENDING

    result = await reconcile(db, gateway, settings)
    assert result.missed >= 3  # checkout.session.completed, customer.subscription.created, invoice.paid, …
    # The service's own webhook processor may claim a stored event before reconcile's drain does.
    row = await wait_for_status(db, checkout["subscription_id"], SubscriptionStatus.ACTIVE)
    assert row.stripe_subscription_id == completed["subscription"]["id"]
    await events.wait_for("subscription.activated", of_subscription(row.id))
    await events.wait_for("payment.succeeded", lambda e: e["data"]["user_id"] == str(user.id))
    async with db() as session:
        sources = (
            (
                await session.execute(
                    select(StripeEvent.source).where(StripeEvent.object_id == row.stripe_subscription_id)
                )
            )
            .scalars()
            .all()
        )
    assert "reconcile" in sources

    again = await reconcile(db, gateway, settings)  # nothing new: nothing changes
    assert again.missed == 0


async def test_reconciliation_heals_a_change_made_at_stripe(
    paid_subscription: PaidSubscription,
    emulator: Emulator,
    sdk: stripe.StripeClient,
    webhook_endpoint: WebhookEndpoint,
    settings: Settings,
    gateway: StripeGateway,
    db: async_sessionmaker[AsyncSession],
    events: EventTap,
) -> None:
    subscribed = await paid_subscription()
    async with webhooks_off(sdk, webhook_endpoint, emulator, db):
        # e.g. support canceled it in the Stripe dashboard
        sdk.v1.subscriptions.update(subscribed.stripe_subscription_id, params={"cancel_at_period_end": True})
    assert (await subscription_row(db, subscribed.subscription_id)).cancel_at_period_end is False
    await reconcile(db, gateway, settings)
    assert (await subscription_row(db, subscribed.subscription_id)).cancel_at_period_end is True
    await events.wait_for("subscription.cancel_scheduled", of_subscription(subscribed.subscription_id))


async def emulator_time(emulator: Emulator) -> datetime:
    return datetime.fromtimestamp(await emulator.now(), UTC)


async def test_the_sweep_ends_a_canceled_subscription_whose_deletion_was_missed(
    client: httpx.AsyncClient,
    paid_subscription: PaidSubscription,
    emulator: Emulator,
    sdk: stripe.StripeClient,
    webhook_endpoint: WebhookEndpoint,
    settings: Settings,
    gateway: StripeGateway,
    db: async_sessionmaker[AsyncSession],
    events: EventTap,
) -> None:
    subscribed = await paid_subscription()
    assert (
        await client.post("/billing/subscriptions/cancel", headers=subscribed.user.headers)
    ).status_code == 200
    row = await subscription_row(db, subscribed.subscription_id)
    assert row.current_period_end is not None
    async with webhooks_off(sdk, webhook_endpoint, emulator, db):
        await emulator.advance(int(row.current_period_end.timestamp()) - await emulator.now() + 60)
    assert sdk.v1.subscriptions.retrieve(subscribed.stripe_subscription_id).status == "canceled"
    assert (await subscription_row(db, subscribed.subscription_id)).status == SubscriptionStatus.ACTIVE

    # The grace has not passed yet: nothing happens.
    await sweep_expired(db, gateway, settings, now=await emulator_time(emulator))
    assert (await subscription_row(db, subscribed.subscription_id)).status == SubscriptionStatus.ACTIVE

    later = await emulator_time(emulator) + timedelta(seconds=settings.expiry_grace_seconds)
    result = await sweep_expired(db, gateway, settings, now=later)
    assert result.ended >= 1
    ended = await subscription_row(db, subscribed.subscription_id)
    assert ended.status == SubscriptionStatus.CANCELED and ended.end_reason == EndReason.CANCELED
    event = await events.wait_for("subscription.ended", of_subscription(subscribed.subscription_id))
    assert event["data"]["reason"] == "canceled"


async def test_the_sweep_cancels_a_past_due_subscription_after_the_grace(
    paid_subscription: PaidSubscription,
    emulator: Emulator,
    sdk: stripe.StripeClient,
    settings: Settings,
    gateway: StripeGateway,
    db: async_sessionmaker[AsyncSession],
    events: EventTap,
) -> None:
    subscribed = await paid_subscription()
    await emulator.payment_behavior(subscribed.stripe_customer_id, "declined")
    row = await subscription_row(db, subscribed.subscription_id)
    assert row.current_period_end is not None
    await emulator.advance(int(row.current_period_end.timestamp()) - await emulator.now() + 60)
    row = await wait_for_status(db, subscribed.subscription_id, SubscriptionStatus.PAST_DUE)
    assert row.current_period_end is not None

    beyond = row.current_period_end + timedelta(seconds=settings.expiry_grace_seconds + 60)
    await sweep_expired(db, gateway, settings, now=beyond)
    ended = await subscription_row(db, subscribed.subscription_id)
    assert ended.status == SubscriptionStatus.CANCELED and ended.end_reason == EndReason.PAYMENT_FAILED
    assert sdk.v1.subscriptions.retrieve(subscribed.stripe_subscription_id).status == "canceled"
    event = await events.wait_for("subscription.ended", of_subscription(subscribed.subscription_id))
    assert event["data"]["reason"] == "payment_failed"
    await emulator.flush()
    assert len(await events.all_of("subscription.ended", of_subscription(subscribed.subscription_id))) == 1


async def test_the_sweep_trusts_stripe_over_a_missed_resume(
    client: httpx.AsyncClient,
    paid_subscription: PaidSubscription,
    emulator: Emulator,
    sdk: stripe.StripeClient,
    webhook_endpoint: WebhookEndpoint,
    settings: Settings,
    gateway: StripeGateway,
    db: async_sessionmaker[AsyncSession],
    events: EventTap,
) -> None:
    subscribed = await paid_subscription()
    assert (
        await client.post("/billing/subscriptions/cancel", headers=subscribed.user.headers)
    ).status_code == 200
    async with webhooks_off(sdk, webhook_endpoint, emulator, db):
        sdk.v1.subscriptions.update(subscribed.stripe_subscription_id, params={"cancel_at_period_end": False})
    row = await subscription_row(db, subscribed.subscription_id)
    assert row.cancel_at_period_end is True and row.current_period_end is not None
    beyond = row.current_period_end + timedelta(seconds=settings.expiry_grace_seconds + 60)
    await sweep_expired(db, gateway, settings, now=beyond)
    row = await subscription_row(db, subscribed.subscription_id)
    assert row.status == SubscriptionStatus.ACTIVE and row.cancel_at_period_end is False
    await events.wait_for("subscription.resumed", of_subscription(subscribed.subscription_id))
