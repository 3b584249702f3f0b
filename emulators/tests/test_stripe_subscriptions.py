"""Plan changes with proration, invoice previews, cancellation and resumption, card errors."""

from __future__ import annotations

from typing import Any

import pytest
import stripe
from stripe_support import DAY, Control, make_price, subscribe

pytest_plugins = ["stripe_fixtures"]


def switch_price(
    client: stripe.StripeClient,
    sub: stripe.Subscription,
    price_id: str,
    proration_behavior: str,
    **extra: Any,
) -> stripe.Subscription:
    """Move the subscription's one item to another price."""
    params = {
        "items": [{"id": sub["items"].data[0].id, "price": price_id}],
        "proration_behavior": proration_behavior,
        **extra,
    }
    return client.v1.subscriptions.update(sub.id, params=params)  # type: ignore[arg-type]


def test_upgrade_with_always_invoice_charges_the_prorated_difference_at_once(
    client: stripe.StripeClient, emulator: Control
) -> None:
    basic, pro = make_price(client, 3000, name="Basic"), make_price(client, 9000, name="Pro")
    sub = subscribe(client, emulator, basic.id)
    item = sub["items"].data[0]
    emulator.advance(10 * DAY)  # 20 of 30 days remain
    changed = switch_price(
        client,
        sub,
        pro.id,
        "always_invoice",
        proration_date=item.current_period_start + 10 * DAY,
        expand=["latest_invoice"],
    )
    assert changed["items"].data[0].price.id == pro.id and changed["items"].data[0].id == item.id
    # the period is unchanged by a same-interval swap
    assert changed["items"].data[0].current_period_end == item.current_period_end
    invoice = changed.latest_invoice
    assert invoice.billing_reason == "subscription_update"
    amounts = sorted(line.amount for line in invoice.lines.data)
    assert amounts == [-2000, 6000]  # -3000×20/30 unused, +9000×20/30 remaining
    assert all(line.parent.invoice_item_details.proration for line in invoice.lines.data)
    assert (invoice.total, invoice.amount_due, invoice.amount_paid, invoice.status) == (
        4000,
        4000,
        4000,
        "paid",
    )
    assert (
        invoice.parent.subscription_details.subscription_proration_date
        == item.current_period_start + 10 * DAY
    )
    assert changed.status == "active"


def test_create_prorations_defers_the_difference_to_the_renewal_invoice(
    client: stripe.StripeClient, emulator: Control
) -> None:
    basic, pro = make_price(client, 3000, name="Basic"), make_price(client, 9000, name="Pro")
    sub = subscribe(client, emulator, basic.id)
    first_invoice = sub.latest_invoice
    emulator.advance(15 * DAY)
    changed = switch_price(client, sub, pro.id, "create_prorations")
    assert changed.latest_invoice == first_invoice  # nothing invoiced yet
    pending = client.v1.invoice_items.list(params={"customer": str(sub.customer), "pending": True}).data
    assert sorted(p.amount for p in pending) == [-1500, 4500]

    preview = client.v1.invoices.create_preview(params={"subscription": sub.id})
    assert preview.billing_reason == "upcoming" and preview.amount_due == 9000 + 3000

    emulator.advance(15 * DAY)  # renewal
    renewed = client.v1.subscriptions.retrieve(sub.id, params={"expand": ["latest_invoice"]})
    invoice = renewed.latest_invoice
    assert invoice.billing_reason == "subscription_cycle"
    assert sorted(line.amount for line in invoice.lines.data) == [-1500, 4500, 9000]
    assert (invoice.amount_paid, invoice.status) == (12000, "paid")
    assert client.v1.invoice_items.list(params={"customer": str(sub.customer), "pending": True}).data == []


def test_create_preview_shows_the_plan_change_before_it_is_made(
    client: stripe.StripeClient, emulator: Control
) -> None:
    basic, pro = make_price(client, 3000, name="Basic"), make_price(client, 9000, name="Pro")
    sub = subscribe(client, emulator, basic.id)
    item = sub["items"].data[0]
    moment = item.current_period_start + 6 * DAY  # 24 of 30 days remain
    immediate = client.v1.invoices.create_preview(
        params={
            "customer": str(sub.customer),
            "subscription": sub.id,
            "subscription_details": {
                "items": [{"id": item.id, "price": pro.id}],
                "proration_behavior": "always_invoice",
                "proration_date": moment,
            },
        }
    )
    assert immediate.id.startswith("upcoming_in_")
    assert sorted(line.amount for line in immediate.lines.data) == [-2400, 7200]
    assert immediate.amount_due == 4800
    assert immediate.parent.subscription_details.subscription_proration_date == moment
    upcoming = client.v1.invoices.create_preview(
        params={
            "subscription": sub.id,
            "subscription_details": {"items": [{"id": item.id, "price": pro.id}], "proration_date": moment},
        }
    )
    assert sorted(line.amount for line in upcoming.lines.data) == [-2400, 7200, 9000]
    # nothing changed for real
    assert client.v1.subscriptions.retrieve(sub.id)["items"].data[0].price.id == basic.id
    assert client.v1.invoice_items.list(params={"pending": True}).data == []


def test_downgrade_credit_lands_on_the_customer_balance_and_pays_the_next_invoice(
    client: stripe.StripeClient, emulator: Control
) -> None:
    basic, pro = make_price(client, 3000, name="Basic"), make_price(client, 9000, name="Pro")
    sub = subscribe(client, emulator, pro.id)
    emulator.advance(15 * DAY)
    changed = switch_price(client, sub, basic.id, "always_invoice", expand=["latest_invoice"])
    assert changed.latest_invoice.total == -4500 + 1500
    assert (changed.latest_invoice.amount_due, changed.latest_invoice.status) == (0, "paid")
    assert client.v1.customers.retrieve(str(sub.customer)).balance == -3000
    emulator.advance(15 * DAY)
    renewal = client.v1.subscriptions.retrieve(sub.id, params={"expand": ["latest_invoice"]}).latest_invoice
    assert (renewal.total, renewal.starting_balance, renewal.amount_due) == (3000, -3000, 0)
    assert client.v1.customers.retrieve(str(sub.customer)).balance == 0


def test_a_monthly_to_yearly_switch_resets_the_cycle_and_invoices_now(
    client: stripe.StripeClient, emulator: Control
) -> None:
    monthly = make_price(client, 3000, interval="day", count=30)
    yearly = make_price(client, 30000, interval="year", count=1, name="Pro yearly")
    sub = subscribe(client, emulator, monthly.id)
    emulator.advance(10 * DAY)
    changed = switch_price(client, sub, yearly.id, "create_prorations", expand=["latest_invoice"])
    now = emulator.now()
    assert changed["items"].data[0].current_period_start == now
    assert changed.billing_cycle_anchor == now
    assert sorted(line.amount for line in changed.latest_invoice.lines.data) == [-2000, 30000]
    assert changed.latest_invoice.amount_paid == 28000


def test_cancel_at_period_end_then_resume_then_end(client: stripe.StripeClient, emulator: Control) -> None:
    price = make_price(client)
    sub = subscribe(client, emulator, price.id)
    end = sub["items"].data[0].current_period_end
    scheduled = client.v1.subscriptions.update(sub.id, params={"cancel_at_period_end": True})
    assert (scheduled.cancel_at_period_end, scheduled.cancel_at, scheduled.status) == (True, end, "active")
    assert scheduled.canceled_at is not None
    resumed = client.v1.subscriptions.update(sub.id, params={"cancel_at_period_end": False})
    assert (resumed.cancel_at_period_end, resumed.cancel_at, resumed.canceled_at) == (False, None, None)
    client.v1.subscriptions.update(sub.id, params={"cancel_at_period_end": True})
    with pytest.raises(stripe.InvalidRequestError) as none_coming:
        client.v1.invoices.create_preview(params={"subscription": sub.id})
    assert none_coming.value.code == "invoice_upcoming_none"

    emulator.advance(30 * DAY)
    ended = client.v1.subscriptions.retrieve(sub.id)
    assert (ended.status, ended.ended_at) == ("canceled", end)
    assert ended.cancellation_details.reason == "cancellation_requested"
    assert len(client.v1.invoices.list(params={"subscription": sub.id}).data) == 1  # no renewal invoice
    types = [e.type for e in client.v1.events.list(params={"type": "customer.subscription.*"}).data]
    assert types[0] == "customer.subscription.deleted"
    updates = client.v1.events.list(params={"type": "customer.subscription.updated"}).data
    assert updates[-2].data.previous_attributes["cancel_at_period_end"] is False  # the first request


def test_cancel_now_ends_the_subscription_at_once(client: stripe.StripeClient, emulator: Control) -> None:
    sub = subscribe(client, emulator, make_price(client).id)
    canceled = client.v1.subscriptions.cancel(
        sub.id, params={"cancellation_details": {"comment": "too pricey"}}
    )
    assert canceled.status == "canceled" and canceled.ended_at == emulator.now()
    assert canceled.cancellation_details.comment == "too pricey"
    assert client.v1.subscriptions.list().data == []  # canceled ones only when asked
    assert [s.id for s in client.v1.subscriptions.list(params={"status": "canceled"}).data] == [sub.id]
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.subscriptions.update(sub.id, params={"cancel_at_period_end": True})
    assert (
        client.v1.subscriptions.update(sub.id, params={"metadata": {"note": "ok"}}).metadata["note"] == "ok"
    )


def test_subscriptions_list_filters_by_customer_price_and_status(
    client: stripe.StripeClient, emulator: Control
) -> None:
    basic, pro = make_price(client, 1000), make_price(client, 2000)
    a = subscribe(client, emulator, basic.id, email="a@example.com")
    b = subscribe(client, emulator, pro.id, email="b@example.com")
    assert [s.id for s in client.v1.subscriptions.list(params={"price": pro.id}).data] == [b.id]
    assert [s.id for s in client.v1.subscriptions.list(params={"customer": str(a.customer)}).data] == [a.id]
    assert {s.id for s in client.v1.subscriptions.list(params={"status": "active"}).data} == {a.id, b.id}


def test_declined_cards_surface_as_card_errors(client: stripe.StripeClient, emulator: Control) -> None:
    price = make_price(client)
    customer = client.v1.customers.create(params={"email": "broke@example.com"})
    emulator.payment_behavior(customer.id, "declined")
    with pytest.raises(stripe.CardError) as refused:
        client.v1.subscriptions.create(
            params={
                "customer": customer.id,
                "items": [{"price": price.id}],
                "payment_behavior": "error_if_incomplete",
            }
        )
    assert (refused.value.http_status, refused.value.code) == (402, "card_declined")
    assert client.v1.subscriptions.list(params={"status": "all"}).data == []

    sub = client.v1.subscriptions.create(params={"customer": customer.id, "items": [{"price": price.id}]})
    assert sub.status == "incomplete"
    with pytest.raises(stripe.CardError):
        client.v1.invoices.pay(str(sub.latest_invoice))
    emulator.payment_behavior(customer.id, "paid")
    paid = client.v1.invoices.pay(str(sub.latest_invoice))
    assert paid.status == "paid" and paid.attempt_count == 3  # create, declined pay, pay
    assert client.v1.subscriptions.retrieve(sub.id).status == "active"


def test_subscription_items_are_addressable(client: stripe.StripeClient, emulator: Control) -> None:
    basic, pro = make_price(client, 3000), make_price(client, 9000)
    sub = subscribe(client, emulator, basic.id)
    item_id = sub["items"].data[0].id
    item = client.v1.subscription_items.retrieve(item_id, params={"expand": ["price.product"]})
    assert (item.subscription, item.price.id, item.quantity) == (sub.id, basic.id, 1)
    assert item.price.product.object == "product"
    moved = client.v1.subscription_items.update(
        item_id, params={"price": pro.id, "proration_behavior": "none"}
    )
    assert moved.price.id == pro.id
    assert client.v1.invoice_items.list(params={"pending": True}).data == []
    listed = client.v1.subscription_items.list(params={"subscription": sub.id})
    assert [i.id for i in listed.data] == [item_id]


def test_deleting_a_customer_cancels_their_subscriptions(
    client: stripe.StripeClient, emulator: Control
) -> None:
    sub = subscribe(client, emulator, make_price(client).id)
    client.v1.customers.delete(str(sub.customer))
    ended = client.v1.subscriptions.retrieve(sub.id)
    assert ended.status == "canceled"
    types = [e.type for e in client.v1.events.list(params={"limit": 2}).data]
    assert types == ["customer.deleted", "customer.subscription.deleted"]


def test_voiding_the_open_invoice_of_a_past_due_subscription_reactivates_it(
    client: stripe.StripeClient, emulator: Control
) -> None:
    sub = subscribe(client, emulator, make_price(client).id)
    emulator.payment_behavior(str(sub.customer), "declined")
    emulator.advance(30 * DAY)
    (open_invoice,) = client.v1.invoices.list(params={"subscription": sub.id, "status": "open"}).data
    voided = client.v1.invoices.void_invoice(open_invoice.id)
    assert (voided.status, voided.next_payment_attempt) == ("void", None)
    assert client.v1.subscriptions.retrieve(sub.id).status == "active"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.invoices.void_invoice(open_invoice.id)


def test_test_clocks_move_the_shared_emulator_clock(client: stripe.StripeClient, emulator: Control) -> None:
    sub = subscribe(client, emulator, make_price(client, 1000).id)
    start = emulator.now()
    clock = client.v1.test_helpers.test_clocks.create(params={"frozen_time": start, "name": "renewal"})
    assert clock.id.startswith("clock_") and clock.status == "ready"
    advanced = client.v1.test_helpers.test_clocks.advance(clock.id, params={"frozen_time": start + 31 * DAY})
    assert advanced.frozen_time == start + 31 * DAY == emulator.now()
    assert (
        client.v1.invoices.list(params={"subscription": sub.id}).data[0].billing_reason
        == "subscription_cycle"
    )


def test_billing_cycle_anchor_now_credits_unused_time_and_starts_a_new_period(
    client: stripe.StripeClient, emulator: Control
) -> None:
    sub = subscribe(client, emulator, make_price(client, 3000).id)
    emulator.advance(20 * DAY)
    moved = client.v1.subscriptions.update(
        sub.id,
        params={
            "billing_cycle_anchor": "now",
            "proration_behavior": "create_prorations",
            "expand": ["latest_invoice"],
        },
    )
    assert moved["items"].data[0].current_period_start == emulator.now() == moved.billing_cycle_anchor
    assert sorted(line.amount for line in moved.latest_invoice.lines.data) == [-1000, 3000]
    assert moved.latest_invoice.amount_paid == 2000


def test_a_trial_can_be_extended(client: stripe.StripeClient, emulator: Control) -> None:
    sub = subscribe(client, emulator, make_price(client).id, trial_period_days=7)
    later = int(sub.trial_end or 0) + 7 * DAY
    extended = client.v1.subscriptions.update(sub.id, params={"trial_end": later})
    assert (extended.trial_end, extended["items"].data[0].current_period_end) == (later, later)
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.subscriptions.update(sub.id, params={"trial_end": emulator.now() - 1})
    assert refused.value.param == "trial_end"
    emulator.advance(13 * DAY)
    assert client.v1.subscriptions.retrieve(sub.id).status == "trialing"
    emulator.advance(DAY)
    assert client.v1.subscriptions.retrieve(sub.id).status == "active"
