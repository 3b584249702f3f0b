"""Downgrades at the period end (a Stripe subscription schedule): shown as `scheduled_change`, taken
effect by Stripe at the renewal (billed at the cheaper price, `subscription.plan_changed` once),
withdrawn with `DELETE /billing/subscriptions/scheduled-change`, replaced by a change made now or a
cancellation; the bad requests; duplicated and reordered schedule webhooks applied once."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import stripe
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from test_refunds_disputes import events_about, post_reordered

from billing_service.models import SubscriptionStatus
from conftest import (
    Emulator,
    EventTap,
    NewPlan,
    PaidSubscription,
    Subscribed,
    WebhookEndpoint,
    eventually,
    of_subscription,
    settled,
    subscription_row,
)

CHANGE = "/billing/subscriptions/upgrade"
SCHEDULED = "/billing/subscriptions/scheduled-change"
DAY = 86400


def period_end(sdk: stripe.StripeClient, subscribed: Subscribed) -> int:
    sub = sdk.v1.subscriptions.retrieve(subscribed.stripe_subscription_id)
    return int(sub["items"].data[0].current_period_end)


async def mine(client: httpx.AsyncClient, subscribed: Subscribed) -> dict[str, Any]:
    response = await client.get("/billing/subscriptions/me", headers=subscribed.user.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def scheduled_downgrade(
    client: httpx.AsyncClient, paid_subscription: PaidSubscription, new_plan: NewPlan
) -> tuple[Subscribed, dict[str, Any], dict[str, Any]]:
    """A subscriber on a 5000 plan who asked for a 2000 one (no `when`: at the period end)."""
    current = await paid_subscription(amount=5000, features=["basic", "pro"])
    target = await new_plan(amount=2000, features=["basic"])
    response = await client.post(CHANGE, json={"plan_code": target["code"]}, headers=current.user.headers)
    assert response.status_code == 200, response.text
    return current, target, dict(response.json())


async def test_a_downgrade_waits_for_the_period_end_then_the_cheaper_plan_is_active(
    client: httpx.AsyncClient,
    paid_subscription: PaidSubscription,
    new_plan: NewPlan,
    emulator: Emulator,
    sdk: stripe.StripeClient,
    db: async_sessionmaker[AsyncSession],
    events: EventTap,
) -> None:
    current, target, body = await scheduled_downgrade(client, paid_subscription, new_plan)
    end = period_end(sdk, current)
    preview = await client.get(
        "/billing/subscriptions/upgrade/preview",
        params={"plan_code": target["code"]},
        headers=current.user.headers,
    )
    assert preview.status_code == 200, preview.text
    quote = preview.json()
    assert (quote["direction"], quote["due_now"], quote["proration_behavior"]) == ("downgrade", False, "none")
    assert datetime.fromisoformat(quote["effective_at"]) == datetime.fromtimestamp(end, UTC)
    assert quote["amount_due"] == 2000 and not any(line["proration"] for line in quote["lines"])
    # Nothing changes now: same plan, same features, nothing invoiced; the change is shown.
    assert body["plan"]["code"] == current.plan["code"] and body["entitlements"] == ["basic", "pro"]
    scheduled = body["scheduled_change"]
    assert (scheduled["plan_code"], scheduled["plan_name"]) == (target["code"], target["name"])
    assert datetime.fromisoformat(scheduled["effective_at"]) == datetime.fromtimestamp(end, UTC)
    at_stripe = sdk.v1.subscriptions.retrieve(current.stripe_subscription_id)
    assert at_stripe.schedule is not None
    assert at_stripe["items"].data[0].price.id == current.plan["stripe_price_id"]
    assert len(sdk.v1.invoices.list(params={"customer": current.stripe_customer_id}).data) == 1
    # Asking again changes nothing (one schedule).
    again = await client.post(CHANGE, json={"plan_code": target["code"]}, headers=current.user.headers)
    assert again.status_code == 200 and again.json()["scheduled_change"] == body["scheduled_change"]
    assert sdk.v1.subscriptions.retrieve(current.stripe_subscription_id).schedule == at_stripe.schedule

    await emulator.advance(end - await emulator.now() + 60)
    changed = await events.wait_for("subscription.plan_changed", of_subscription(current.subscription_id))
    assert (changed["data"]["previous_plan_code"], changed["data"]["plan_code"]) == (
        current.plan["code"],
        target["code"],
    )

    async def switched() -> dict[str, Any] | None:
        me = await mine(client, current)
        return me if me["plan"]["code"] == target["code"] and me["scheduled_change"] is None else None

    me = await eventually(switched, "the cheaper plan active, nothing scheduled")
    assert (me["amount"], me["entitlements"], me["status"]) == (2000, ["basic"], "active")
    renewal = sdk.v1.invoices.retrieve(
        str(sdk.v1.subscriptions.retrieve(current.stripe_subscription_id).latest_invoice)
    )
    assert (renewal.billing_reason, renewal.amount_paid) == ("subscription_cycle", 2000)
    row = await subscription_row(db, current.subscription_id)
    assert row.plan_id == uuid.UUID(target["id"]) and row.scheduled_plan_id is None
    await emulator.flush()
    assert (
        len(await events.all_of("subscription.plan_changed", of_subscription(current.subscription_id))) == 1
    )


async def test_a_scheduled_downgrade_can_be_withdrawn_and_then_there_is_none(
    client: httpx.AsyncClient,
    paid_subscription: PaidSubscription,
    new_plan: NewPlan,
    emulator: Emulator,
    sdk: stripe.StripeClient,
    db: async_sessionmaker[AsyncSession],
) -> None:
    current, _, _ = await scheduled_downgrade(client, paid_subscription, new_plan)
    schedule_id = str(sdk.v1.subscriptions.retrieve(current.stripe_subscription_id).schedule)
    withdrawn = await client.delete(SCHEDULED, headers=current.user.headers)
    assert withdrawn.status_code == 204, withdrawn.text
    assert (await mine(client, current))["scheduled_change"] is None
    assert sdk.v1.subscription_schedules.retrieve(schedule_id).status == "released"
    assert sdk.v1.subscriptions.retrieve(current.stripe_subscription_id).schedule is None

    none = await client.delete(SCHEDULED, headers=current.user.headers)
    assert none.status_code == 404
    assert none.headers["content-type"].startswith("application/problem+json")
    assert none.json()["type"].endswith("/scheduled-change-not-found")

    await emulator.advance(period_end(sdk, current) - await emulator.now() + 60)
    await settled(emulator, db)
    me = await mine(client, current)
    assert (me["plan"]["code"], me["amount"], me["scheduled_change"]) == (current.plan["code"], 5000, None)


async def test_a_change_made_now_or_a_cancellation_replaces_the_scheduled_one(
    client: httpx.AsyncClient,
    paid_subscription: PaidSubscription,
    new_plan: NewPlan,
    sdk: stripe.StripeClient,
) -> None:
    current, _, _ = await scheduled_downgrade(client, paid_subscription, new_plan)
    dearer = await new_plan(amount=9000, features=["basic", "pro", "team"])
    upgraded = await client.post(CHANGE, json={"plan_code": dearer["code"]}, headers=current.user.headers)
    assert upgraded.status_code == 200, upgraded.text
    assert (upgraded.json()["plan"]["code"], upgraded.json()["scheduled_change"]) == (dearer["code"], None)
    at_stripe = sdk.v1.subscriptions.retrieve(current.stripe_subscription_id)
    assert at_stripe.schedule is None and at_stripe["items"].data[0].price.id == dearer["stripe_price_id"]

    other, _, _ = await scheduled_downgrade(client, paid_subscription, new_plan)
    canceled = await client.post("/billing/subscriptions/cancel", headers=other.user.headers)
    assert canceled.status_code == 200, canceled.text
    assert canceled.json()["cancel_at_period_end"] is True and canceled.json()["scheduled_change"] is None
    assert sdk.v1.subscriptions.retrieve(other.stripe_subscription_id).schedule is None


async def test_bad_plan_change_requests_are_refused_and_change_nothing(
    client: httpx.AsyncClient,
    paid_subscription: PaidSubscription,
    new_plan: NewPlan,
    new_user: Any,
    sdk: stripe.StripeClient,
) -> None:
    current = await paid_subscription(amount=5000)
    headers = current.user.headers
    same = await client.post(CHANGE, json={"plan_code": current.plan["code"]}, headers=headers)
    assert same.status_code == 409 and same.json()["type"].endswith("/same-plan")
    target = await new_plan(amount=2000)
    for when in ("later", None, 3):
        bad = await client.post(CHANGE, json={"plan_code": target["code"], "when": when}, headers=headers)
        assert bad.status_code == 422, bad.text
        assert "when" in bad.json()["errors"]
    nothing = await client.delete(SCHEDULED, headers=headers)
    assert nothing.status_code == 404 and nothing.json()["type"].endswith("/scheduled-change-not-found")
    never = await client.delete(SCHEDULED, headers=new_user().headers)
    assert never.status_code == 404 and never.json()["type"].endswith("/subscription-not-found")
    assert (await mine(client, current))["scheduled_change"] is None
    assert sdk.v1.subscriptions.retrieve(current.stripe_subscription_id).schedule is None


async def test_duplicated_reordered_schedule_webhooks_change_the_plan_once(
    client: httpx.AsyncClient,
    paid_subscription: PaidSubscription,
    new_plan: NewPlan,
    emulator: Emulator,
    sdk: stripe.StripeClient,
    db: async_sessionmaker[AsyncSession],
    events: EventTap,
    webhook_endpoint: WebhookEndpoint,
) -> None:
    current, target, _ = await scheduled_downgrade(client, paid_subscription, new_plan)
    schedule_id = str(sdk.v1.subscriptions.retrieve(current.stripe_subscription_id).schedule)
    ids, types = (
        {schedule_id, current.stripe_subscription_id},
        [
            "subscription_schedule.created",
            "subscription_schedule.updated",
            "subscription_schedule.released",
            "customer.subscription.updated",
        ],
    )
    # Kept now: a month on, Stripe (30 days of events) no longer lists the first ones.
    scheduling = events_about(sdk, ids, types)
    await emulator.advance(period_end(sdk, current) - await emulator.now() + 60)
    await events.wait_for("subscription.plan_changed", of_subscription(current.subscription_id))
    await settled(emulator, db)

    switching = [e for e in events_about(sdk, ids, types) if e["id"] not in {s["id"] for s in scheduling}]
    posted = await post_reordered(client, webhook_endpoint, switching + scheduling)  # newest first
    assert posted >= 3 * 4
    await settled(emulator, db)
    row = await subscription_row(db, current.subscription_id)
    assert (row.status, row.plan_id, row.scheduled_plan_id) == (
        SubscriptionStatus.ACTIVE,
        uuid.UUID(target["id"]),
        None,
    )
    await emulator.flush()
    assert (
        len(await events.all_of("subscription.plan_changed", of_subscription(current.subscription_id))) == 1
    )
