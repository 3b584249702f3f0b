"""Subscribing through Stripe Checkout: the one-live-subscription rule, and every way a Checkout ends."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
import stripe
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing_service.models import Customer, PaymentStatus, Subscription, SubscriptionStatus
from conftest import (
    Emulator,
    EventTap,
    NewPlan,
    PaidSubscription,
    eventually,
    of_subscription,
    payments_of,
    subscribe,
    subscription_row,
    wait_for_status,
)


async def test_subscribe_pay_and_get_activated(
    client: httpx.AsyncClient,
    new_plan: NewPlan,
    new_user: Any,
    emulator: Emulator,
    sdk: stripe.StripeClient,
    db: async_sessionmaker[AsyncSession],
    events: EventTap,
) -> None:
    plan = await new_plan(amount=2900, features=["api", "sso"])
    user = new_user()
    checkout = await subscribe(client, user, plan["code"])
    assert checkout["checkout_url"].endswith(checkout["session_id"])
    pending = await client.get("/billing/subscriptions/me", headers=user.headers)
    assert pending.json()["status"] == "checkout_pending"
    assert pending.json()["checkout_url"] == checkout["checkout_url"] and pending.json()["entitlements"] == []

    session = sdk.v1.checkout.sessions.retrieve(checkout["session_id"])
    assert session.mode == "subscription" and session.status == "open"
    assert session.metadata["subscription_id"] == checkout["subscription_id"]
    assert session.metadata["user_id"] == str(user.id) and session.metadata["plan_code"] == plan["code"]
    assert session.success_url == "https://app.example.com/billing/success"
    customer = sdk.v1.customers.retrieve(session.customer)
    assert customer.email == user.email and customer.metadata["user_id"] == str(user.id)

    await emulator.complete_checkout(checkout["session_id"], "paid")
    row = await wait_for_status(db, checkout["subscription_id"], SubscriptionStatus.ACTIVE)
    assert row.stripe_subscription_id and row.current_period_end and row.activated_at

    activated = await events.wait_for("subscription.activated", of_subscription(row.id))
    assert activated["data"]["status"] == "active" and activated["data"]["email"] == user.email
    assert activated["data"]["plan_code"] == plan["code"] and activated["data"]["amount"] == 2900
    assert activated["data"]["entitlements"] == ["api", "sso"]
    assert activated["source"] == "/billing-service" and activated["subject"] == str(row.id)
    paid = await events.wait_for("payment.succeeded", lambda e: e["data"]["user_id"] == str(user.id))
    assert paid["data"]["amount"] == 2900 and paid["data"]["subscription_id"] == str(row.id)
    assert paid["data"]["invoice_id"].startswith("in_")

    mine = (await client.get("/billing/subscriptions/me", headers=user.headers)).json()
    assert mine["status"] == "active" and mine["has_access"] and mine["entitlements"] == ["api", "sso"]
    assert mine["checkout_url"] is None
    entitled = (await client.get("/billing/entitlements/me", headers=user.headers)).json()
    assert entitled["plan_code"] == plan["code"] and entitled["features"] == ["api", "sso"]
    assert entitled["tier"] == "pro" and entitled["active_until"]
    payments = (await client.get("/billing/payments/me", headers=user.headers)).json()
    assert [p["status"] for p in payments["items"]] == ["paid"] and payments["items"][0][
        "amount_paid"
    ] == 2900

    # Exactly once, although Stripe sent invoice.paid and invoice.payment_succeeded (and more).
    await emulator.flush()
    assert len(await events.all_of("subscription.activated", of_subscription(row.id))) == 1
    assert (
        len(await events.all_of("payment.succeeded", lambda e: e["data"]["user_id"] == str(user.id), 0)) == 1
    )


async def test_unverified_email_cannot_subscribe(
    client: httpx.AsyncClient, new_plan: NewPlan, new_user: Any, db: async_sessionmaker[AsyncSession]
) -> None:
    plan = await new_plan()
    user = new_user(email_verified=False)
    response = await client.post(
        "/billing/subscriptions/subscribe", json={"plan_code": plan["code"]}, headers=user.headers
    )
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"].endswith("/email-not-verified")
    async with db() as session:
        count = await session.scalar(
            select(func.count()).select_from(Subscription).where(Subscription.user_id == user.id)
        )
    assert count == 0


async def test_subscribe_needs_a_token_and_a_known_plan(client: httpx.AsyncClient, new_user: Any) -> None:
    anonymous = await client.post("/billing/subscriptions/subscribe", json={"plan_code": "pro"})
    assert anonymous.status_code == 401
    unknown = await client.post(
        "/billing/subscriptions/subscribe", json={"plan_code": "no-such-plan"}, headers=new_user().headers
    )
    assert unknown.status_code == 404 and unknown.json()["type"].endswith("/plan-not-found")
    invalid = await client.post(
        "/billing/subscriptions/subscribe", json={"plan_code": "NO!"}, headers=new_user().headers
    )
    assert invalid.status_code == 422 and "plan_code" in invalid.json()["errors"]


async def test_a_second_subscribe_is_a_conflict(
    client: httpx.AsyncClient, paid_subscription: PaidSubscription, new_plan: NewPlan
) -> None:
    plan, other = await new_plan(), await new_plan()
    subscribed = await paid_subscription(plan)
    for code in (plan["code"], other["code"]):
        again = await client.post(
            "/billing/subscriptions/subscribe", json={"plan_code": code}, headers=subscribed.user.headers
        )
        assert again.status_code == 409
        assert again.json()["type"].endswith("/subscription-exists")


async def test_concurrent_subscribes_make_exactly_one_subscription(
    client: httpx.AsyncClient,
    new_plan: NewPlan,
    new_user: Any,
    sdk: stripe.StripeClient,
    db: async_sessionmaker[AsyncSession],
) -> None:
    plan = await new_plan()
    user = new_user()
    responses = await asyncio.gather(
        *(
            client.post(
                "/billing/subscriptions/subscribe", json={"plan_code": plan["code"]}, headers=user.headers
            )
            for _ in range(5)
        )
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201, 409, 409, 409, 409], [r.text for r in responses]
    created = next(r.json() for r in responses if r.status_code == 201)
    for refused in (r.json() for r in responses if r.status_code == 409):
        assert refused["type"].endswith("/checkout-in-progress")
        assert refused["checkout_url"] == created["checkout_url"]  # the client can send the user there
    async with db() as session:
        rows = (
            (await session.execute(select(Subscription).where(Subscription.user_id == user.id)))
            .scalars()
            .all()
        )
        customer = await session.get(Customer, user.id)
    assert len(rows) == 1 and str(rows[0].id) == created["subscription_id"]
    assert customer is not None and customer.stripe_customer_id
    # One Stripe customer, one Checkout session.
    assert len(sdk.v1.customers.search(params={"query": f"metadata['user_id']:'{user.id}'"}).data) == 1
    sessions = sdk.v1.checkout.sessions.list(params={"customer": customer.stripe_customer_id})
    assert len(sessions.data) == 1


async def test_the_database_refuses_a_second_live_subscription(
    client: httpx.AsyncClient, new_plan: NewPlan, new_user: Any, db: async_sessionmaker[AsyncSession]
) -> None:
    plan = await new_plan()
    user = new_user()
    first = await subscribe(client, user, plan["code"])
    async with db() as session:
        row = await session.get(Subscription, uuid.UUID(first["subscription_id"]))
        assert row is not None
        session.add(Subscription(user_id=user.id, plan_id=row.plan_id, status=SubscriptionStatus.ACTIVE))
        with pytest.raises(IntegrityError, match="uq_subscriptions_user_holding"):
            await session.commit()


async def test_a_declined_card_keeps_the_checkout_open_until_paid(
    client: httpx.AsyncClient,
    new_plan: NewPlan,
    new_user: Any,
    emulator: Emulator,
    sdk: stripe.StripeClient,
    db: async_sessionmaker[AsyncSession],
    events: EventTap,
) -> None:
    plan = await new_plan()
    user = new_user()
    checkout = await subscribe(client, user, plan["code"])
    declined = await emulator.complete_checkout(checkout["session_id"], "declined")
    assert declined["outcome"] == "declined" and declined["subscription"] is None
    assert sdk.v1.checkout.sessions.retrieve(checkout["session_id"]).status == "open"
    await emulator.flush()
    assert (
        await subscription_row(db, checkout["subscription_id"])
    ).status == SubscriptionStatus.CHECKOUT_PENDING

    await emulator.complete_checkout(checkout["session_id"], "paid")
    await wait_for_status(db, checkout["subscription_id"], SubscriptionStatus.ACTIVE)
    await events.wait_for("subscription.activated", of_subscription(checkout["subscription_id"]))


async def test_a_payment_needing_authentication_waits_then_activates(
    client: httpx.AsyncClient,
    new_plan: NewPlan,
    new_user: Any,
    emulator: Emulator,
    db: async_sessionmaker[AsyncSession],
    events: EventTap,
) -> None:
    plan = await new_plan(amount=1234)
    user = new_user()
    checkout = await subscribe(client, user, plan["code"])
    result = await emulator.complete_checkout(checkout["session_id"], "requires_action")
    assert result["outcome"] == "requires_action"
    row = await wait_for_status(db, checkout["subscription_id"], SubscriptionStatus.INCOMPLETE)
    assert row.activated_at is None

    async def payment_row() -> Any:
        rows = await payments_of(db, user.id)
        return rows if rows and rows[0].status == PaymentStatus.REQUIRES_ACTION else None

    [payment] = await eventually(payment_row, "the invoice needing action")
    assert payment.failure_reason == "authentication_required" and payment.amount_paid == 0
    entitled = (await client.get("/billing/entitlements/me", headers=user.headers)).json()
    assert entitled["features"] == [] and entitled["plan_code"] is None
    # Still holds the slot: a second subscribe is refused.
    again = await client.post(
        "/billing/subscriptions/subscribe", json={"plan_code": plan["code"]}, headers=user.headers
    )
    assert again.status_code == 409

    await emulator.complete_checkout(checkout["session_id"], "paid")  # the customer authenticated
    await wait_for_status(db, checkout["subscription_id"], SubscriptionStatus.ACTIVE)
    await events.wait_for("subscription.activated", of_subscription(checkout["subscription_id"]))
    paid = await events.wait_for("payment.succeeded", lambda e: e["data"]["user_id"] == str(user.id))
    assert paid["data"]["amount"] == 1234
    assert [p.status for p in await payments_of(db, user.id)] == [PaymentStatus.PAID]


async def test_an_abandoned_checkout_is_replaced(
    client: httpx.AsyncClient,
    new_plan: NewPlan,
    new_user: Any,
    sdk: stripe.StripeClient,
    db: async_sessionmaker[AsyncSession],
) -> None:
    plan, other = await new_plan(), await new_plan()
    user = new_user()
    first = await subscribe(client, user, plan["code"])

    # Another plan: the open Checkout is expired at Stripe and replaced.
    second = await subscribe(client, user, other["code"])
    assert sdk.v1.checkout.sessions.retrieve(first["session_id"]).status == "expired"
    assert (
        await subscription_row(db, first["subscription_id"])
    ).status == SubscriptionStatus.CHECKOUT_EXPIRED

    # The same plan, once the Checkout is older than the replacement window: replaced too.
    async with db() as session:
        await session.execute(
            update(Subscription)
            .where(Subscription.id == uuid.UUID(second["subscription_id"]))
            .values(created_at=func.now() - timedelta(hours=1))
        )
        await session.commit()
    third = await subscribe(client, user, other["code"])
    assert third["session_id"] != second["session_id"]
    assert sdk.v1.checkout.sessions.retrieve(second["session_id"]).status == "expired"
    assert (
        await subscription_row(db, third["subscription_id"])
    ).status == SubscriptionStatus.CHECKOUT_PENDING


async def test_a_checkout_that_expires_at_stripe_frees_the_slot(
    client: httpx.AsyncClient,
    new_plan: NewPlan,
    new_user: Any,
    sdk: stripe.StripeClient,
    db: async_sessionmaker[AsyncSession],
) -> None:
    plan = await new_plan()
    user = new_user()
    checkout = await subscribe(client, user, plan["code"])
    sdk.v1.checkout.sessions.expire(checkout["session_id"])  # e.g. 24 hours passed; Stripe tells us
    await wait_for_status(db, checkout["subscription_id"], SubscriptionStatus.CHECKOUT_EXPIRED)
    mine = (await client.get("/billing/subscriptions/me", headers=user.headers)).json()
    assert mine["status"] == "checkout_expired" and mine["has_access"] is False
    await subscribe(client, user, plan["code"])


async def test_a_trial_starts_trialing_without_a_payment_event(
    client: httpx.AsyncClient,
    paid_subscription: PaidSubscription,
    sdk: stripe.StripeClient,
    db: async_sessionmaker[AsyncSession],
    events: EventTap,
) -> None:
    subscribed = await paid_subscription(trial_days=14)
    stripe_sub = sdk.v1.subscriptions.retrieve(subscribed.stripe_subscription_id)
    assert stripe_sub.status == "trialing" and stripe_sub.trial_end
    activated = await events.wait_for("subscription.activated", of_subscription(subscribed.subscription_id))
    assert activated["data"]["status"] == "trialing" and activated["data"]["trial_end"]
    [payment] = await eventually(lambda: payments_of(db, subscribed.user.id), "the $0 trial invoice")
    assert payment.status == PaymentStatus.PAID and payment.amount_paid == 0
    assert (
        await events.all_of("payment.succeeded", lambda e: e["data"]["user_id"] == str(subscribed.user.id))
        == []
    )
    entitled = (await client.get("/billing/entitlements/me", headers=subscribed.user.headers)).json()
    assert entitled["status"] == "trialing" and entitled["features"] == subscribed.plan["features"]
