"""The Stripe event log for admins: what was received and what processing made of it, filtered and
paged, one event with its payload, and a failed event retried now rather than at its next attempt."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import jwt
import stripe
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from test_webhooks import WEBHOOK, ping, stored, stored_as

from billing_service.models import StripeEvent, StripeEventStatus
from conftest import NewPlan, User, WebhookEndpoint, eventually, fake_event, new_code, signed
from gatehouse_platform.db import utcnow

LOG = "/billing/admin/stripe-events"
Sessions = async_sessionmaker[AsyncSession]


async def post(client: httpx.AsyncClient, endpoint: WebhookEndpoint, event: dict[str, Any]) -> None:
    body = json.dumps(event)
    response = await client.post(WEBHOOK, content=body, headers=signed(body, endpoint.secret))
    assert response.status_code == 200, response.text


async def failing_subscription_event(sdk: stripe.StripeClient, code: str) -> dict[str, Any]:
    """A subscription naming a plan billing does not know (yet): its event fails until it does."""
    product = sdk.v1.products.create(params={"name": "Unknown yet"})
    price = sdk.v1.prices.create(
        params={
            "product": product.id,
            "unit_amount": 900,
            "currency": "usd",
            "recurring": {"interval": "month"},
        }
    )
    user_id = uuid.uuid4()
    customer = sdk.v1.customers.create(
        params={"email": "log@example.com", "metadata": {"user_id": str(user_id)}}
    )
    subscription = sdk.v1.subscriptions.create(
        params={
            "customer": customer.id,
            "items": [{"price": price.id}],
            "metadata": {"user_id": str(user_id), "subscription_id": str(uuid.uuid4()), "plan_code": code},
        }
    )
    return fake_event("customer.subscription.created", subscription.to_dict(for_json=True))


async def test_a_failed_event_shows_its_error_and_is_retried_now_on_request(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    new_plan: NewPlan,
    sdk: stripe.StripeClient,
    webhook_endpoint: WebhookEndpoint,
    db: Sessions,
) -> None:
    code = new_code()
    event = await failing_subscription_event(sdk, code)
    await post(client, webhook_endpoint, event)

    async def failed() -> StripeEvent | None:
        row = await stored(db, event["id"])
        return row if row is not None and row.status == StripeEventStatus.FAILED else None

    await eventually(failed, "the event to fail")
    # As in production after a few failures: the next attempt a quarter of an hour away.
    async with db() as session, session.begin():
        await session.execute(
            update(StripeEvent)
            .where(StripeEvent.id == event["id"])
            .values(next_attempt_at=utcnow() + timedelta(minutes=15))
        )

    listed = await client.get(LOG, params={"status": "failed", "type": event["type"]}, headers=admin)
    assert listed.status_code == 200, listed.text
    [shown] = [e for e in listed.json()["items"] if e["id"] == event["id"]]
    assert "names no known plan" in shown["last_error"] and shown["attempts"] >= 1
    assert shown["object_id"] == event["data"]["object"]["id"] and shown["source"] == "webhook"
    detail = await client.get(f"{LOG}/{event['id']}", headers=admin)
    assert detail.status_code == 200 and detail.json()["payload"]["id"] == event["id"]
    assert "payload" not in shown

    await new_plan(code=code, amount=900)  # the cause is fixed
    retried = await client.post(f"{LOG}/{event['id']}/retry", headers=admin)
    assert retried.status_code == 200, retried.text
    trail = await client.get(
        "/billing/admin/audit-events", params={"action": "stripe_event.retried"}, headers=admin
    )
    [audited] = [e for e in trail.json()["items"] if e["subject_id"] == event["id"]]
    assert audited["details"]["type"] == event["type"]
    assert (
        audited["actor_id"]
        == jwt.decode(admin["Authorization"].split()[1], options={"verify_signature": False})["sub"]
    )
    await stored_as(db, event["id"], StripeEventStatus.PROCESSED, "the retried event applied", within=10)

    done = await client.post(f"{LOG}/{event['id']}/retry", headers=admin)
    assert done.status_code == 409 and done.json()["type"].endswith("/stripe-event-not-failed")


async def test_the_log_is_filtered_and_paged_newest_first(
    client: httpx.AsyncClient, admin: dict[str, str], webhook_endpoint: WebhookEndpoint, db: Sessions
) -> None:
    product = f"prod_{uuid.uuid4().hex[:10]}"
    events = []
    for _ in range(3):
        event, _body = ping()
        event["data"]["object"]["id"] = product
        await post(client, webhook_endpoint, event)
        await stored_as(db, event["id"], StripeEventStatus.IGNORED, "the ping to be settled")
        events.append(event)

    first = await client.get(LOG, params={"object_id": product, "limit": 2}, headers=admin)
    assert [e["id"] for e in first.json()["items"]] == [events[2]["id"], events[1]["id"]]
    assert {e["status"] for e in first.json()["items"]} == {"ignored"}
    second = await client.get(
        LOG, params={"object_id": product, "limit": 2, "cursor": first.json()["next_cursor"]}, headers=admin
    )
    assert [e["id"] for e in second.json()["items"]] == [events[0]["id"]]
    assert second.json()["next_cursor"] is None


async def test_only_admins_read_the_log_and_bad_requests_are_refused(
    client: httpx.AsyncClient, admin: dict[str, str], new_user: Callable[..., User]
) -> None:
    person = new_user()
    assert (await client.get(LOG, headers=person.headers)).status_code == 403
    assert (await client.post(f"{LOG}/evt_x/retry", headers=person.headers)).status_code == 403
    assert (await client.get(LOG)).status_code == 401
    missing = await client.get(f"{LOG}/evt_never_received", headers=admin)
    assert missing.status_code == 404 and missing.json()["type"].endswith("/stripe-event-not-found")
    retry_missing = await client.post(f"{LOG}/evt_never_received/retry", headers=admin)
    assert retry_missing.status_code == 404
    for path, params in ((f"{LOG}/not-an-event", {}), (LOG, {"status": "lost"}), (LOG, {"limit": 500})):
        refused = await client.get(path, params=params, headers=admin)
        assert refused.status_code == 422, (path, params)
    forged = await client.get(LOG, params={"cursor": "Zm9yZ2Vk"}, headers=admin)
    assert forged.status_code == 400 and forged.json()["type"].endswith("/invalid-cursor")


SYSTEM = "/billing/admin/system"


async def test_the_system_state_shows_readiness_outbox_queues_and_stripe_lag(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    new_user: Callable[..., User],
    sdk: stripe.StripeClient,
    webhook_endpoint: WebhookEndpoint,
    db: Sessions,
) -> None:
    event, _body = ping()
    await post(client, webhook_endpoint, event)
    await stored_as(db, event["id"], StripeEventStatus.IGNORED, "the ping to be settled")
    failing = await failing_subscription_event(sdk, new_code())
    await post(client, webhook_endpoint, failing)
    await stored_as(db, failing["id"], StripeEventStatus.FAILED, "the event to fail")
    async with db() as session, session.begin():  # as if it had been applied a while after it came
        await session.execute(
            update(StripeEvent)
            .where(StripeEvent.id == event["id"])
            .values(
                status=StripeEventStatus.PROCESSED,
                processed_at=StripeEvent.received_at + timedelta(seconds=42),
            )
        )

    answer = await client.get(SYSTEM, headers=admin)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["service"] == "billing-service" and body["ready"] is True
    assert body["checks"] == {"database": "ok", "redis": "ok"} and body["reported"] == {"broker": "ok"}
    assert body["outbox"]["backlog"] >= 0 and body["queues_error"] is None
    names = [consumer["name"] for consumer in body["consumers"]]
    assert len(names) == 2 and all(c["main"]["consumer_count"] >= 1 for c in body["consumers"])
    assert all(c["dlq"]["name"] == f"{c['name']}.dlq" for c in body["consumers"])
    extra = body["extra"]
    assert extra["stripe_events_failed"] >= 1 and extra["stripe_oldest_waiting_seconds"] is not None
    assert extra["stripe_apply_lag_max_seconds"] >= 42 and extra["stripe_applied_last_hour"] >= 1

    person = new_user()
    assert (await client.get(SYSTEM, headers=person.headers)).status_code == 403
    assert (await client.get(SYSTEM)).status_code == 401
