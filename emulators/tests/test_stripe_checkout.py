"""Checkout Sessions: the hosted page, and paid / declined / requires_action completions."""

from __future__ import annotations

import httpx
import pytest
import stripe
from stripe_support import DAY, Control, Receiver, make_price

pytest_plugins = ["stripe_fixtures"]


def _session(client: stripe.StripeClient, price_id: str, **extra: object) -> stripe.checkout.Session:
    params = {
        "mode": "subscription",
        "line_items": [{"price": price_id, "quantity": 1}],
        "customer_email": "ada@example.com",
        "client_reference_id": "user-1",
        "metadata": {"user_id": "user-1"},
        "subscription_data": {"metadata": {"user_id": "user-1", "plan_code": "pro"}},
        "success_url": "https://app.example.com/ok?session={CHECKOUT_SESSION_ID}",
        "cancel_url": "https://app.example.com/cancel",
        **extra,
    }
    return client.v1.checkout.sessions.create(params=params)  # type: ignore[arg-type]


def test_session_url_serves_a_page_with_pay_and_decline(
    client: stripe.StripeClient, emulator: Control
) -> None:
    price = make_price(client, 3000, name="Pro <script>")
    session = _session(client, price.id)
    assert (
        session.id.startswith("cs_test_") and session.status == "open" and session.payment_status == "unpaid"
    )
    assert session.url == f"{emulator.base_url}/checkout/{session.id}"
    assert (session.amount_total, session.mode, session.client_reference_id) == (
        3000,
        "subscription",
        "user-1",
    )
    page = httpx.get(str(session.url))
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert 'value="paid"' in page.text and 'value="declined"' in page.text
    assert "Pro &lt;script&gt;" in page.text and "<script>" not in page.text.split("<body>")[1]


def test_paying_completes_the_session_with_an_active_subscription_and_paid_invoice(
    client: stripe.StripeClient, emulator: Control
) -> None:
    price = make_price(client, 3000)
    session = _session(client, price.id)
    result = emulator.complete(session.id, "paid")
    assert result["outcome"] == "paid"

    done = client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["line_items"]})
    assert (done.status, done.payment_status) == ("complete", "paid")
    assert done.customer_details.email == "ada@example.com"
    assert done.line_items.data[0].price.id == price.id
    sub = client.v1.subscriptions.retrieve(str(done.subscription), params={"expand": ["latest_invoice"]})
    assert sub.status == "active" and sub.customer == done.customer
    assert sub.metadata.to_dict() == {"user_id": "user-1", "plan_code": "pro"}
    item = sub["items"].data[0]
    assert item.id.startswith("si_") and item.price.id == price.id and item.plan.amount == 3000
    assert item.current_period_end - item.current_period_start == 30 * DAY
    invoice = sub.latest_invoice
    assert isinstance(invoice, stripe.Invoice)
    assert (invoice.status, invoice.amount_due, invoice.amount_paid, invoice.currency) == (
        "paid",
        3000,
        3000,
        "usd",
    )
    assert invoice.billing_reason == "subscription_create"
    assert invoice.parent.type == "subscription_details"
    assert invoice.parent.subscription_details.subscription == sub.id
    assert invoice.parent.subscription_details.metadata["plan_code"] == "pro"
    line = invoice.lines.data[0]
    assert (line.period.start, line.period.end) == (item.current_period_start, item.current_period_end)
    assert line.pricing.price_details.price == price.id
    assert done.invoice == invoice.id
    customer = client.v1.customers.retrieve(str(done.customer))
    assert customer.email == "ada@example.com"


def test_the_page_buttons_complete_the_session_and_redirect(client: stripe.StripeClient) -> None:
    price = make_price(client)
    session = _session(client, price.id)
    declined = httpx.post(str(session.url), data={"outcome": "declined"})
    assert declined.status_code == 402 and "declined" in declined.text
    paid = httpx.post(str(session.url), data={"outcome": "paid", "email": "ada@example.com"})
    assert paid.status_code == 303
    assert paid.headers["location"] == f"https://app.example.com/ok?session={session.id}"
    assert client.v1.checkout.sessions.retrieve(session.id).status == "complete"


def test_a_declined_card_leaves_the_session_open_and_creates_nothing(
    client: stripe.StripeClient, emulator: Control
) -> None:
    price = make_price(client)
    session = _session(client, price.id)
    result = emulator.complete(session.id, "declined")
    assert result["outcome"] == "declined" and result["error"]["code"] == "card_declined"
    again = client.v1.checkout.sessions.retrieve(session.id)
    assert (again.status, again.payment_status, again.subscription) == ("open", "unpaid", None)
    assert client.v1.subscriptions.list().data == []
    assert client.v1.customers.list().data == []


def test_requires_action_leaves_an_incomplete_subscription_until_authenticated(
    client: stripe.StripeClient, emulator: Control, webhook_receiver: Receiver
) -> None:
    price = make_price(client)
    session = _session(client, price.id)
    result = emulator.complete(session.id, "requires_action")
    assert result["outcome"] == "requires_action"
    sub = client.v1.subscriptions.retrieve(
        result["subscription"]["id"], params={"expand": ["latest_invoice.payments"]}
    )
    assert sub.status == "incomplete"
    assert sub.latest_invoice.status == "open"
    intent = client.v1.payment_intents.retrieve(sub.latest_invoice.payments.data[0].payment.payment_intent)
    assert intent.status == "requires_action" and intent.next_action.type == "use_stripe_sdk"
    assert client.v1.checkout.sessions.retrieve(session.id).status == "open"
    emulator.flush()
    assert "invoice.payment_action_required" in webhook_receiver.types()
    assert "checkout.session.completed" not in webhook_receiver.types()

    emulator.complete(session.id, "paid")  # authentication passed
    assert client.v1.subscriptions.retrieve(sub.id).status == "active"
    assert client.v1.payment_intents.retrieve(intent.id).status == "succeeded"
    done = client.v1.checkout.sessions.retrieve(session.id)
    assert (done.status, done.subscription) == ("complete", sub.id)


def test_an_unauthenticated_subscription_expires_after_23_hours(
    client: stripe.StripeClient, emulator: Control
) -> None:
    price = make_price(client)
    session = _session(client, price.id)
    sub_id = emulator.complete(session.id, "requires_action")["subscription"]["id"]
    emulator.advance(23 * 3600)
    sub = client.v1.subscriptions.retrieve(sub_id, params={"expand": ["latest_invoice"]})
    assert sub.status == "incomplete_expired" and sub.latest_invoice.status == "void"
    emulator.advance(3600)
    assert client.v1.checkout.sessions.retrieve(session.id).status == "expired"


def test_a_trial_checkout_starts_trialing_with_a_zero_invoice(
    client: stripe.StripeClient, emulator: Control
) -> None:
    price = make_price(client, 3000)
    session = _session(client, price.id, subscription_data={"trial_period_days": 14})
    assert session.amount_total == 0
    emulator.complete(session.id, "paid")
    done = client.v1.checkout.sessions.retrieve(
        session.id, params={"expand": ["subscription.latest_invoice"]}
    )
    assert done.payment_status == "no_payment_required"
    sub = done.subscription
    assert sub.status == "trialing" and sub.trial_end - sub.trial_start == 14 * DAY
    assert sub["items"].data[0].current_period_end == sub.trial_end
    assert (sub.latest_invoice.amount_due, sub.latest_invoice.status) == (0, "paid")


def test_sessions_expire_on_request_and_cannot_be_completed_after(
    client: stripe.StripeClient, emulator: Control
) -> None:
    price = make_price(client)
    session = _session(client, price.id)
    expired = client.v1.checkout.sessions.expire(session.id)
    assert expired.status == "expired"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.checkout.sessions.expire(session.id)
    refused = emulator.http.post(
        f"/_emulator/checkout/sessions/{session.id}/complete", json={"outcome": "paid"}
    )
    assert refused.status_code == 400
    listed = client.v1.checkout.sessions.list(params={"status": "expired"})
    assert [s.id for s in listed.data] == [session.id]


def test_session_validation_follows_stripe(client: stripe.StripeClient) -> None:
    price = make_price(client)
    one_time = client.v1.prices.create(
        params={"currency": "usd", "unit_amount": 100, "product_data": {"name": "X"}}
    )
    customer = client.v1.customers.create(params={"email": "x@example.com"})
    with pytest.raises(stripe.InvalidRequestError):
        _session(client, price.id, customer=customer.id)  # customer and customer_email together
    with pytest.raises(stripe.InvalidRequestError) as caught:
        _session(client, one_time.id)
    assert caught.value.param == "line_items[0][price]"
    with pytest.raises(stripe.InvalidRequestError) as missing:
        _session(client, "price_missing")
    assert missing.value.code == "resource_missing"
