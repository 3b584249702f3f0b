"""Refunds and disputes of paid payments: an admin's refunds through the API (full, partial, once per
Idempotency-Key, never more than paid, even racing), refunds made in Stripe's dashboard, disputes
opened and closed by the cardholder's bank, each applied exactly once from duplicated and reordered
webhooks, with `payment.refunded` / `payment.disputed` on the queue."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import pytest
import stripe
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing_service.integrations.stripe import DisputeSnapshot, stripe_gateway
from billing_service.models import (
    DisputeStatus,
    EndReason,
    Payment,
    PaymentStatus,
    Refund,
    RefundStatus,
    SubscriptionStatus,
)
from billing_service.payments.money import record_dispute
from billing_service.settings import Settings
from billing_service.webhooks.reconcile import reconcile
from conftest import (
    Emulator,
    EventTap,
    PaidSubscription,
    Subscribed,
    WebhookEndpoint,
    eventually,
    payments_of,
    settled,
    signed,
    subscription_row,
    wait_for_status,
    webhooks_off,
)

WEBHOOK = "/billing/stripe/webhook"


@pytest.fixture
async def paid_subscription(
    paid_subscription: PaidSubscription,
    sdk: stripe.StripeClient,
    emulator: Emulator,
    db: async_sessionmaker[AsyncSession],
) -> AsyncIterator[PaidSubscription]:
    """conftest's, and each subscription canceled at Stripe after the test: the later tests of this
    process move Stripe's clock by months, and every subscription left running renews with them."""
    started: list[Subscribed] = []

    async def start(**plan_fields: Any) -> Subscribed:
        subscribed = await paid_subscription(**plan_fields)
        started.append(subscribed)
        return subscribed

    yield start
    for subscribed in started:
        if sdk.v1.subscriptions.retrieve(subscribed.stripe_subscription_id).status != "canceled":
            sdk.v1.subscriptions.cancel(subscribed.stripe_subscription_id)
    await settled(emulator, db)


def refund_url(payment_id: uuid.UUID | str) -> str:
    return f"/billing/admin/payments/{payment_id}/refund"


def subject_of(headers: dict[str, str]) -> str:
    """The `sub` of the bearer token in `headers` (read, not verified: the test made it)."""
    token = headers["Authorization"].removeprefix("Bearer ")
    return str(jwt.decode(token, options={"verify_signature": False})["sub"])


def keyed(headers: dict[str, str], key: str) -> dict[str, str]:
    return {**headers, "Idempotency-Key": key}


def of_payment(payment_id: uuid.UUID | str) -> Any:
    return lambda e: e["data"].get("payment_id") == str(payment_id)


async def paid_payment(db: async_sessionmaker[AsyncSession], subscribed: Subscribed) -> Payment:
    async def paid() -> Payment | None:
        rows = await payments_of(db, subscribed.user.id)
        return rows[0] if rows and rows[0].status == PaymentStatus.PAID else None

    payment = await eventually(paid, "the first invoice to be recorded paid")
    assert payment.amount_paid == 3000
    return payment


async def payment_row(db: async_sessionmaker[AsyncSession], payment_id: uuid.UUID) -> Payment:
    async with db() as session:
        row = await session.get(Payment, payment_id)
        assert row is not None
        return row


async def refunds_of(db: async_sessionmaker[AsyncSession], payment_id: uuid.UUID) -> list[Refund]:
    async with db() as session:
        rows = await session.execute(
            select(Refund)
            .where(Refund.payment_id == payment_id)
            .order_by(Refund.stripe_created_at, Refund.id)
        )
        return list(rows.scalars())


def charge_of(sdk: stripe.StripeClient, invoice_id: str) -> stripe.Charge:
    [payment] = sdk.v1.invoice_payments.list(params={"invoice": invoice_id}).data
    intent = sdk.v1.payment_intents.retrieve(str(payment.payment.payment_intent))
    assert isinstance(intent.latest_charge, str)
    return sdk.v1.charges.retrieve(intent.latest_charge)


async def replay_reordered(
    client: httpx.AsyncClient,
    sdk: stripe.StripeClient,
    endpoint: WebhookEndpoint,
    object_ids: set[str],
    types: list[str],
) -> int:
    """Deliver Stripe's events of these types about these objects again: newest first, each twice
    under its own id and once more as a new event (as Stripe's retries and its several events about
    one change do). Returns how many were posted."""
    return await post_reordered(client, endpoint, events_about(sdk, object_ids, types))


def events_about(sdk: stripe.StripeClient, object_ids: set[str], types: list[str]) -> list[dict[str, Any]]:
    """Stripe's events of these types about these objects that it still keeps, newest first."""
    listed = [
        e.to_dict(for_json=True)
        for e in sdk.v1.events.list(params={"types": types, "limit": 100}).auto_paging_iter()
    ]
    return [e for e in listed if e["data"]["object"]["id"] in object_ids]


async def post_reordered(
    client: httpx.AsyncClient, endpoint: WebhookEndpoint, events: list[dict[str, Any]]
) -> int:
    """Post `events` in the order given, each twice under its own id and once more as a new event."""
    assert events, "no events to replay"
    posted = 0
    for event in events:
        for copy in (event, event, {**event, "id": f"evt_copy_{uuid.uuid4().hex}"}):
            body = json.dumps(copy)
            response = await client.post(WEBHOOK, content=body, headers=signed(body, endpoint.secret))
            assert response.status_code == 200, response.text
            posted += 1
    return posted


# -- refunds through the API -------------------------------------------------------------------------


async def test_an_admin_refunds_part_then_the_rest_and_the_person_sees_it(
    client: httpx.AsyncClient,
    paid_subscription: PaidSubscription,
    admin: dict[str, str],
    sdk: stripe.StripeClient,
    emulator: Emulator,
    db: async_sessionmaker[AsyncSession],
    events: EventTap,
) -> None:
    subscribed = await paid_subscription(amount=3000)
    payment = await paid_payment(db, subscribed)

    first = await client.post(
        refund_url(payment.id),
        json={"amount": 1000, "reason": "requested_by_customer"},
        headers=keyed(admin, "half-1"),
    )
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["refund"]["amount"] == 1000 and body["refund"]["status"] == "succeeded"
    assert body["refund"]["reason"] == "requested_by_customer"
    assert body["payment"]["amount_refunded"] == 1000 and body["payment"]["status"] == "partially_refunded"

    rest = await client.post(refund_url(payment.id), json={}, headers=keyed(admin, "rest-1"))
    assert rest.status_code == 200, rest.text
    assert rest.json()["refund"]["amount"] == 2000
    assert rest.json()["payment"]["status"] == "refunded"

    charge = charge_of(sdk, payment.stripe_invoice_id)
    assert (charge.amount_refunded, charge.refunded) == (3000, True)
    await settled(emulator, db)  # the refund.created and charge.refunded webhooks change nothing
    row = await payment_row(db, payment.id)
    assert (row.amount_refunded, row.status) == (3000, PaymentStatus.REFUNDED)
    assert sorted((r.amount, r.status) for r in await refunds_of(db, payment.id)) == [
        (1000, RefundStatus.SUCCEEDED),
        (2000, RefundStatus.SUCCEEDED),
    ]

    announced = await events.all_of("payment.refunded", of_payment(payment.id))
    assert sorted((e["data"]["amount"], e["data"]["amount_refunded"]) for e in announced) == [
        (1000, 1000),
        (2000, 3000),
    ]
    assert [e["data"]["fully_refunded"] for e in announced if e["data"]["amount"] == 2000] == [True]
    assert announced[0]["data"]["email"] == subscribed.user.email

    mine = await client.get("/billing/payments/me", headers=subscribed.user.headers)
    [shown] = mine.json()["items"]
    assert (shown["status"], shown["amount_paid"], shown["amount_refunded"]) == ("refunded", 3000, 3000)
    assert shown["dispute_status"] is None


async def test_the_same_key_twice_gives_the_same_refund_never_two(
    client: httpx.AsyncClient,
    paid_subscription: PaidSubscription,
    admin: dict[str, str],
    sdk: stripe.StripeClient,
    emulator: Emulator,
    db: async_sessionmaker[AsyncSession],
    events: EventTap,
) -> None:
    payment = await paid_payment(db, await paid_subscription(amount=3000))
    answers = [
        await client.post(refund_url(payment.id), json={"amount": 500}, headers=keyed(admin, "same-key"))
        for _ in range(2)
    ]
    assert [a.status_code for a in answers] == [200, 200]
    assert answers[0].json()["refund"] == answers[1].json()["refund"]
    reused = await client.post(refund_url(payment.id), json={"amount": 700}, headers=keyed(admin, "same-key"))
    assert reused.status_code == 422
    assert reused.json()["type"].endswith("/idempotency-key-reused")

    await settled(emulator, db)
    assert charge_of(sdk, payment.stripe_invoice_id).amount_refunded == 500
    assert [r.amount for r in await refunds_of(db, payment.id)] == [500]
    assert (await payment_row(db, payment.id)).amount_refunded == 500
    assert len(await events.all_of("payment.refunded", of_payment(payment.id))) == 1
    # Audited once, with who asked and whose money it was; the replayed key adds nothing.
    trail = await client.get(
        "/billing/admin/audit-events", params={"subject_id": str(payment.id)}, headers=admin
    )
    [entry] = trail.json()["items"]
    assert (entry["action"], entry["actor_id"], entry["user_id"]) == (
        "payment.refunded",
        subject_of(admin),
        str(payment.user_id),
    )
    assert entry["details"] == {
        "refund_id": answers[0].json()["refund"]["id"],
        "amount": 500,
        "currency": payment.currency,
        "reason": None,
    }


async def test_a_refund_above_what_remains_is_refused_with_a_clear_problem(
    client: httpx.AsyncClient,
    paid_subscription: PaidSubscription,
    admin: dict[str, str],
    db: async_sessionmaker[AsyncSession],
) -> None:
    payment = await paid_payment(db, await paid_subscription(amount=3000))
    too_much = await client.post(refund_url(payment.id), json={"amount": 3001}, headers=keyed(admin, "k1"))
    assert too_much.status_code == 422
    problem = too_much.json()
    assert problem["type"].endswith("/refund-exceeds-payment")
    assert "only 3000 of the 3000 paid is left" in problem["detail"]
    assert too_much.headers["content-type"].startswith("application/problem+json")

    assert (
        await client.post(refund_url(payment.id), json={"amount": 2500}, headers=keyed(admin, "k2"))
    ).status_code == 200
    over = await client.post(refund_url(payment.id), json={"amount": 600}, headers=keyed(admin, "k3"))
    assert over.status_code == 422 and "only 500 of the 3000 paid is left" in over.json()["detail"]
    assert (await client.post(refund_url(payment.id), json={}, headers=keyed(admin, "k4"))).status_code == 200
    done = await client.post(refund_url(payment.id), json={}, headers=keyed(admin, "k5"))
    assert done.status_code == 422 and "already fully refunded" in done.json()["detail"]
    assert (await payment_row(db, payment.id)).amount_refunded == 3000


async def test_a_refund_made_in_the_dashboard_meanwhile_is_caught_by_stripe(
    client: httpx.AsyncClient,
    paid_subscription: PaidSubscription,
    admin: dict[str, str],
    sdk: stripe.StripeClient,
    webhook_endpoint: WebhookEndpoint,
    emulator: Emulator,
    db: async_sessionmaker[AsyncSession],
) -> None:
    """Billing has not heard of a dashboard refund yet: Stripe's own cap refuses, and the answer is
    still our 422, not a 502."""
    payment = await paid_payment(db, await paid_subscription(amount=3000))
    charge = charge_of(sdk, payment.stripe_invoice_id)
    async with webhooks_off(sdk, webhook_endpoint, emulator, db):
        response = await emulator.http.post(f"/_emulator/charges/{charge.id}/refund", json={"amount": 2000})
        assert response.status_code == 200
        refused = await client.post(
            refund_url(payment.id), json={"amount": 1500}, headers=keyed(admin, "late")
        )
    assert refused.status_code == 422, refused.text
    assert refused.json()["type"].endswith("/refund-exceeds-payment")
    assert "greater than unrefunded amount" in refused.json()["detail"]
    assert charge_of(sdk, payment.stripe_invoice_id).amount_refunded == 2000


async def test_a_second_refund_with_another_key_racing_the_first_cannot_refund_more_than_paid(
    client: httpx.AsyncClient,
    paid_subscription: PaidSubscription,
    admin: dict[str, str],
    sdk: stripe.StripeClient,
    emulator: Emulator,
    db: async_sessionmaker[AsyncSession],
) -> None:
    payment = await paid_payment(db, await paid_subscription(amount=3000))
    answers = await asyncio.gather(
        *(
            client.post(refund_url(payment.id), json={"amount": 2000}, headers=keyed(admin, f"race-{i}"))
            for i in range(3)
        )
    )
    assert sorted(a.status_code for a in answers) == [200, 422, 422], [a.text for a in answers]
    await settled(emulator, db)
    assert charge_of(sdk, payment.stripe_invoice_id).amount_refunded == 2000
    assert [r.amount for r in await refunds_of(db, payment.id)] == [2000]
    assert (await payment_row(db, payment.id)).amount_refunded == 2000


@pytest.mark.parametrize(
    ("body", "key", "field"),
    [
        ({"amount": 0}, "k", "amount"),
        ({"amount": -5}, "k", "amount"),
        ({"reason": "because"}, "k", "reason"),
        ({"amount": 100, "surprise": 1}, "k", "surprise"),
        ({"amount": 100}, None, "Idempotency-Key"),
    ],
)
async def test_bad_refund_requests_are_refused(
    client: httpx.AsyncClient,
    paid_subscription: PaidSubscription,
    admin: dict[str, str],
    db: async_sessionmaker[AsyncSession],
    body: dict[str, Any],
    key: str | None,
    field: str,
) -> None:
    payment = await paid_payment(db, await paid_subscription(amount=3000))
    headers = keyed(admin, key) if key else admin
    response = await client.post(refund_url(payment.id), json=body, headers=headers)
    assert response.status_code == 422, response.text
    assert any(field.lower() in name.lower() for name in response.json()["errors"])
    assert (await payment_row(db, payment.id)).amount_refunded == 0


async def test_only_admins_refund_and_only_known_payments(
    client: httpx.AsyncClient,
    paid_subscription: PaidSubscription,
    admin: dict[str, str],
    db: async_sessionmaker[AsyncSession],
) -> None:
    subscribed = await paid_subscription(amount=3000)
    payment = await paid_payment(db, subscribed)
    own = await client.post(refund_url(payment.id), json={}, headers=keyed(subscribed.user.headers, "mine"))
    assert own.status_code == 403
    anonymous = await client.post(refund_url(payment.id), json={}, headers={"Idempotency-Key": "x"})
    assert anonymous.status_code == 401
    unknown = await client.post(refund_url(uuid.uuid4()), json={}, headers=keyed(admin, "x"))
    assert unknown.status_code == 404 and unknown.json()["type"].endswith("/payment-not-found")
    assert (await payment_row(db, payment.id)).amount_refunded == 0


# -- refunds made elsewhere, webhooks duplicated and reordered ---------------------------------------


async def test_a_dashboard_refund_is_applied_once_from_duplicated_reordered_webhooks(
    client: httpx.AsyncClient,
    paid_subscription: PaidSubscription,
    sdk: stripe.StripeClient,
    webhook_endpoint: WebhookEndpoint,
    emulator: Emulator,
    db: async_sessionmaker[AsyncSession],
    events: EventTap,
) -> None:
    subscribed = await paid_subscription(amount=3000)
    payment = await paid_payment(db, subscribed)
    charge = charge_of(sdk, payment.stripe_invoice_id)
    refunds = []
    for amount in (700, 800):
        response = await emulator.http.post(
            f"/_emulator/charges/{charge.id}/refund", json={"amount": amount, "reason": "duplicate"}
        )
        refunds.append(response.json()["refund"]["id"])
    await settled(emulator, db)
    row = await payment_row(db, payment.id)
    assert (row.amount_refunded, row.status) == (1500, PaymentStatus.PARTIALLY_REFUNDED)

    posted = await replay_reordered(
        client, sdk, webhook_endpoint, {charge.id, *refunds}, ["refund.created", "charge.refunded"]
    )
    assert posted == 12
    await settled(emulator, db)
    row = await payment_row(db, payment.id)
    assert (row.amount_refunded, row.status) == (1500, PaymentStatus.PARTIALLY_REFUNDED)
    assert sorted(r.stripe_refund_id for r in await refunds_of(db, payment.id)) == sorted(refunds)
    announced = await events.all_of("payment.refunded", of_payment(payment.id))
    assert sorted(e["data"]["refund_id"] for e in announced) == sorted(refunds)
    assert {e["data"]["reason"] for e in announced} == {"duplicate"}


async def test_a_refund_heard_of_before_its_invoice_is_paid_records_both_once(
    client: httpx.AsyncClient,
    paid_subscription: PaidSubscription,
    sdk: stripe.StripeClient,
    webhook_endpoint: WebhookEndpoint,
    emulator: Emulator,
    db: async_sessionmaker[AsyncSession],
    events: EventTap,
) -> None:
    """A renewal's invoice.paid is missed, then its charge is refunded in the dashboard: the refund's
    events arrive first and bring the payment with them; the late invoice events change nothing."""
    subscribed = await paid_subscription(amount=3000, interval="day")
    async with webhooks_off(sdk, webhook_endpoint, emulator, db):
        await emulator.advance(86400 + 60)
        renewal = sdk.v1.invoices.list(
            params={"subscription": subscribed.stripe_subscription_id, "limit": 1}
        ).data[0]
        assert renewal.status == "paid" and renewal.id is not None
        charge = charge_of(sdk, renewal.id)
        refund = (await emulator.http.post(f"/_emulator/charges/{charge.id}/refund", json={})).json()[
            "refund"
        ]

    await replay_reordered(
        client, sdk, webhook_endpoint, {charge.id, refund["id"]}, ["refund.created", "charge.refunded"]
    )
    await settled(emulator, db)
    [renewed] = [p for p in await payments_of(db, subscribed.user.id) if p.stripe_invoice_id == renewal.id]
    assert (renewed.amount_paid, renewed.amount_refunded, renewed.status) == (
        3000,
        3000,
        PaymentStatus.REFUNDED,
    )

    await replay_reordered(
        client, sdk, webhook_endpoint, {renewal.id}, ["invoice.paid", "invoice.payment_succeeded"]
    )
    await settled(emulator, db)
    renewed = await payment_row(db, renewed.id)
    assert (renewed.amount_refunded, renewed.status) == (3000, PaymentStatus.REFUNDED)
    assert len(await events.all_of("payment.succeeded", of_payment(renewed.id))) == 1
    assert len(await events.all_of("payment.refunded", of_payment(renewed.id), settle=0)) == 1


# -- disputes ------------------------------------------------------------------------------------------


async def test_a_lost_dispute_marks_the_payment_and_ends_access(
    client: httpx.AsyncClient,
    paid_subscription: PaidSubscription,
    admin: dict[str, str],
    sdk: stripe.StripeClient,
    webhook_endpoint: WebhookEndpoint,
    emulator: Emulator,
    db: async_sessionmaker[AsyncSession],
    events: EventTap,
) -> None:
    subscribed = await paid_subscription(amount=3000)
    payment = await paid_payment(db, subscribed)
    charge = charge_of(sdk, payment.stripe_invoice_id)

    dispute = (
        await emulator.http.post(f"/_emulator/charges/{charge.id}/dispute", json={"reason": "fraudulent"})
    ).json()["dispute"]
    await settled(emulator, db)
    row = await payment_row(db, payment.id)
    assert (row.status, row.dispute_status, row.dispute_reason) == (
        PaymentStatus.DISPUTED,
        DisputeStatus.OPEN,
        "fraudulent",
    )
    opened = await events.wait_for("payment.disputed", of_payment(payment.id))
    assert (opened["data"]["dispute_status"], opened["data"]["amount"]) == ("open", 3000)
    refused = await client.post(refund_url(payment.id), json={}, headers=keyed(admin, "during-dispute"))
    assert refused.status_code == 409 and refused.json()["type"].endswith("/payment-not-refundable")

    closed = await emulator.http.post(f"/_emulator/disputes/{dispute['id']}/close", json={"outcome": "lost"})
    assert closed.status_code == 200
    await settled(emulator, db)
    row = await payment_row(db, payment.id)
    assert (row.status, row.dispute_status) == (PaymentStatus.PAID, DisputeStatus.LOST)
    ended = await wait_for_status(db, subscribed.subscription_id, SubscriptionStatus.CANCELED)
    assert ended.end_reason == EndReason.DISPUTE_LOST
    entitlements = await client.get("/billing/entitlements/me", headers=subscribed.user.headers)
    assert entitlements.json()["features"] == []
    ended_event = await events.wait_for(
        "subscription.ended", lambda e: e["data"]["subscription_id"] == str(subscribed.subscription_id)
    )
    assert ended_event["data"]["reason"] == "dispute_lost"

    await replay_reordered(
        client, sdk, webhook_endpoint, {dispute["id"]}, ["charge.dispute.created", "charge.dispute.closed"]
    )
    await settled(emulator, db)
    row = await payment_row(db, payment.id)
    assert (row.status, row.dispute_status) == (PaymentStatus.PAID, DisputeStatus.LOST)
    announced = await events.all_of("payment.disputed", of_payment(payment.id))
    assert [(e["data"]["dispute_status"], e["data"]["ends_access"]) for e in announced] == [
        ("open", False),
        ("lost", True),
    ]
    mine = (await client.get("/billing/payments/me", headers=subscribed.user.headers)).json()["items"]
    assert [(p["status"], p["dispute_status"]) for p in mine] == [("paid", "lost")]


async def test_a_dispute_closed_before_it_is_heard_opened_stays_won(
    client: httpx.AsyncClient,
    paid_subscription: PaidSubscription,
    sdk: stripe.StripeClient,
    webhook_endpoint: WebhookEndpoint,
    emulator: Emulator,
    db: async_sessionmaker[AsyncSession],
    events: EventTap,
) -> None:
    subscribed = await paid_subscription(amount=3000)
    payment = await paid_payment(db, subscribed)
    charge = charge_of(sdk, payment.stripe_invoice_id)
    async with webhooks_off(sdk, webhook_endpoint, emulator, db):
        dispute = (await emulator.http.post(f"/_emulator/charges/{charge.id}/dispute", json={})).json()[
            "dispute"
        ]
        await emulator.http.post(f"/_emulator/disputes/{dispute['id']}/close", json={"outcome": "won"})

    await replay_reordered(
        client, sdk, webhook_endpoint, {dispute["id"]}, ["charge.dispute.created", "charge.dispute.closed"]
    )
    await settled(emulator, db)
    row = await payment_row(db, payment.id)
    assert (row.status, row.dispute_status) == (PaymentStatus.PAID, DisputeStatus.WON)
    assert (await subscription_row(db, subscribed.subscription_id)).status == SubscriptionStatus.ACTIVE
    announced = await events.all_of("payment.disputed", of_payment(payment.id))
    assert [(e["data"]["dispute_status"], e["data"]["ends_access"]) for e in announced] == [("won", False)]


async def test_a_lost_dispute_keeps_access_when_the_setting_says_so(
    paid_subscription: PaidSubscription,
    sdk: stripe.StripeClient,
    settings: Settings,
    emulator: Emulator,
    db: async_sessionmaker[AsyncSession],
) -> None:
    subscribed = await paid_subscription(amount=3000)
    payment = await paid_payment(db, subscribed)
    charge = charge_of(sdk, payment.stripe_invoice_id)
    lost = DisputeSnapshot(
        id="dp_lost_elsewhere",
        amount=3000,
        currency="usd",
        status="lost",
        reason="fraudulent",
        charge_id=charge.id,
        payment_intent_id=str(charge.payment_intent),
    )
    gateway = stripe_gateway(settings)
    keep = settings.model_copy(update={"lost_dispute_ends_access": False})
    try:
        async with db() as session, session.begin():
            row = await session.get(Payment, payment.id, with_for_update=True)
            assert row is not None
            assert await record_dispute(session, gateway, keep, row, lost) == ["payment.disputed"]
    finally:
        await gateway.aclose()
    row = await payment_row(db, payment.id)
    assert row.dispute_status == DisputeStatus.LOST
    assert (await subscription_row(db, subscribed.subscription_id)).status == SubscriptionStatus.ACTIVE

    async def still_active() -> bool:
        return (await subscription_row(db, subscribed.subscription_id)).status == SubscriptionStatus.ACTIVE

    await eventually(still_active, "the subscription to stay active")


async def test_my_billing_export_holds_subscriptions_payments_refunds_invoices_and_the_card(
    client: httpx.AsyncClient,
    paid_subscription: PaidSubscription,
    admin: dict[str, str],
    sdk: stripe.StripeClient,
    db: async_sessionmaker[AsyncSession],
    new_user: Any,
) -> None:
    subscribed = await paid_subscription(amount=3000)
    payment = await paid_payment(db, subscribed)
    refunded = await client.post(
        refund_url(payment.id), json={"amount": 500}, headers=keyed(admin, "export-1")
    )
    assert refunded.status_code == 200, refunded.text

    response = await client.get("/billing/me/export", headers=subscribed.user.headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["content-disposition"].startswith('attachment; filename="gatehouse-billing-')
    assert response.headers["cache-control"] == "no-store"
    data = response.json()
    assert data["service"] == "billing-service"
    assert data["user_id"] == str(subscribed.user.id)
    assert data["customer"]["email"] == subscribed.user.email
    assert data["customer"]["stripe_customer_id"] == subscribed.stripe_customer_id
    [subscription] = data["subscriptions"]
    assert subscription["id"] == str(subscribed.subscription_id)
    assert subscription["status"] in ("active", "trialing")
    [paid] = data["payments"]
    assert (paid["id"], paid["amount_paid"], paid["amount_refunded"]) == (str(payment.id), 3000, 500)
    [refund] = data["refunds"]
    assert (refund["payment_id"], refund["amount"], refund["status"]) == (str(payment.id), 500, "succeeded")
    [invoice] = data["invoices"]
    assert invoice["id"] == payment.stripe_invoice_id and invoice["status"] == "paid"
    card = sdk.v1.subscriptions.retrieve(
        subscribed.stripe_subscription_id, params={"expand": ["default_payment_method"]}
    ).default_payment_method.card  # type: ignore[union-attr]
    assert data["payment_method"] == {
        "brand": "visa",
        "last4": card.last4,
        "exp_month": card.exp_month,
        "exp_year": card.exp_year,
    }
    assert "pm_" not in response.text  # the card is a summary, not a reference to it

    # Someone billing never heard of gets an empty export, not an error.
    stranger = new_user()
    empty = await client.get("/billing/me/export", headers=stranger.headers)
    assert empty.status_code == 200, empty.text
    body = empty.json()
    assert body["customer"] is None and body["payment_method"] is None
    assert body["subscriptions"] == body["payments"] == body["refunds"] == body["invoices"] == []
    assert (await client.get("/billing/me/export")).status_code == 401


# -- reconciliation -----------------------------------------------------------------------------------


async def test_reconciliation_heals_a_refund_and_a_dispute_whose_webhooks_were_missed(
    paid_subscription: PaidSubscription,
    sdk: stripe.StripeClient,
    webhook_endpoint: WebhookEndpoint,
    emulator: Emulator,
    settings: Settings,
    db: async_sessionmaker[AsyncSession],
    events: EventTap,
) -> None:
    """Made in the dashboard while no webhook reached us: Stripe's Events API still has them."""
    payments = [await paid_payment(db, await paid_subscription(amount=3000)) for _ in range(2)]
    refunded, disputed = (charge_of(sdk, p.stripe_invoice_id) for p in payments)
    async with webhooks_off(sdk, webhook_endpoint, emulator, db):
        refund = (
            await emulator.http.post(f"/_emulator/charges/{refunded.id}/refund", json={"amount": 1200})
        ).json()["refund"]
        await emulator.http.post(f"/_emulator/charges/{disputed.id}/dispute", json={"reason": "fraudulent"})
    assert (await payment_row(db, payments[0].id)).amount_refunded == 0
    assert (await payment_row(db, payments[1].id)).dispute_status is None

    gateway = stripe_gateway(settings)
    try:
        result = await reconcile(db, gateway, settings)
    finally:
        await gateway.aclose()
    assert result.missed >= 3  # refund.created, charge.refunded, charge.dispute.created
    await settled(emulator, db)
    healed = await payment_row(db, payments[0].id)
    assert (healed.amount_refunded, healed.status) == (1200, PaymentStatus.PARTIALLY_REFUNDED)
    assert [r.stripe_refund_id for r in await refunds_of(db, payments[0].id)] == [refund["id"]]
    assert (await payment_row(db, payments[1].id)).dispute_status == DisputeStatus.OPEN
    await events.wait_for("payment.refunded", of_payment(payments[0].id))
    await events.wait_for("payment.disputed", of_payment(payments[1].id))
