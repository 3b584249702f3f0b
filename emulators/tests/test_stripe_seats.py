"""Per-seat subscriptions: a quantity bought through Checkout, the item's quantity changed later with
`proration_behavior=create_prorations` (credit for seats removed, charge for seats added, both on the
next invoice), and idempotency keys replaying the first answer as Stripe does."""

from __future__ import annotations

import pytest
import stripe
from stripe_support import DAY, Control, make_price

pytest_plugins = ["stripe_fixtures"]


def subscribe_seats(
    client: stripe.StripeClient, emulator: Control, price_id: str, seats: int
) -> stripe.Subscription:
    session = client.v1.checkout.sessions.create(
        params={
            "mode": "subscription",
            "line_items": [{"price": price_id, "quantity": seats}],
            "customer_email": "org@example.com",
            "success_url": "https://app.example.com/billing/success",
            "cancel_url": "https://app.example.com/billing/cancel",
        }
    )
    emulator.complete(session.id, "paid")
    done = client.v1.checkout.sessions.retrieve(session.id)
    assert isinstance(done.subscription, str)
    return client.v1.subscriptions.retrieve(done.subscription, params={"expand": ["latest_invoice"]})


def test_a_subscription_bought_with_a_quantity_bills_each_seat(
    client: stripe.StripeClient, emulator: Control
) -> None:
    price = make_price(client, 1000, name="Team")
    sub = subscribe_seats(client, emulator, price.id, 3)
    item = sub["items"].data[0]
    assert item.quantity == 3 and item.price.recurring.usage_type == "licensed"
    invoice = sub.latest_invoice
    assert isinstance(invoice, stripe.Invoice)
    assert invoice.amount_paid == 3000 and invoice.lines.data[0].quantity == 3


def test_removing_a_seat_credits_the_unused_time_on_the_next_invoice(
    client: stripe.StripeClient, emulator: Control
) -> None:
    price = make_price(client, 1000, name="Team")
    sub = subscribe_seats(client, emulator, price.id, 3)
    item = sub["items"].data[0]
    emulator.advance(10 * DAY)  # 20 of 30 days remain

    updated = client.v1.subscription_items.update(
        item.id,
        params={"quantity": 2, "proration_behavior": "create_prorations"},
        options={"idempotency_key": "org-seats-v2"},
    )
    assert updated.quantity == 2 and updated.id == item.id
    pending = client.v1.invoice_items.list(params={"customer": str(sub.customer), "pending": True}).data
    assert sorted(i.amount for i in pending if i.proration) == [-2000, 1333]  # -3000×20/30, +2000×20/30

    # The same key again: Stripe's first answer, and no second pair of prorations.
    replay = client.v1.subscription_items.update(
        item.id,
        params={"quantity": 2, "proration_behavior": "create_prorations"},
        options={"idempotency_key": "org-seats-v2"},
    )
    assert replay.id == updated.id and replay.quantity == 2
    again = client.v1.invoice_items.list(params={"customer": str(sub.customer), "pending": True}).data
    assert len([i for i in again if i.proration]) == 2
    # The same key with other parameters is refused, as Stripe does.
    with pytest.raises(stripe.IdempotencyError):
        client.v1.subscription_items.update(
            item.id,
            params={"quantity": 5, "proration_behavior": "create_prorations"},
            options={"idempotency_key": "org-seats-v2"},
        )

    emulator.advance(20 * DAY)  # the renewal: two seats, and the prorations of the change
    renewed = client.v1.subscriptions.retrieve(sub.id, params={"expand": ["latest_invoice"]})
    invoice = renewed.latest_invoice
    assert isinstance(invoice, stripe.Invoice)
    assert invoice.billing_reason == "subscription_cycle"
    assert invoice.total == 2000 - 2000 + 1333
    assert renewed["items"].data[0].quantity == 2


def test_a_quantity_update_on_the_subscription_prorates_the_same_way(
    client: stripe.StripeClient, emulator: Control
) -> None:
    price = make_price(client, 1000, name="Team")
    sub = subscribe_seats(client, emulator, price.id, 2)
    emulator.advance(15 * DAY)  # half the period remains
    changed = client.v1.subscriptions.update(
        sub.id,
        params={
            "items": [{"id": sub["items"].data[0].id, "quantity": 4}],
            "proration_behavior": "create_prorations",
        },
        options={"idempotency_key": "org-seats-v3"},
    )
    assert changed["items"].data[0].quantity == 4
    pending = client.v1.invoice_items.list(params={"customer": str(sub.customer), "pending": True}).data
    assert sorted(i.amount for i in pending if i.proration) == [-1000, 2000]
