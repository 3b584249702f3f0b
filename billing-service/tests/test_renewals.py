"""Time passing at Stripe (the emulator's clock): renewals, failed renewals and dunning, scheduled
cancellations taking effect, trials ending."""

from __future__ import annotations

from typing import Any

import httpx
import stripe
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing_service.models import EndReason, Payment, PaymentStatus, SubscriptionStatus
from conftest import (
    Emulator,
    EventTap,
    PaidSubscription,
    Subscribed,
    eventually,
    of_subscription,
    payments_of,
    subscription_row,
    wait_for_status,
)

DAY = 86400


async def to_period_end(
    emulator: Emulator, sdk: stripe.StripeClient, subscribed: Subscribed, extra: int = 3600
) -> int:
    """Move Stripe's clock just past the subscription's period end; returns that period end."""
    sub = sdk.v1.subscriptions.retrieve(subscribed.stripe_subscription_id)
    end = int(sub["items"].data[0].current_period_end)
    await emulator.advance(max(end - await emulator.now(), 0) + extra)
    return end


def of_user(subscribed: Subscribed) -> Any:
    return lambda e: e["data"]["user_id"] == str(subscribed.user.id)


async def invoice_payments(
    db: async_sessionmaker[AsyncSession],
    subscribed: Subscribed,
    invoice_id: str,
    status: PaymentStatus,
    what: str,
) -> list[Payment]:
    """The subscriber's payment rows of `invoice_id`, once the first has `status`."""

    async def check() -> list[Payment] | None:
        rows = [p for p in await payments_of(db, subscribed.user.id) if p.stripe_invoice_id == invoice_id]
        return rows if rows and rows[0].status == status else None

    return await eventually(check, what)


async def test_a_paid_renewal_extends_the_period_once(
    paid_subscription: PaidSubscription,
    emulator: Emulator,
    sdk: stripe.StripeClient,
    db: async_sessionmaker[AsyncSession],
    events: EventTap,
) -> None:
    subscribed = await paid_subscription(amount=1900)
    before = await subscription_row(db, subscribed.subscription_id)
    old_end = await to_period_end(emulator, sdk, subscribed)

    renewed = await events.wait_for("subscription.renewed", of_subscription(subscribed.subscription_id))
    assert renewed["data"]["current_period_start"].startswith(
        before.current_period_end.strftime("%Y-%m-%dT%H:%M:%S")
    )
    row = await subscription_row(db, subscribed.subscription_id)
    assert row.current_period_end and row.current_period_end.timestamp() > old_end
    assert row.status == SubscriptionStatus.ACTIVE

    def is_renewal_payment(e: dict[str, Any]) -> bool:
        return (
            of_user(subscribed)(e)
            and e["data"]["period_start"] != e["data"]["period_end"]
            and e["data"]["period_start"].startswith(before.current_period_end.strftime("%Y-%m-%dT%H:%M"))
        )

    paid = await events.wait_for("payment.succeeded", is_renewal_payment)
    assert paid["data"]["amount"] == 1900

    async def two_payments() -> Any:
        rows = await payments_of(db, subscribed.user.id)
        return rows if len(rows) == 2 and all(p.status == PaymentStatus.PAID for p in rows) else None

    payments = await eventually(two_payments, "the renewal payment")
    assert [p.billing_reason for p in payments] == ["subscription_create", "subscription_cycle"]
    await emulator.flush()
    assert len(await events.all_of("subscription.renewed", of_subscription(subscribed.subscription_id))) == 1
    assert (
        len(await events.all_of("subscription.activated", of_subscription(subscribed.subscription_id), 0))
        == 1
    )


async def test_a_failed_renewal_is_past_due_until_a_retry_is_paid(
    client: httpx.AsyncClient,
    paid_subscription: PaidSubscription,
    emulator: Emulator,
    sdk: stripe.StripeClient,
    db: async_sessionmaker[AsyncSession],
    events: EventTap,
) -> None:
    subscribed = await paid_subscription(amount=2500)
    await emulator.payment_behavior(subscribed.stripe_customer_id, "declined")
    await to_period_end(emulator, sdk, subscribed)

    await wait_for_status(db, subscribed.subscription_id, SubscriptionStatus.PAST_DUE)
    past_due = await events.wait_for("subscription.past_due", of_subscription(subscribed.subscription_id))
    assert past_due["data"]["next_payment_attempt"]
    failed = await events.wait_for("payment.failed", of_user(subscribed))
    assert failed["data"]["attempt_count"] == 1 and failed["data"]["amount"] == 2500
    assert failed["data"]["next_payment_attempt"]
    entitled = (await client.get("/billing/entitlements/me", headers=subscribed.user.headers)).json()
    # access continues
    assert entitled["status"] == "past_due" and entitled["features"] == subscribed.plan["features"]

    await emulator.payment_behavior(subscribed.stripe_customer_id, "paid")  # the card was updated
    await emulator.advance(3 * DAY + 3600)  # Stripe's retry
    await wait_for_status(db, subscribed.subscription_id, SubscriptionStatus.ACTIVE)
    await events.wait_for("subscription.renewed", of_subscription(subscribed.subscription_id))
    paid = await events.wait_for(
        "payment.succeeded",
        lambda e: of_user(subscribed)(e) and e["data"]["invoice_id"] == failed["data"]["invoice_id"],
    )
    assert paid["data"]["amount"] == 2500

    [payment] = await invoice_payments(
        db, subscribed, failed["data"]["invoice_id"], PaymentStatus.PAID, "the retried invoice paid"
    )
    assert payment.attempt_count == 2
    await emulator.flush()
    assert len(await events.all_of("payment.failed", of_user(subscribed))) == 1


async def test_failing_every_retry_ends_the_subscription(
    client: httpx.AsyncClient,
    paid_subscription: PaidSubscription,
    emulator: Emulator,
    sdk: stripe.StripeClient,
    db: async_sessionmaker[AsyncSession],
    events: EventTap,
) -> None:
    subscribed = await paid_subscription()
    await emulator.payment_behavior(subscribed.stripe_customer_id, "declined")
    await to_period_end(emulator, sdk, subscribed)
    await wait_for_status(db, subscribed.subscription_id, SubscriptionStatus.PAST_DUE)
    for gap in (3, 5, 7):  # Stripe's retries, then its final action: cancel
        await emulator.advance(gap * DAY + 60)
    row = await wait_for_status(db, subscribed.subscription_id, SubscriptionStatus.CANCELED)
    assert row.end_reason == EndReason.PAYMENT_FAILED
    ended = await events.wait_for("subscription.ended", of_subscription(subscribed.subscription_id))
    assert ended["data"]["reason"] == "payment_failed"
    # The clock steps run back to back, so the first event processed already finds the subscription
    # canceled at Stripe and announces the end; the later attempts' webhooks may still be on their
    # way (the emulator delivers one at a time), so wait for the last attempt before counting.
    await events.wait_for(
        "payment.failed", lambda e: of_user(subscribed)(e) and e["data"]["attempt_count"] == 4
    )
    attempts = sorted(
        e["data"]["attempt_count"] for e in await events.all_of("payment.failed", of_user(subscribed))
    )
    assert attempts == [1, 2, 3, 4]
    entitled = (await client.get("/billing/entitlements/me", headers=subscribed.user.headers)).json()
    assert entitled["features"] == []


async def test_a_scheduled_cancellation_ends_access_at_period_end(
    client: httpx.AsyncClient,
    paid_subscription: PaidSubscription,
    emulator: Emulator,
    sdk: stripe.StripeClient,
    db: async_sessionmaker[AsyncSession],
    events: EventTap,
) -> None:
    subscribed = await paid_subscription()
    assert (
        await client.post("/billing/subscriptions/cancel", headers=subscribed.user.headers)
    ).status_code == 200
    await to_period_end(emulator, sdk, subscribed)
    assert sdk.v1.subscriptions.retrieve(subscribed.stripe_subscription_id).status == "canceled"
    row = await wait_for_status(db, subscribed.subscription_id, SubscriptionStatus.CANCELED)
    assert row.end_reason == EndReason.CANCELED and row.ended_at is not None
    ended = await events.wait_for("subscription.ended", of_subscription(subscribed.subscription_id))
    assert ended["data"]["reason"] == "canceled"
    mine = (await client.get("/billing/subscriptions/me", headers=subscribed.user.headers)).json()
    assert mine["status"] == "canceled" and mine["has_access"] is False and mine["entitlements"] == []
    assert [p.billing_reason for p in await payments_of(db, subscribed.user.id)] == ["subscription_create"]
    # Free to subscribe again.
    again = await client.post(
        "/billing/subscriptions/subscribe",
        json={"plan_code": subscribed.plan["code"]},
        headers=subscribed.user.headers,
    )
    assert again.status_code == 201


async def test_a_trial_warns_before_it_ends_then_bills(
    paid_subscription: PaidSubscription,
    emulator: Emulator,
    sdk: stripe.StripeClient,
    db: async_sessionmaker[AsyncSession],
    events: EventTap,
) -> None:
    subscribed = await paid_subscription(amount=4200, trial_days=7)
    trial_end = int(sdk.v1.subscriptions.retrieve(subscribed.stripe_subscription_id).trial_end)
    await emulator.advance(trial_end - await emulator.now() - 3 * DAY + 60)
    warning = await events.wait_for(
        "subscription.trial_will_end", of_subscription(subscribed.subscription_id)
    )
    assert warning["data"]["trial_end"]

    await emulator.advance(3 * DAY)
    await wait_for_status(db, subscribed.subscription_id, SubscriptionStatus.ACTIVE)
    paid = await events.wait_for("payment.succeeded", of_user(subscribed))
    assert paid["data"]["amount"] == 4200
    await emulator.flush()
    assert (
        len(await events.all_of("subscription.trial_will_end", of_subscription(subscribed.subscription_id)))
        == 1
    )
    assert (
        len(await events.all_of("subscription.activated", of_subscription(subscribed.subscription_id), 0))
        == 1
    )


async def test_a_voided_invoice_is_recorded_and_the_subscription_recovers(
    paid_subscription: PaidSubscription,
    emulator: Emulator,
    sdk: stripe.StripeClient,
    db: async_sessionmaker[AsyncSession],
    events: EventTap,
) -> None:
    """Support forgives a failed renewal (voids its invoice): the payment is void, access continues."""
    subscribed = await paid_subscription()
    await emulator.payment_behavior(subscribed.stripe_customer_id, "declined")
    await to_period_end(emulator, sdk, subscribed)
    await wait_for_status(db, subscribed.subscription_id, SubscriptionStatus.PAST_DUE)
    failed = await events.wait_for("payment.failed", of_user(subscribed))
    sdk.v1.invoices.void_invoice(failed["data"]["invoice_id"])
    await wait_for_status(db, subscribed.subscription_id, SubscriptionStatus.ACTIVE)

    await invoice_payments(
        db, subscribed, failed["data"]["invoice_id"], PaymentStatus.VOID, "the voided payment"
    )
    await emulator.flush()
    assert (
        await events.all_of(
            "payment.succeeded", lambda e: e["data"]["invoice_id"] == failed["data"]["invoice_id"]
        )
        == []
    )
