"""Time passing: renewals, failed renewals and dunning, trials ending."""

from __future__ import annotations

import httpx
import stripe
from stripe_support import DAY, PAID_INVOICE_EVENTS, Control, Receiver, make_price, sdk_client, subscribe

from gatehouse_emulators.stripe import StripeEmulatorConfig, create_app
from gatehouse_platform.testing import serve_in_thread

pytest_plugins = ["stripe_fixtures"]


def test_the_clock_moves_only_when_advanced(emulator: Control) -> None:
    start = emulator.now()
    moved = emulator.advance(3600)
    assert moved["now"] == start + 3600 == emulator.now()
    assert emulator.http.post("/_emulator/clock/advance", json={"seconds": -5}).status_code == 400


def test_a_renewal_extends_the_period_and_pays_a_cycle_invoice(
    client: stripe.StripeClient, emulator: Control, webhook_receiver: Receiver
) -> None:
    sub = subscribe(client, emulator, make_price(client, 3000).id)
    first = sub["items"].data[0]
    advanced = emulator.advance(30 * DAY)
    assert advanced["processed"] == [
        {"at": first.current_period_end - 7 * DAY, "kind": "invoice_upcoming", "object": sub.id},
        {"at": first.current_period_end, "kind": "period_end", "object": sub.id},
    ]
    renewed = client.v1.subscriptions.retrieve(sub.id, params={"expand": ["latest_invoice"]})
    item = renewed["items"].data[0]
    assert (item.current_period_start, item.current_period_end) == (
        first.current_period_end,
        first.current_period_end + 30 * DAY,
    )
    invoice = renewed.latest_invoice
    assert (invoice.billing_reason, invoice.status, invoice.amount_paid) == (
        "subscription_cycle",
        "paid",
        3000,
    )
    # the invoice's own period is the one that ended; the line carries the new service period
    assert (invoice.period_start, invoice.period_end) == (
        first.current_period_start,
        first.current_period_end,
    )
    assert invoice.lines.data[0].period.end == item.current_period_end
    assert renewed.status == "active"
    emulator.flush()
    assert webhook_receiver.types()[-7:] == PAID_INVOICE_EVENTS
    update = webhook_receiver.events()[-1]
    assert update.data.previous_attributes["latest_invoice"] == sub.latest_invoice
    assert update.data.object["items"].data[0].current_period_end == item.current_period_end


def test_several_periods_in_one_advance_renew_in_order(
    client: stripe.StripeClient, emulator: Control
) -> None:
    sub = subscribe(client, emulator, make_price(client, 1000).id)
    result = emulator.advance(95 * DAY)
    assert [p["kind"] for p in result["processed"]] == ["invoice_upcoming", "period_end"] * 3
    invoices = client.v1.invoices.list(params={"subscription": sub.id}).data
    assert [i.billing_reason for i in invoices] == ["subscription_cycle"] * 3 + ["subscription_create"]
    assert [i.created for i in invoices] == sorted((i.created for i in invoices), reverse=True)


def test_calendar_months_renew_on_the_anchor_day(client: stripe.StripeClient, emulator: Control) -> None:
    sub = subscribe(client, emulator, make_price(client, 1000, interval="month", count=1).id)
    first_end = sub["items"].data[0].current_period_end
    emulator.advance(first_end - emulator.now())
    item = client.v1.subscriptions.retrieve(sub.id)["items"].data[0]
    assert item.current_period_start == first_end
    assert 28 * DAY <= item.current_period_end - first_end <= 31 * DAY


def test_invoice_upcoming_previews_the_renewal_a_week_ahead(
    client: stripe.StripeClient, emulator: Control, webhook_receiver: Receiver
) -> None:
    sub = subscribe(client, emulator, make_price(client, 3000).id)
    emulator.advance(23 * DAY)
    emulator.flush()
    upcoming = webhook_receiver.events()[-1]
    assert (
        upcoming.type == "invoice.upcoming"
        and upcoming.created == sub["items"].data[0].current_period_end - 7 * DAY
    )
    invoice = upcoming.data.object
    assert "id" not in invoice and invoice.amount_due == 3000 and invoice.billing_reason == "upcoming"
    assert invoice.lines.data[0].period.start == sub["items"].data[0].current_period_end
    client.v1.subscriptions.update(sub.id, params={"cancel_at_period_end": True})
    emulator.advance(30 * DAY)
    assert [e.type for e in client.v1.events.list(params={"type": "invoice.upcoming"}).data] == [
        "invoice.upcoming"
    ]


def test_a_declined_renewal_goes_past_due_retries_and_finally_cancels(
    client: stripe.StripeClient, emulator: Control, webhook_receiver: Receiver
) -> None:
    sub = subscribe(client, emulator, make_price(client, 3000).id)
    emulator.payment_behavior(str(sub.customer), "declined")
    renewal_at = sub["items"].data[0].current_period_end
    emulator.advance(30 * DAY)
    late = client.v1.subscriptions.retrieve(sub.id, params={"expand": ["latest_invoice"]})
    invoice = late.latest_invoice
    assert late.status == "past_due"
    assert (invoice.status, invoice.attempt_count, invoice.next_payment_attempt) == (
        "open",
        1,
        renewal_at + 3 * DAY,
    )

    emulator.advance(3 * DAY)
    retried = client.v1.invoices.retrieve(invoice.id)
    assert (retried.attempt_count, retried.next_payment_attempt) == (2, renewal_at + 8 * DAY)
    emulator.advance(5 * DAY)
    assert client.v1.invoices.retrieve(invoice.id).next_payment_attempt == renewal_at + 15 * DAY
    emulator.advance(7 * DAY)  # the third and last retry fails

    ended = client.v1.subscriptions.retrieve(sub.id)
    assert (ended.status, ended.ended_at) == ("canceled", renewal_at + 15 * DAY)
    assert ended.cancellation_details.reason == "payment_failed"
    final = client.v1.invoices.retrieve(invoice.id)
    assert (final.status, final.attempt_count, final.next_payment_attempt) == ("open", 4, None)
    failures = client.v1.events.list(params={"type": "invoice.payment_failed"}).data
    assert [e.data.object.attempt_count for e in reversed(failures)] == [1, 2, 3, 4]
    emulator.flush()
    types = webhook_receiver.types()
    assert types.count("invoice.payment_failed") == 4 and types.count("payment_intent.payment_failed") == 4
    assert types[-1] == "customer.subscription.deleted"
    past_due = [
        e
        for e in webhook_receiver.events()
        if e.type == "customer.subscription.updated" and e.data.object.status == "past_due"
    ]
    assert past_due and past_due[0].data.previous_attributes["status"] == "active"


def test_a_retry_after_the_card_is_fixed_reactivates(client: stripe.StripeClient, emulator: Control) -> None:
    sub = subscribe(client, emulator, make_price(client, 3000).id)
    emulator.payment_behavior(str(sub.customer), "declined")
    emulator.advance(30 * DAY)
    assert client.v1.subscriptions.retrieve(sub.id).status == "past_due"
    emulator.payment_behavior(str(sub.customer), "paid")
    emulator.advance(3 * DAY)
    recovered = client.v1.subscriptions.retrieve(sub.id, params={"expand": ["latest_invoice"]})
    assert recovered.status == "active"
    assert (recovered.latest_invoice.status, recovered.latest_invoice.attempt_count) == ("paid", 2)


def test_a_trial_warns_three_days_ahead_then_bills(
    client: stripe.StripeClient, emulator: Control, webhook_receiver: Receiver
) -> None:
    sub = subscribe(client, emulator, make_price(client, 3000).id, trial_period_days=7)
    assert sub.status == "trialing"
    result = emulator.advance(4 * DAY)
    assert [p["kind"] for p in result["processed"]] == ["trial_will_end"]
    assert client.v1.subscriptions.retrieve(sub.id).status == "trialing"
    emulator.advance(3 * DAY)
    active = client.v1.subscriptions.retrieve(sub.id, params={"expand": ["latest_invoice"]})
    assert active.status == "active"
    item = active["items"].data[0]
    assert (item.current_period_start, item.current_period_end) == (sub.trial_end, sub.trial_end + 30 * DAY)
    assert (active.latest_invoice.amount_paid, active.latest_invoice.billing_reason) == (
        3000,
        "subscription_cycle",
    )
    emulator.flush()
    events = webhook_receiver.events()
    warning = next(e for e in events if e.type == "customer.subscription.trial_will_end")
    assert warning.created == sub.trial_end - 3 * DAY
    update = [e for e in events if e.type == "customer.subscription.updated"][-1]
    assert update.data.previous_attributes["status"] == "trialing"


def test_dunning_can_end_in_unpaid_instead(webhook_receiver: Receiver) -> None:
    config = StripeEmulatorConfig(
        webhook_url=None,
        clock="frozen",
        dunning_final_action="unpaid",
        dunning_retry_days=(1,),
        check_schemas=True,
    )
    with serve_in_thread(create_app(config)) as url, sdk_client(url) as client:
        control = Control(url)
        sub = subscribe(client, control, make_price(client, 1000).id)
        control.payment_behavior(str(sub.customer), "declined")
        control.advance(31 * DAY)
        assert client.v1.subscriptions.retrieve(sub.id).status == "unpaid"
        assert httpx.get(f"{url}/healthz").json() == {"status": "ok"}
        control.http.close()


def test_trial_end_now_bills_at_once(client: stripe.StripeClient, emulator: Control) -> None:
    sub = subscribe(client, emulator, make_price(client, 3000).id, trial_period_days=14)
    emulator.advance(DAY)
    ended = client.v1.subscriptions.update(sub.id, params={"trial_end": "now", "expand": ["latest_invoice"]})
    now = emulator.now()
    assert (ended.status, ended.trial_end) == ("active", now)
    assert ended["items"].data[0].current_period_start == now
    assert (ended.latest_invoice.amount_paid, ended.latest_invoice.billing_reason) == (
        3000,
        "subscription_cycle",
    )


def test_cancel_at_ends_the_subscription_mid_period(client: stripe.StripeClient, emulator: Control) -> None:
    sub = subscribe(client, emulator, make_price(client).id)
    when = emulator.now() + 10 * DAY
    scheduled = client.v1.subscriptions.update(sub.id, params={"cancel_at": when})
    assert (scheduled.cancel_at, scheduled.cancel_at_period_end) == (when, False)
    emulator.advance(10 * DAY)
    ended = client.v1.subscriptions.retrieve(sub.id)
    assert (ended.status, ended.ended_at) == ("canceled", when)
