"""The webhook endpoint: signatures and timestamps, storing each event once, answering fast; and what
happens to events that cannot be applied yet."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import httpx
import stripe
from prometheus_client import REGISTRY
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing_service.models import StripeEvent, StripeEventStatus, Subscription, SubscriptionStatus
from billing_service.settings import Settings
from conftest import (
    PREVIOUS_WEBHOOK_SECRET,
    Emulator,
    EventTap,
    NewPlan,
    PaidSubscription,
    WebhookEndpoint,
    eventually,
    fake_event,
    new_code,
    of_subscription,
    signed,
)

WEBHOOK = "/billing/stripe/webhook"


async def stored(db: async_sessionmaker[AsyncSession], event_id: str) -> StripeEvent | None:
    async with db() as session:
        return await session.get(StripeEvent, event_id)


async def stored_as(
    db: async_sessionmaker[AsyncSession],
    event_id: str,
    status: StripeEventStatus,
    what: str,
    within: float = 15.0,
) -> StripeEvent:
    """The stored event, once it has `status`."""

    async def check() -> StripeEvent | None:
        row = await stored(db, event_id)
        return row if row is not None and row.status == status else None

    return await eventually(check, what, within=within)


def ping(event_type: str = "product.created") -> tuple[dict[str, Any], str]:
    event = fake_event(event_type, {"id": f"prod_{uuid.uuid4().hex[:10]}", "object": "product"})
    return event, json.dumps(event)


async def test_a_missing_signature_is_refused(
    client: httpx.AsyncClient, db: async_sessionmaker[AsyncSession]
) -> None:
    event, body = ping()
    response = await client.post(WEBHOOK, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"].endswith("/webhook-signature-invalid")
    assert await stored(db, event["id"]) is None


async def test_a_wrong_secret_is_refused(
    client: httpx.AsyncClient, db: async_sessionmaker[AsyncSession]
) -> None:
    event, body = ping()
    response = await client.post(WEBHOOK, content=body, headers=signed(body, "whsec_not_ours"))
    assert response.status_code == 400
    assert response.json()["detail"] == "No signature matches."
    assert await stored(db, event["id"]) is None


async def test_a_tampered_body_is_refused(
    client: httpx.AsyncClient, webhook_endpoint: WebhookEndpoint
) -> None:
    event, body = ping()
    headers = signed(body, webhook_endpoint.secret)
    event["type"] = "invoice.paid"
    response = await client.post(WEBHOOK, content=json.dumps(event), headers=headers)
    assert response.status_code == 400


async def test_a_signature_older_than_five_minutes_is_refused(
    client: httpx.AsyncClient, webhook_endpoint: WebhookEndpoint, db: async_sessionmaker[AsyncSession]
) -> None:
    event, body = ping()
    old = await client.post(
        WEBHOOK, content=body, headers=signed(body, webhook_endpoint.secret, timestamp=int(time.time()) - 301)
    )
    assert old.status_code == 400 and old.json()["detail"] == "The signature timestamp is too old."
    assert await stored(db, event["id"]) is None
    recent = await client.post(
        WEBHOOK, content=body, headers=signed(body, webhook_endpoint.secret, timestamp=int(time.time()) - 250)
    )
    assert recent.status_code == 200


async def test_a_malformed_signature_header_is_refused(client: httpx.AsyncClient) -> None:
    _, body = ping()
    response = await client.post(
        WEBHOOK, content=body, headers={"Stripe-Signature": "garbage", "Content-Type": "application/json"}
    )
    assert (
        response.status_code == 400
        and response.json()["detail"] == "The Stripe-Signature header is malformed."
    )


async def test_the_previous_secret_is_accepted_during_rotation(
    client: httpx.AsyncClient, db: async_sessionmaker[AsyncSession]
) -> None:
    event, body = ping()
    response = await client.post(WEBHOOK, content=body, headers=signed(body, PREVIOUS_WEBHOOK_SECRET))
    assert response.status_code == 200 and response.json() == {"received": True, "duplicate": False}
    assert await stored(db, event["id"]) is not None


async def test_a_signed_body_that_is_not_an_event_is_refused(
    client: httpx.AsyncClient, webhook_endpoint: WebhookEndpoint
) -> None:
    for body in ("not json", json.dumps({"hello": "world"})):
        response = await client.post(WEBHOOK, content=body, headers=signed(body, webhook_endpoint.secret))
        assert response.status_code == 400
        assert response.json()["type"].endswith("/webhook-payload-invalid")


async def test_each_event_is_stored_once_and_duplicates_are_acknowledged(
    client: httpx.AsyncClient, webhook_endpoint: WebhookEndpoint, db: async_sessionmaker[AsyncSession]
) -> None:
    event, body = ping("some.future_event_type")
    answers = [
        (await client.post(WEBHOOK, content=body, headers=signed(body, webhook_endpoint.secret))).json()
        for _ in range(3)
    ]
    assert answers == [
        {"received": True, "duplicate": False},
        {"received": True, "duplicate": True},
        {"received": True, "duplicate": True},
    ]

    row = await stored_as(db, event["id"], StripeEventStatus.IGNORED, "the unknown event to be ignored")
    assert row.attempts == 1 and row.processed_at is not None and row.source == "webhook"
    async with db() as session:
        assert await session.scalar(select(func.count()).where(StripeEvent.id == event["id"])) == 1


async def test_every_delivered_event_is_recorded_with_its_outcome(
    paid_subscription: PaidSubscription,
    emulator: Emulator,
    db: async_sessionmaker[AsyncSession],
    sdk: stripe.StripeClient,
) -> None:
    def applied() -> float:  # the processor runs in this process (a thread): its registry is ours
        return REGISTRY.get_sample_value("billing_stripe_event_apply_lag_seconds_count") or 0.0

    applied_before = applied()
    subscribed = await paid_subscription()
    await emulator.flush()
    delivered = sdk.v1.events.list(params={"limit": 100}).data
    mine = [e for e in delivered if subscribed.stripe_subscription_id in json.dumps(e.to_dict(for_json=True))]
    types = {e.type for e in mine}
    assert {"customer.subscription.created", "invoice.paid", "checkout.session.completed"} <= types

    async def all_settled() -> list[StripeEvent] | None:
        async with db() as session:
            rows = (
                (await session.execute(select(StripeEvent).where(StripeEvent.id.in_([e.id for e in mine]))))
                .scalars()
                .all()
            )
        settled = [r for r in rows if r.status in (StripeEventStatus.PROCESSED, StripeEventStatus.IGNORED)]
        return rows if len(settled) == len(mine) else None  # type: ignore[return-value]

    rows = {r.id: r for r in await eventually(all_settled, "every event to be settled")}
    by_type = {e.type: rows[e.id].status for e in mine}
    assert by_type["invoice.paid"] == StripeEventStatus.PROCESSED
    assert by_type["checkout.session.completed"] == StripeEventStatus.PROCESSED
    assert by_type["customer.subscription.created"] == StripeEventStatus.PROCESSED
    assert by_type.get("invoice.created", StripeEventStatus.IGNORED) == StripeEventStatus.IGNORED
    # Each applied event's wait from receipt to applied is observed, for the lag alert.
    processed = [r for r in rows.values() if r.status == StripeEventStatus.PROCESSED]
    assert applied() - applied_before >= len(processed)


async def test_an_event_that_cannot_be_applied_yet_is_retried_until_it_can(
    client: httpx.AsyncClient,
    new_plan: NewPlan,
    webhook_endpoint: WebhookEndpoint,
    settings: Settings,
    sdk: stripe.StripeClient,
    db: async_sessionmaker[AsyncSession],
    events: EventTap,
) -> None:
    """A subscription made with our metadata whose row was lost (the request that opened its Checkout
    was rolled back after Stripe answered) names a plan billing does not know yet: the event fails,
    is kept with its error and retried with back-off; once the plan exists the subscription is
    adopted and nothing was lost."""
    code = new_code()
    product = sdk.v1.products.create(params={"name": "Lost"})
    price = sdk.v1.prices.create(
        params={
            "product": product.id,
            "unit_amount": 700,
            "currency": "usd",
            "recurring": {"interval": "month"},
        }
    )
    user_id, our_id = uuid.uuid4(), uuid.uuid4()
    customer = sdk.v1.customers.create(
        params={"email": "lost@example.com", "metadata": {"user_id": str(user_id)}}
    )
    subscription = sdk.v1.subscriptions.create(
        params={
            "customer": customer.id,
            "items": [{"price": price.id}],
            "metadata": {"user_id": str(user_id), "subscription_id": str(our_id), "plan_code": code},
        }
    )
    event = fake_event("customer.subscription.created", subscription.to_dict(for_json=True))
    body = json.dumps(event)
    assert (
        await client.post(WEBHOOK, content=body, headers=signed(body, webhook_endpoint.secret))
    ).status_code == 200

    async def failed_twice() -> StripeEvent | None:
        row = await stored(db, event["id"])
        return row if row is not None and row.attempts >= 2 else None

    row = await eventually(failed_twice, "two failed attempts")
    assert row.status == StripeEventStatus.FAILED and "names no known plan" in (row.last_error or "")
    assert row.next_attempt_at > row.received_at

    await new_plan(code=code, amount=700)

    await stored_as(
        db,
        event["id"],
        StripeEventStatus.PROCESSED,
        "the retried event to be processed",
        within=settings.webhook_retry_max_seconds + 10,
    )
    async with db() as session:
        adopted = await session.get(Subscription, our_id)
    assert adopted is not None and adopted.status == SubscriptionStatus.ACTIVE
    assert adopted.stripe_subscription_id == subscription.id and adopted.user_id == user_id
    await events.wait_for("subscription.activated", of_subscription(our_id))


async def test_events_of_subscriptions_that_are_not_ours_are_ignored(
    client: httpx.AsyncClient,
    webhook_endpoint: WebhookEndpoint,
    sdk: stripe.StripeClient,
    db: async_sessionmaker[AsyncSession],
) -> None:
    product = sdk.v1.products.create(params={"name": "Someone else's"})
    price = sdk.v1.prices.create(
        params={
            "product": product.id,
            "unit_amount": 100,
            "currency": "usd",
            "recurring": {"interval": "month"},
        }
    )
    customer = sdk.v1.customers.create(params={"email": "other@example.com"})
    subscription = sdk.v1.subscriptions.create(
        params={"customer": customer.id, "items": [{"price": price.id}]}
    )
    event = fake_event("customer.subscription.updated", subscription.to_dict(for_json=True))
    body = json.dumps(event)
    await client.post(WEBHOOK, content=body, headers=signed(body, webhook_endpoint.secret))

    await stored_as(
        db, event["id"], StripeEventStatus.IGNORED, "the foreign subscription's event to be ignored"
    )


async def test_concurrent_copies_of_one_event_are_stored_once(
    client: httpx.AsyncClient, webhook_endpoint: WebhookEndpoint, db: async_sessionmaker[AsyncSession]
) -> None:
    """Copies arriving together share one write (group commit): still exactly one is new."""
    event, body = ping("some.other_future_event")
    headers = signed(body, webhook_endpoint.secret)
    answers = await asyncio.gather(*(client.post(WEBHOOK, content=body, headers=headers) for _ in range(10)))
    assert [a.status_code for a in answers] == [200] * 10
    assert sorted(a.json()["duplicate"] for a in answers) == [False] + [True] * 9
    async with db() as session:
        assert await session.scalar(select(func.count()).where(StripeEvent.id == event["id"])) == 1
