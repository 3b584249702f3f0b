"""The emulator keeps Stripe's shapes for the pinned API version: the schema check itself (what it
catches and how it reports it), and the differences it found, fixed. Every other test in the suites
that serve the emulator is checked too (gatehouse_emulators.stripe.pytest_plugin)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import stripe
from stripe_support import Control, Receiver, make_price, subscribe

from gatehouse_emulators.stripe import PINNED_API_VERSION
from gatehouse_emulators.stripe.wire.conformance import schema_set

pytest_plugins = ["stripe_fixtures", "pytester"]


def _served(client: stripe.StripeClient, emulator: Control) -> dict[str, Any]:
    """A subscription as the emulator serves it, with its latest invoice expanded."""
    sub = subscribe(client, emulator, make_price(client, 3000).id)
    response = emulator.http.get(
        f"/v1/subscriptions/{sub.id}",
        params={"expand[]": "latest_invoice"},
        headers={"Authorization": "Bearer sk_test_conformance"},
    )
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def test_the_schemas_are_the_pinned_versions() -> None:
    schemas = schema_set()
    assert schemas.api_version == PINNED_API_VERSION
    assert schemas.source.startswith("stripe-node 23.1.0")


def test_what_the_emulator_serves_passes_and_each_kind_of_mistake_is_named(
    client: stripe.StripeClient, emulator: Control
) -> None:
    body = _served(client, emulator)
    assert schema_set().violations(body, "GET /v1/subscriptions/x") == []

    broken = copy.deepcopy(body)
    broken["surprise"] = 1  # a field Stripe does not send
    del broken["managed_payments"]  # a field Stripe always sends
    broken["items"]["data"][0]["billed_until"] = None  # null where Stripe leaves the field out
    broken["latest_invoice"]["status"] = "finished"  # not one of the enum's values
    found = {(v.object_type, v.path, v.message) for v in schema_set().violations(broken, "GET x")}
    assert found == {
        ("subscription", "", "unexpected field(s) surprise (Stripe does not send them)"),
        ("subscription", "", "'managed_payments' is missing (Stripe always sends it)"),
        ("subscription", "items.data[0].billed_until", "null is not of type number"),
        (
            "subscription",
            "latest_invoice.status",
            "\"finished\" is not one of ['paid', 'draft', 'open', 'uncollectible', 'void'] or null",
        ),
    }


def test_lists_and_event_payloads_are_checked_object_by_object(
    client: stripe.StripeClient, emulator: Control
) -> None:
    sub = _served(client, emulator)
    sub["items"]["data"][0]["quantity"] = "one"
    event = {
        "id": "evt_1",
        "object": "event",
        "api_version": PINNED_API_VERSION,
        "created": 1,
        "data": {"object": sub, "previous_attributes": {"anything": "goes"}},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": "customer.subscription.updated",
    }
    listing = {"object": "list", "data": [event], "has_more": False, "url": "/v1/events"}
    [violation] = schema_set().violations(listing, "GET /v1/events")
    assert (violation.object_type, violation.path) == (
        "subscription",
        "data[0].data.object.items.data[0].quantity",
    )
    assert violation.line().endswith("[GET /v1/events]")


def test_the_control_endpoint_lists_what_the_check_found(
    client: stripe.StripeClient, emulator: Control
) -> None:
    make_price(client)
    report = emulator.http.get("/_emulator/conformance").json()
    assert report["api_version"] == PINNED_API_VERSION
    assert report["checked"] >= 1 and report["violations"] == []
    assert emulator.http.delete("/_emulator/conformance").json() == {"cleared": True}
    assert emulator.http.get("/_emulator/conformance").json()["checked"] == 0


def test_a_failed_payment_carries_the_card_object_in_last_payment_error(
    client: stripe.StripeClient, emulator: Control, webhook_receiver: Receiver
) -> None:
    sub = subscribe(client, emulator, make_price(client, 3000).id)
    emulator.payment_behavior(str(sub.customer), "declined")
    emulator.advance(30 * 86400)
    emulator.flush()
    failed = next(e for e in webhook_receiver.events() if e.type == "payment_intent.payment_failed")
    card = failed.data.object.last_payment_error.payment_method
    assert card.object == "payment_method" and card.card.last4 == "4242"
    assert card.id == sub.default_payment_method or card.customer == sub.customer


def test_checkout_speaks_the_pinned_version(client: stripe.StripeClient) -> None:
    price = make_price(client)
    base = {
        "mode": "subscription",
        "line_items": [{"price": price.id, "quantity": 1}],
        "success_url": "https://app.example.com/ok",
    }
    session = client.v1.checkout.sessions.create(params=base)  # type: ignore[arg-type]
    assert session.ui_mode == "hosted_page" and session.payment_method_types == ["card"]
    assert session.allowed_payment_method_types is None
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.checkout.sessions.create(params={**base, "payment_method_types": ["card"]})  # type: ignore[typeddict-unknown-key]
    assert refused.value.param == "payment_method_types"
    assert "Received unknown parameter: payment_method_types" in str(refused.value.user_message)
    with pytest.raises(stripe.InvalidRequestError) as old_mode:
        client.v1.checkout.sessions.create(params={**base, "ui_mode": "hosted"})
    assert old_mode.value.param == "ui_mode"
    cards = client.v1.checkout.sessions.create(
        params={**base, "ui_mode": "hosted_page", "allowed_payment_method_types": ["card"]}  # type: ignore[typeddict-item]
    )
    assert cards.allowed_payment_method_types == ["card"]


def test_fields_stripe_leaves_out_are_absent_not_null(client: stripe.StripeClient, emulator: Control) -> None:
    body = _served(client, emulator)
    item = body["items"]["data"][0]
    invoice = body["latest_invoice"]
    assert "billed_until" not in item and item["current_trial"] is None
    assert "status_details" not in invoice and "threshold_reason" not in invoice
    assert "subscription_proration_date" not in invoice["parent"]["subscription_details"]
    assert "total_count" not in body["items"] and "total_count" not in invoice["lines"]


def test_the_pytest_plugin_fails_the_test_during_which_a_body_broke_the_schemas(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_inner="""
        from gatehouse_emulators.stripe.wire.conformance import Conformance

        def test_sends_a_bad_customer():
            bad = {"id": "cus_1", "object": "customer", "livemode": "no"}
            Conformance().check(bad, "GET /v1/customers/cus_1")

        def test_sends_nothing():
            pass
        """
    )
    result = pytester.runpytest_subprocess("-p", "gatehouse_emulators.stripe.pytest_plugin")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_sends_a_bad_customer*",
            '*customer at livemode: "no" is not of type boolean  [[]GET /v1/customers/cus_1[]]*',
            "*Stripe schema conformance*",
        ]
    )
