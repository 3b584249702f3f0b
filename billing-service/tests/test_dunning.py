"""Dunning: a failed renewal while Stripe retries it (3, 5 and 7 days apart): the subscription shows
Stripe's next attempt and the grace, keeps its features during the grace, is restricted after it until
paid, and a payment after failures is announced once as `payment.recovered`, however Stripe's
webhooks arrive."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import stripe
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from test_refunds_disputes import replay_reordered
from test_renewals import of_user, to_period_end

from billing_service.integrations.stripe import StripeGateway
from billing_service.models import SubscriptionStatus
from billing_service.settings import Settings
from billing_service.subscriptions.lifecycle import sweep_expired
from conftest import (
    Emulator,
    EventTap,
    PaidSubscription,
    Subscribed,
    WebhookEndpoint,
    eventually,
    settled,
    subscription_row,
    wait_for_status,
)

DAY = 86400


def at(seconds: int | float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def parsed(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


async def mine(client: httpx.AsyncClient, subscribed: Subscribed) -> dict[str, Any]:
    response = await client.get("/billing/subscriptions/me", headers=subscribed.user.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def entitled(client: httpx.AsyncClient, subscribed: Subscribed) -> dict[str, Any]:
    response = await client.get("/billing/entitlements/me", headers=subscribed.user.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def failed_renewal(
    paid_subscription: PaidSubscription,
    emulator: Emulator,
    sdk: stripe.StripeClient,
    db: async_sessionmaker[AsyncSession],
    events: EventTap,
) -> tuple[Subscribed, stripe.Invoice]:
    """A subscriber whose renewal was just declined: past due, Stripe's failed invoice."""
    subscribed = await paid_subscription(amount=2500)
    await emulator.payment_behavior(subscribed.stripe_customer_id, "declined")
    await to_period_end(emulator, sdk, subscribed)
    await wait_for_status(db, subscribed.subscription_id, SubscriptionStatus.PAST_DUE)
    failed = await events.wait_for("payment.failed", of_user(subscribed))
    return subscribed, sdk.v1.invoices.retrieve(failed["data"]["invoice_id"])


async def test_a_failed_renewal_keeps_access_for_the_grace_then_is_restricted_until_paid(
    client: httpx.AsyncClient,
    paid_subscription: PaidSubscription,
    emulator: Emulator,
    sdk: stripe.StripeClient,
    db: async_sessionmaker[AsyncSession],
    events: EventTap,
    settings: Settings,
    gateway: StripeGateway,
) -> None:
    subscribed, invoice = await failed_renewal(paid_subscription, emulator, sdk, db, events)
    renewal = invoice.created
    assert (invoice.attempt_count, invoice.next_payment_attempt) == (1, renewal + 3 * DAY)
    grace_until = at(renewal) + timedelta(seconds=settings.dunning_grace_seconds)

    me = await mine(client, subscribed)
    assert me["status"] == "past_due" and me["has_access"] is True and me["restricted"] is False
    assert parsed(me["next_payment_attempt"]) == at(renewal + 3 * DAY)
    assert parsed(me["grace_until"]) == grace_until
    rights = await entitled(client, subscribed)
    assert rights["restricted"] is False and rights["features"] == subscribed.plan["features"]

    # Stripe's first retry, 3 days later, fails too: the next one is 5 days after it.
    await emulator.advance(3 * DAY + 60)
    await events.wait_for(
        "payment.failed", lambda e: of_user(subscribed)(e) and e["data"]["attempt_count"] == 2
    )

    async def next_attempt_moved() -> dict[str, Any] | None:
        body = await mine(client, subscribed)
        return body if parsed(body["next_payment_attempt"]) == at(renewal + 8 * DAY) else None

    me = await eventually(next_attempt_moved, "the next attempt 5 days after the first retry")
    assert parsed(me["grace_until"]) == grace_until  # the grace counts from the first failure

    # Within the grace the sweep changes nothing; after it, the plan is restricted.
    await sweep_expired(db, gateway, settings, now=grace_until - timedelta(minutes=1))
    assert (await subscription_row(db, subscribed.subscription_id)).restricted_at is None
    assert (await entitled(client, subscribed))["restricted"] is False
    after = await sweep_expired(db, gateway, settings, now=grace_until + timedelta(minutes=1))
    assert after.restricted >= 1
    me = await mine(client, subscribed)
    assert (me["status"], me["restricted"], me["has_access"], me["entitlements"]) == (
        "past_due",
        True,
        False,
        [],
    )
    rights = await entitled(client, subscribed)
    assert (rights["restricted"], rights["features"], rights["plan_code"], rights["status"]) == (
        True,
        [],
        subscribed.plan["code"],
        "past_due",
    )
    await sweep_expired(db, gateway, settings, now=grace_until + timedelta(minutes=2))
    row = await subscription_row(db, subscribed.subscription_id)
    assert row.status == SubscriptionStatus.PAST_DUE and row.restricted_at is not None

    # The card is updated; Stripe's next retry pays: recovered, features back, once.
    await emulator.payment_behavior(subscribed.stripe_customer_id, "paid")
    await emulator.advance(5 * DAY + 60)
    recovered = await events.wait_for("payment.recovered", of_user(subscribed))
    assert recovered["data"]["invoice_id"] == invoice.id
    assert (recovered["data"]["amount"], recovered["data"]["attempt_count"]) == (2500, 3)
    row = await wait_for_status(db, subscribed.subscription_id, SubscriptionStatus.ACTIVE)
    assert (row.past_due_since, row.next_payment_attempt, row.restricted_at) == (None, None, None)
    me = await mine(client, subscribed)
    assert (me["restricted"], me["has_access"], me["next_payment_attempt"], me["grace_until"]) == (
        False,
        True,
        None,
        None,
    )
    assert (await entitled(client, subscribed))["features"] == subscribed.plan["features"]
    await emulator.flush()
    assert len(await events.all_of("payment.recovered", of_user(subscribed))) == 1


async def test_a_renewal_paid_at_the_first_attempt_is_no_recovery(
    paid_subscription: PaidSubscription,
    emulator: Emulator,
    sdk: stripe.StripeClient,
    events: EventTap,
) -> None:
    subscribed = await paid_subscription(amount=1500)
    await to_period_end(emulator, sdk, subscribed)
    await events.wait_for("subscription.renewed", lambda e: of_user(subscribed)(e))
    await emulator.flush()
    assert await events.all_of("payment.recovered", of_user(subscribed), 0.5) == []


async def test_duplicated_reordered_dunning_webhooks_recover_once(
    client: httpx.AsyncClient,
    paid_subscription: PaidSubscription,
    emulator: Emulator,
    sdk: stripe.StripeClient,
    db: async_sessionmaker[AsyncSession],
    events: EventTap,
    webhook_endpoint: WebhookEndpoint,
) -> None:
    subscribed, invoice = await failed_renewal(paid_subscription, emulator, sdk, db, events)
    await emulator.payment_behavior(subscribed.stripe_customer_id, "paid")
    await emulator.advance(3 * DAY + 60)
    await events.wait_for("payment.recovered", of_user(subscribed))
    await settled(emulator, db)

    posted = await replay_reordered(
        client,
        sdk,
        webhook_endpoint,
        {invoice.id, subscribed.stripe_subscription_id},
        [
            "invoice.payment_failed",
            "invoice.paid",
            "invoice.payment_succeeded",
            "customer.subscription.updated",
        ],
    )
    assert posted >= 12
    await settled(emulator, db)
    row = await subscription_row(db, subscribed.subscription_id)
    assert (row.status, row.restricted_at, row.past_due_since) == (SubscriptionStatus.ACTIVE, None, None)
    await emulator.flush()
    assert len(await events.all_of("payment.recovered", of_user(subscribed))) == 1
    assert len(await events.all_of("payment.failed", of_user(subscribed), 0)) == 1
    assert len(await events.all_of("subscription.past_due", of_user(subscribed), 0)) == 1
