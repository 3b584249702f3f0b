"""Charges, refunds and disputes through the official SDK: what a paid invoice charged, refunds capped
at what it captured (Stripe's error above it), idempotent refunds, refunds made "in the dashboard"
and disputes opened and closed through the control endpoints, each with Stripe's events."""

from __future__ import annotations

from typing import Any

import pytest
import stripe
from stripe_support import Control, Receiver, make_price, subscribe

pytest_plugins = ["stripe_fixtures"]


def _paid_charge(client: stripe.StripeClient, emulator: Control, amount: int = 3000) -> stripe.Charge:
    sub = subscribe(client, emulator, make_price(client, amount).id)
    assert isinstance(sub.latest_invoice, str)
    [payment] = client.v1.invoice_payments.list(params={"invoice": sub.latest_invoice}).data
    intent = client.v1.payment_intents.retrieve(str(payment.payment.payment_intent))
    assert isinstance(intent.latest_charge, str)
    return client.v1.charges.retrieve(intent.latest_charge)


def _events(receiver: Receiver, emulator: Control, *types: str) -> list[stripe.Event]:
    emulator.flush()
    return [e for e in receiver.events() if e.type in types]


def test_a_paid_invoice_has_a_charge_of_its_amount(client: stripe.StripeClient, emulator: Control) -> None:
    charge = _paid_charge(client, emulator, 3000)
    assert (charge.amount, charge.amount_captured, charge.amount_refunded) == (3000, 3000, 0)
    assert charge.status == "succeeded" and charge.paid and not charge.refunded and not charge.disputed
    assert charge.payment_method_details is not None and charge.payment_method_details.type == "card"
    assert [c.id for c in client.v1.charges.list(params={"customer": str(charge.customer)}).data] == [
        charge.id
    ]


def test_a_partial_then_the_rest_refunds_the_charge_with_its_events(
    client: stripe.StripeClient, emulator: Control, webhook_receiver: Receiver
) -> None:
    charge = _paid_charge(client, emulator, 3000)
    first = client.v1.refunds.create(
        params={
            "payment_intent": str(charge.payment_intent),
            "amount": 1000,
            "reason": "requested_by_customer",
        }
    )
    assert (first.amount, first.status, first.charge, first.reason) == (
        1000,
        "succeeded",
        charge.id,
        "requested_by_customer",
    )
    after_first = client.v1.charges.retrieve(charge.id)
    assert (after_first.amount_refunded, after_first.refunded) == (1000, False)

    rest = client.v1.refunds.create(params={"charge": charge.id})  # no amount: what is left
    assert rest.amount == 2000
    done = client.v1.charges.retrieve(charge.id)
    assert (done.amount_refunded, done.refunded) == (3000, True)

    events = _events(webhook_receiver, emulator, "refund.created", "charge.refunded")
    assert [e.type for e in events] == ["refund.created", "charge.refunded"] * 2
    refunded = [e.data.object for e in events if e.type == "charge.refunded"]
    assert [(c["amount_refunded"], c["refunded"]) for c in refunded] == [(1000, False), (3000, True)]
    listed = client.v1.refunds.list(params={"charge": charge.id}).data
    assert [r.id for r in listed] == [rest.id, first.id]


def test_a_refund_above_what_is_left_is_refused_with_stripes_error(
    client: stripe.StripeClient, emulator: Control
) -> None:
    charge = _paid_charge(client, emulator, 3000)
    client.v1.refunds.create(params={"charge": charge.id, "amount": 2500})
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.refunds.create(params={"charge": charge.id, "amount": 600})
    assert refused.value.code == "amount_too_large"
    assert refused.value.param == "amount"
    assert "Refund amount ($6.00) is greater than unrefunded amount on charge ($5.00)" in str(refused.value)
    client.v1.refunds.create(params={"charge": charge.id})
    with pytest.raises(stripe.InvalidRequestError) as again:
        client.v1.refunds.create(params={"charge": charge.id})
    assert again.value.code == "charge_already_refunded"
    assert client.v1.charges.retrieve(charge.id).amount_refunded == 3000


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({}, "parameter_missing"),
        ({"charge": "ch_missing"}, "resource_missing"),
        ({"amount": 0}, "parameter_invalid_integer"),
        ({"reason": "because"}, None),
    ],
)
def test_bad_refund_requests_are_refused(
    client: stripe.StripeClient, emulator: Control, params: dict[str, Any], code: str | None
) -> None:
    charge = _paid_charge(client, emulator)
    full = {"charge": charge.id, **params} if params and "charge" not in params else params
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.refunds.create(params=full)  # type: ignore[arg-type]
    assert refused.value.code == code
    assert client.v1.charges.retrieve(charge.id).amount_refunded == 0


def test_the_same_idempotency_key_gives_the_same_refund_never_two(
    client: stripe.StripeClient, emulator: Control
) -> None:
    charge = _paid_charge(client, emulator, 3000)
    options: Any = {"idempotency_key": "refund-1"}
    first = client.v1.refunds.create(params={"charge": charge.id, "amount": 1000}, options=options)
    second = client.v1.refunds.create(params={"charge": charge.id, "amount": 1000}, options=options)
    assert second.id == first.id
    assert client.v1.charges.retrieve(charge.id).amount_refunded == 1000
    with pytest.raises(stripe.IdempotencyError):
        client.v1.refunds.create(params={"charge": charge.id, "amount": 500}, options=options)


def test_refund_metadata_update_sends_refund_updated(
    client: stripe.StripeClient, emulator: Control, webhook_receiver: Receiver
) -> None:
    charge = _paid_charge(client, emulator)
    refund = client.v1.refunds.create(params={"charge": charge.id, "amount": 100})
    updated = client.v1.refunds.update(refund.id, params={"metadata": {"ticket": "42"}})
    assert updated.metadata is not None and updated.metadata.to_dict() == {"ticket": "42"}
    [event] = _events(webhook_receiver, emulator, "refund.updated")
    assert event.data.object["id"] == refund.id
    assert client.v1.refunds.retrieve(refund.id).to_dict()["metadata"] == {"ticket": "42"}


def test_a_dashboard_refund_sends_the_same_events_without_an_api_call(
    client: stripe.StripeClient, emulator: Control, webhook_receiver: Receiver
) -> None:
    charge = _paid_charge(client, emulator, 3000)
    answer = emulator.post(f"/_emulator/charges/{charge.id}/refund", amount=700, reason="duplicate")
    assert (answer["refund"]["amount"], answer["refund"]["reason"]) == (700, "duplicate")
    assert client.v1.charges.retrieve(charge.id).amount_refunded == 700
    events = _events(webhook_receiver, emulator, "refund.created", "charge.refunded")
    assert [e.type for e in events] == ["refund.created", "charge.refunded"]
    assert events[0].request is not None and events[0].request.idempotency_key is None
    too_much = emulator.http.post(f"/_emulator/charges/{charge.id}/refund", json={"amount": 5000})
    assert too_much.status_code == 400 and too_much.json()["error"]["code"] == "amount_too_large"


def test_a_dispute_opens_and_closes_with_stripes_events(
    client: stripe.StripeClient, emulator: Control, webhook_receiver: Receiver
) -> None:
    charge = _paid_charge(client, emulator, 3000)
    dispute = emulator.post(f"/_emulator/charges/{charge.id}/dispute", reason="fraudulent")["dispute"]
    assert (dispute["status"], dispute["amount"], dispute["charge"]) == ("needs_response", 3000, charge.id)
    assert dispute["payment_intent"] == charge.payment_intent
    assert client.v1.charges.retrieve(charge.id).disputed is True
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.refunds.create(params={"charge": charge.id})
    assert refused.value.code == "charge_disputed"

    closed = emulator.post(f"/_emulator/disputes/{dispute['id']}/close", outcome="lost")["dispute"]
    assert closed["status"] == "lost"
    assert client.v1.disputes.retrieve(dispute["id"]).status == "lost"
    assert [d.id for d in client.v1.disputes.list(params={"charge": charge.id}).data] == [dispute["id"]]
    events = _events(webhook_receiver, emulator, "charge.dispute.created", "charge.dispute.closed")
    assert [(e.type, e.data.object["status"]) for e in events] == [
        ("charge.dispute.created", "needs_response"),
        ("charge.dispute.closed", "lost"),
    ]
    again = emulator.http.post(f"/_emulator/disputes/{dispute['id']}/close", json={"outcome": "won"})
    assert again.status_code == 400
    second = emulator.http.post(f"/_emulator/charges/{charge.id}/dispute", json={})
    assert second.status_code == 400


def test_a_won_dispute_and_bad_outcomes(client: stripe.StripeClient, emulator: Control) -> None:
    charge = _paid_charge(client, emulator, 3000)
    client.v1.refunds.create(params={"charge": charge.id, "amount": 1000})
    dispute = emulator.post(f"/_emulator/charges/{charge.id}/dispute", reason="product_not_received")[
        "dispute"
    ]
    assert dispute["amount"] == 2000  # what was not refunded
    bad = emulator.http.post(f"/_emulator/disputes/{dispute['id']}/close", json={"outcome": "draw"})
    assert bad.status_code == 400
    won = emulator.post(f"/_emulator/disputes/{dispute['id']}/close", outcome="won")["dispute"]
    assert won["status"] == "won"
    missing = emulator.http.post("/_emulator/charges/ch_missing/dispute", json={})
    assert missing.status_code == 404
