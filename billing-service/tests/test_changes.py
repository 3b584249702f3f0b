"""Changing a live subscription: upgrade (charged now, prorated), downgrade asked for now (credited
later), the preview, cancel at period end and resume. Downgrades at the period end (the default):
test_scheduled_changes.py."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import stripe
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing_service.models import PaymentStatus, SubscriptionStatus
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
)

DAY = 86400


def share(amount: int, remaining: int, length: int) -> int:
    """Stripe's proration of `amount` for `remaining` of `length` seconds, rounded half up."""
    return (2 * amount * remaining + length) // (2 * length)


async def test_an_upgrade_charges_the_prorated_difference_now_on_the_same_subscription(
    client: httpx.AsyncClient,
    paid_subscription: PaidSubscription,
    new_plan: NewPlan,
    emulator: Emulator,
    sdk: stripe.StripeClient,
    db: async_sessionmaker[AsyncSession],
    events: EventTap,
) -> None:
    current = await paid_subscription(amount=1000, features=["basic"])
    target = await new_plan(amount=3000, features=["basic", "pro"])
    await emulator.advance(10 * DAY)  # a third of the way into the month
    headers = current.user.headers

    preview = await client.get(
        "/billing/subscriptions/upgrade/preview", params={"plan_code": target["code"]}, headers=headers
    )
    assert preview.status_code == 200, preview.text
    quote = preview.json()
    assert quote["direction"] == "upgrade" and quote["due_now"] is True
    assert quote["proration_behavior"] == "always_invoice"
    sub = sdk.v1.subscriptions.retrieve(current.stripe_subscription_id)
    start, end = sub["items"].data[0].current_period_start, sub["items"].data[0].current_period_end
    remaining, length = end - quote["proration_date"], end - start
    expected = share(3000, remaining, length) - share(1000, remaining, length)
    assert quote["amount_due"] == expected > 0
    assert sorted(line["amount"] for line in quote["lines"]) == sorted(
        [-share(1000, remaining, length), share(3000, remaining, length)]
    )

    response = await client.post(
        "/billing/subscriptions/upgrade",
        json={"plan_code": target["code"], "proration_date": quote["proration_date"]},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["plan"]["code"] == target["code"] and body["status"] == "active"
    assert body["entitlements"] == ["basic", "pro"] and body["amount"] == 3000

    # One subscription at Stripe, its item now on the new price; the difference invoiced and paid.
    listed = sdk.v1.subscriptions.list(params={"customer": current.stripe_customer_id, "status": "all"})
    assert [s.id for s in listed.data] == [current.stripe_subscription_id]
    sub = sdk.v1.subscriptions.retrieve(current.stripe_subscription_id)
    assert sub["items"].data[0].price.id == target["stripe_price_id"]
    invoice = sdk.v1.invoices.retrieve(sub.latest_invoice)
    assert invoice.billing_reason == "subscription_update" and invoice.status == "paid"
    assert invoice.amount_paid == expected == sum(line.amount for line in invoice.lines.data)
    # Paid in total: the first month, plus only the difference (no second full charge).
    paid = sdk.v1.invoices.list(params={"customer": current.stripe_customer_id, "status": "paid"}).data
    assert sorted(i.amount_paid for i in paid) == sorted([1000, expected])

    changed = await events.wait_for("subscription.plan_changed", of_subscription(current.subscription_id))
    assert changed["data"]["previous_plan_code"] == current.plan["code"]
    assert changed["data"]["plan_code"] == target["code"] and changed["data"]["entitlements"] == [
        "basic",
        "pro",
    ]
    charged = await events.wait_for(
        "payment.succeeded", lambda e: e["data"]["invoice_id"] == invoice.id, within=15
    )
    assert charged["data"]["amount"] == expected

    async def recorded() -> Any:
        rows = [p for p in await payments_of(db, current.user.id) if p.stripe_invoice_id == invoice.id]
        return rows or None

    [payment] = await eventually(recorded, "the proration payment")
    assert payment.status == PaymentStatus.PAID and payment.amount_paid == expected
    assert payment.billing_reason == "subscription_update"
    row = await subscription_row(db, current.subscription_id)
    assert row.plan_id == uuid.UUID(target["id"]) and row.stripe_price_id == target["stripe_price_id"]
    await emulator.flush()
    assert (
        len(await events.all_of("subscription.plan_changed", of_subscription(current.subscription_id))) == 1
    )


async def test_a_downgrade_asked_for_now_switches_now_and_credits_the_next_invoice(
    client: httpx.AsyncClient,
    paid_subscription: PaidSubscription,
    new_plan: NewPlan,
    emulator: Emulator,
    sdk: stripe.StripeClient,
    db: async_sessionmaker[AsyncSession],
    events: EventTap,
) -> None:
    current = await paid_subscription(amount=5000)
    target = await new_plan(amount=2000)
    await emulator.advance(15 * DAY)
    headers = current.user.headers
    quote = (
        await client.get(
            "/billing/subscriptions/upgrade/preview",
            params={"plan_code": target["code"], "when": "now"},
            headers=headers,
        )
    ).json()
    assert quote["direction"] == "downgrade" and quote["due_now"] is False and quote["effective_at"] is None
    assert quote["proration_behavior"] == "create_prorations"
    invoices_before = len(sdk.v1.invoices.list(params={"customer": current.stripe_customer_id}).data)

    response = await client.post(
        "/billing/subscriptions/upgrade", json={"plan_code": target["code"], "when": "now"}, headers=headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["plan"]["code"] == target["code"]
    assert response.json()["scheduled_change"] is None
    assert len(sdk.v1.invoices.list(params={"customer": current.stripe_customer_id}).data) == invoices_before
    # The next invoice: the new price for the next period, less the unused time on the dearer plan.
    upcoming = sdk.v1.invoices.create_preview(
        params={"customer": current.stripe_customer_id, "subscription": current.stripe_subscription_id}
    )
    credit = sum(line.amount for line in upcoming.lines.data if line.amount < 0)
    assert credit < 0 and upcoming.total == quote["amount_due"] == sum(
        line.amount for line in upcoming.lines.data
    )
    assert upcoming.total < 2000
    await events.wait_for("subscription.plan_changed", of_subscription(current.subscription_id))
    assert [p.amount_paid for p in await payments_of(db, current.user.id)] == [5000]


async def test_a_declined_upgrade_changes_nothing_and_can_be_retried(
    client: httpx.AsyncClient,
    paid_subscription: PaidSubscription,
    new_plan: NewPlan,
    emulator: Emulator,
    sdk: stripe.StripeClient,
    db: async_sessionmaker[AsyncSession],
) -> None:
    current = await paid_subscription(amount=1000)
    target = await new_plan(amount=9000)
    await emulator.payment_behavior(current.stripe_customer_id, "declined")
    body = {"plan_code": target["code"]}
    declined = await client.post("/billing/subscriptions/upgrade", json=body, headers=current.user.headers)
    assert declined.status_code == 402, declined.text
    assert declined.json()["type"].endswith("/payment-declined")
    sub = sdk.v1.subscriptions.retrieve(current.stripe_subscription_id)
    assert sub["items"].data[0].price.id == current.plan["stripe_price_id"]
    assert (await subscription_row(db, current.subscription_id)).plan_id == uuid.UUID(current.plan["id"])

    await emulator.payment_behavior(current.stripe_customer_id, "paid")
    retried = await client.post("/billing/subscriptions/upgrade", json=body, headers=current.user.headers)
    assert retried.status_code == 200, retried.text  # a new request at Stripe, not a replay of the decline
    assert retried.json()["plan"]["code"] == target["code"]


async def test_plan_changes_that_cannot_happen_are_refused(
    client: httpx.AsyncClient,
    paid_subscription: PaidSubscription,
    new_plan: NewPlan,
    admin: dict[str, str],
    new_user: Any,
) -> None:
    current = await paid_subscription()
    headers = current.user.headers

    async def change(code: str) -> httpx.Response:
        return await client.post("/billing/subscriptions/upgrade", json={"plan_code": code}, headers=headers)

    same = await change(current.plan["code"])
    assert same.status_code == 409 and same.json()["type"].endswith("/same-plan")
    euro = await new_plan(currency="eur")
    other_currency = await change(euro["code"])
    assert other_currency.status_code == 409 and other_currency.json()["type"].endswith("/incompatible-plan")
    retired = await new_plan()
    await client.delete(f"/billing/plans/{retired['id']}", headers=admin)
    assert (await change(retired["code"])).json()["type"].endswith("/plan-not-available")
    assert (await change("no-such-plan")).status_code == 404
    stale = await client.post(
        "/billing/subscriptions/upgrade",
        json={"plan_code": (await new_plan())["code"], "proration_date": 1},
        headers=headers,
    )
    assert stale.status_code == 422 and stale.json()["type"].endswith("/invalid-proration-date")

    nobody = new_user()
    missing = await client.post(
        "/billing/subscriptions/upgrade", json={"plan_code": euro["code"]}, headers=nobody.headers
    )
    assert missing.status_code == 404 and missing.json()["type"].endswith("/subscription-not-found")
    preview = await client.get(
        "/billing/subscriptions/upgrade/preview", params={"plan_code": euro["code"]}, headers=nobody.headers
    )
    assert preview.status_code == 404

    pending = new_user()
    await subscribe(client, pending, current.plan["code"])
    in_checkout = await client.post(
        "/billing/subscriptions/upgrade", json={"plan_code": euro["code"]}, headers=pending.headers
    )
    assert in_checkout.status_code == 409 and in_checkout.json()["type"].endswith(
        "/subscription-not-changeable"
    )


async def test_cancel_at_period_end_then_resume(
    client: httpx.AsyncClient,
    paid_subscription: PaidSubscription,
    emulator: Emulator,
    sdk: stripe.StripeClient,
    events: EventTap,
) -> None:
    current = await paid_subscription()
    headers = current.user.headers
    canceled = await client.post("/billing/subscriptions/cancel", headers=headers)
    assert canceled.status_code == 200, canceled.text
    body = canceled.json()
    assert body["cancel_at_period_end"] is True and body["status"] == "active" and body["has_access"]
    assert sdk.v1.subscriptions.retrieve(current.stripe_subscription_id).cancel_at_period_end is True
    again = await client.post("/billing/subscriptions/cancel", headers=headers)
    assert again.status_code == 200 and again.json()["cancel_at_period_end"] is True  # idempotent

    scheduled = await events.wait_for(
        "subscription.cancel_scheduled", of_subscription(current.subscription_id)
    )
    assert scheduled["data"]["cancel_at"] == body["current_period_end"].replace("+00:00", "Z") or scheduled[
        "data"
    ]["cancel_at"].startswith(body["current_period_end"][:19])
    entitled = (await client.get("/billing/entitlements/me", headers=headers)).json()
    assert entitled["features"] == current.plan["features"]  # access runs until the period ends

    resumed = await client.post("/billing/subscriptions/resume", headers=headers)
    assert resumed.status_code == 200 and resumed.json()["cancel_at_period_end"] is False
    assert sdk.v1.subscriptions.retrieve(current.stripe_subscription_id).cancel_at_period_end is False
    await events.wait_for("subscription.resumed", of_subscription(current.subscription_id))
    not_scheduled = await client.post("/billing/subscriptions/resume", headers=headers)
    assert not_scheduled.status_code == 409

    await emulator.flush()
    assert (
        len(await events.all_of("subscription.cancel_scheduled", of_subscription(current.subscription_id)))
        == 1
    )
    assert len(await events.all_of("subscription.resumed", of_subscription(current.subscription_id), 0)) == 1


async def test_cancel_and_resume_need_a_subscription(client: httpx.AsyncClient, new_user: Any) -> None:
    user = new_user()
    for path in ("/billing/subscriptions/cancel", "/billing/subscriptions/resume"):
        response = await client.post(path, headers=user.headers)
        assert response.status_code == 404 and response.json()["type"].endswith("/subscription-not-found")
    assert (await client.get("/billing/subscriptions/me", headers=user.headers)).status_code == 404
    assert (await client.get("/billing/entitlements/me", headers=user.headers)).json() == {
        "org_id": None,
        "plan_code": None,
        "tier": None,
        "features": [],
        "status": None,
        "active_until": None,
        "restricted": False,
    }


async def test_canceling_a_pending_checkout_abandons_it(
    client: httpx.AsyncClient,
    new_plan: NewPlan,
    new_user: Any,
    sdk: stripe.StripeClient,
    db: async_sessionmaker[AsyncSession],
) -> None:
    user = new_user()
    checkout = await subscribe(client, user, (await new_plan())["code"])
    response = await client.post("/billing/subscriptions/cancel", headers=user.headers)
    assert response.status_code == 200 and response.json()["status"] == "checkout_expired"
    assert sdk.v1.checkout.sessions.retrieve(checkout["session_id"]).status == "expired"
    assert (
        await subscription_row(db, checkout["subscription_id"])
    ).status == SubscriptionStatus.CHECKOUT_EXPIRED
