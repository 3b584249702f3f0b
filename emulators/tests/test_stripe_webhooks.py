"""Webhooks: signed like Stripe's, delivered in the background, retried, and shuffled on request."""

from __future__ import annotations

import json
import time

import pytest
import stripe
from stripe_support import PAID_INVOICE_EVENTS, WEBHOOK_SECRET, Control, Receiver, make_price, subscribe

from gatehouse_emulators.stripe.http.webhooks import sign

pytest_plugins = ["stripe_fixtures"]

CHECKOUT_EVENTS = [
    "product.created",
    "price.created",
    "customer.created",
    "payment_method.attached",
    "customer.subscription.created",
    *PAID_INVOICE_EVENTS,
    "checkout.session.completed",
]


def test_signatures_follow_stripes_scheme() -> None:
    header = sign('{"id": "evt_1"}', "whsec_x", timestamp=1700000000)
    assert header.startswith("t=1700000000,v1=")
    assert stripe.WebhookSignature.verify_header('{"id": "evt_1"}', header, "whsec_x", tolerance=None)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.WebhookSignature.verify_header('{"id": "evt_2"}', header, "whsec_x", tolerance=None)


def test_a_checkout_flow_delivers_signed_events_in_order(
    client: stripe.StripeClient, emulator: Control, webhook_receiver: Receiver
) -> None:
    sub = subscribe(client, emulator, make_price(client, 3000).id)
    emulator.flush()
    events = webhook_receiver.events()  # construct_event verifies every signature
    assert [e.type for e in events] == CHECKOUT_EVENTS
    completed = events[-1]
    assert completed.object == "event" and completed.id.startswith("evt_")
    assert completed.api_version == stripe.api_version and completed.livemode is False
    assert completed.data.object.subscription == sub.id and completed.data.object.status == "complete"
    created = next(e for e in events if e.type == "customer.subscription.created")
    assert created.data.object.status == "incomplete"  # a snapshot at event time
    activated = next(e for e in events if e.type == "customer.subscription.updated")
    assert activated.data.object.status == "active"
    assert activated.data.previous_attributes["status"] == "incomplete"
    # the events API serves the same events
    assert client.v1.events.retrieve(completed.id).type == "checkout.session.completed"
    assert webhook_receiver.received[-1].headers["content-type"].startswith("application/json")


def test_events_carry_the_request_that_caused_them(
    client: stripe.StripeClient, emulator: Control, webhook_receiver: Receiver
) -> None:
    customer = client.v1.customers.create(
        params={"email": "ada@example.com"}, options={"idempotency_key": "req-42"}
    )
    emulator.flush()
    event = webhook_receiver.events()[0]
    assert event.type == "customer.created" and event.data.object.id == customer.id
    assert event.request.idempotency_key == "req-42"
    assert event.request.id == customer.last_response.request_id
    assert client.v1.events.retrieve(event.id).pending_webhooks == 0  # delivered


def test_a_failing_endpoint_is_retried_with_back_off(
    client: stripe.StripeClient, emulator: Control, webhook_receiver: Receiver
) -> None:
    webhook_receiver.fail_next = 2
    started = time.monotonic()
    customer = client.v1.customers.create(params={"email": "ada@example.com"})
    assert time.monotonic() - started < 0.5  # the API does not wait for delivery
    emulator.flush()
    attempts = emulator.deliveries(event_type="customer.created")
    assert [(a["attempt"], a["status"], a["succeeded"]) for a in attempts] == [
        (1, 500, False),
        (2, 500, False),
        (3, 200, True),
    ]
    assert attempts[2]["at"] - attempts[0]["at"] >= 0.02 + 0.04 - 0.01  # 0.02 s, then 0.04 s
    assert [e.data.object.id for e in webhook_receiver.events()] == [customer.id]


def test_delivery_gives_up_after_the_configured_attempts(
    client: stripe.StripeClient, emulator: Control, webhook_receiver: Receiver
) -> None:
    webhook_receiver.fail_next = 10
    client.v1.customers.create(params={"email": "ada@example.com"})
    emulator.flush()
    attempts = emulator.deliveries()
    assert len(attempts) == 4 and not any(a["succeeded"] for a in attempts) and attempts[-1]["final"]
    assert webhook_receiver.events() == []


def test_chaos_duplicates_and_shuffles_deliveries(
    client: stripe.StripeClient, emulator: Control, webhook_receiver: Receiver
) -> None:
    emulator.chaos(duplicates=3, shuffle=True, seed=7)
    subscribe(client, emulator, make_price(client, 3000).id)
    emulator.flush()
    events = webhook_receiver.events()
    assert len(events) == 3 * len(CHECKOUT_EVENTS)
    ids = [e.id for e in events]
    assert all(ids.count(i) == 3 for i in ids)
    assert [e.type for e in events[: len(CHECKOUT_EVENTS)]] != CHECKOUT_EVENTS
    assert sorted({e.type for e in events}) == sorted(CHECKOUT_EVENTS)
    emulator.chaos()  # back to one in-order delivery
    webhook_receiver.clear()
    client.v1.customers.create(params={"email": "calm@example.com"})
    emulator.flush()
    assert webhook_receiver.types() == ["customer.created"]


def test_registered_endpoints_get_the_events_they_enabled_signed_with_their_secret(
    client: stripe.StripeClient, emulator: Control, webhook_receiver: Receiver
) -> None:
    endpoint = client.v1.webhook_endpoints.create(
        params={
            "url": webhook_receiver.url + "/billing-only",
            "enabled_events": ["invoice.paid", "invoice.payment_failed"],
        }
    )
    assert endpoint.id.startswith("we_") and endpoint.secret.startswith("whsec_")
    assert "secret" not in client.v1.webhook_endpoints.retrieve(endpoint.id).to_dict()
    everything = client.v1.webhook_endpoints.create(
        params={"url": webhook_receiver.url + "/all", "enabled_events": ["*"]}
    )
    subscribe(client, emulator, make_price(client).id)
    emulator.flush()
    billing_only = webhook_receiver.events("/billing-only", secret=endpoint.secret)
    assert [e.type for e in billing_only] == ["invoice.paid"]
    with pytest.raises(stripe.SignatureVerificationError):
        webhook_receiver.events("/billing-only", secret=WEBHOOK_SECRET)
    assert [e.type for e in webhook_receiver.events("/all", secret=everything.secret)] == CHECKOUT_EVENTS

    client.v1.webhook_endpoints.delete(endpoint.id)
    client.v1.webhook_endpoints.update(everything.id, params={"disabled": True})
    assert [e.id for e in client.v1.webhook_endpoints.list().data] == [everything.id]
    webhook_receiver.clear()
    client.v1.customers.create(params={"email": "later@example.com"})
    emulator.flush()
    assert [r.path for r in webhook_receiver.received] == ["/webhook"]


def test_events_api_lists_by_type_and_creation_time(client: stripe.StripeClient, emulator: Control) -> None:
    client.v1.customers.create(params={"email": "early@example.com"})
    emulator.advance(3600)
    cutoff = emulator.now()
    late = client.v1.customers.create(params={"email": "late@example.com"})
    recent = client.v1.events.list(params={"type": "customer.created", "created": {"gte": cutoff}}).data
    assert [e.data.object.id for e in recent] == [late.id]
    assert len(client.v1.events.list(params={"types": ["customer.created", "customer.updated"]}).data) == 2
    emulator.advance(31 * 86400)  # the events API reaches back 30 days
    assert client.v1.events.list().data == []


def test_deliveries_log_is_json_with_the_event_and_url(
    client: stripe.StripeClient, emulator: Control, webhook_receiver: Receiver
) -> None:
    customer = client.v1.customers.create(params={"email": "ada@example.com"})
    emulator.flush()
    (row,) = emulator.deliveries()
    assert row["event_type"] == "customer.created" and row["url"] == webhook_receiver.url + "/webhook"
    payload = json.loads(webhook_receiver.received[0].body)
    assert payload["id"] == row["event_id"] and payload["data"]["object"]["id"] == customer.id
