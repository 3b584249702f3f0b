"""Coupons, promotion codes, and the discounts they put on subscriptions, Checkout and invoices."""

from __future__ import annotations

from typing import Any

import pytest
import stripe
from stripe_support import DAY, Control, Receiver, make_price

pytest_plugins = ["stripe_fixtures"]


def coupon(client: stripe.StripeClient, **params: Any) -> stripe.Coupon:
    return client.v1.coupons.create(params={"duration": "forever", "percent_off": 25, **params})  # type: ignore[arg-type]


def promotion_code(client: stripe.StripeClient, coupon_id: str, **params: Any) -> stripe.PromotionCode:
    return client.v1.promotion_codes.create(
        params={"promotion": {"type": "coupon", "coupon": coupon_id}, **params}  # type: ignore[typeddict-item]
    )


def checkout(
    client: stripe.StripeClient, emulator: Control, price_id: str, *, code: str | None = None, **params: Any
) -> tuple[stripe.checkout.Session, dict[str, Any]]:
    session = client.v1.checkout.sessions.create(
        params={
            "mode": "subscription",
            "line_items": [{"price": price_id, "quantity": 1}],
            "customer_email": "ada@example.com",
            "success_url": "https://app.example.com/ok",
            **params,
        }
    )
    extra = {"promotion_code": code} if code else {}
    return session, emulator.post(
        f"/_emulator/checkout/sessions/{session.id}/complete", outcome="paid", **extra
    )


def refused(call: Any) -> stripe.InvalidRequestError:
    with pytest.raises(stripe.InvalidRequestError) as caught:
        call()
    return caught.value


@pytest.mark.parametrize(
    ("params", "param", "message"),
    [
        ({"duration": "once"}, "percent_off", "either amount_off or percent_off"),
        (
            {"duration": "once", "percent_off": 10, "amount_off": 500, "currency": "usd"},
            None,
            "only specify one",
        ),
        ({"duration": "once", "percent_off": 101}, "percent_off", "at most 100"),
        ({"duration": "once", "percent_off": 0}, "percent_off", "greater than 0"),
        ({"duration": "once", "amount_off": 500}, "currency", "pass currency"),
        ({"duration": "repeating", "percent_off": 10}, "duration_in_months", "Missing required param"),
        (
            {"duration": "forever", "percent_off": 10, "duration_in_months": 3},
            "duration_in_months",
            "repeating",
        ),
        ({"duration": "once", "percent_off": 10, "redeem_by": 1}, "redeem_by", "future"),
    ],
)
def test_a_coupon_body_stripe_refuses_is_refused(
    client: stripe.StripeClient, emulator: Control, params: dict[str, Any], param: str | None, message: str
) -> None:
    error = refused(lambda: client.v1.coupons.create(params=params))  # type: ignore[arg-type]
    assert error.http_status == 400
    assert message in str(error.user_message)
    assert error.param == param


def test_coupons_and_promotion_codes_are_created_listed_updated_and_deleted(
    client: stripe.StripeClient, emulator: Control, webhook_receiver: Receiver
) -> None:
    product = client.v1.products.create(params={"name": "Pro"})
    made = coupon(
        client,
        id="LAUNCH",
        name="Launch",
        duration="repeating",
        duration_in_months=3,
        max_redemptions=10,
        applies_to={"products": [product.id]},
    )
    assert (made.id, made.percent_off, made.duration_in_months, made.valid, made.times_redeemed) == (
        "LAUNCH",
        25,
        3,
        True,
        0,
    )
    expanded = client.v1.coupons.retrieve("LAUNCH", params={"expand": ["applies_to"]})
    assert expanded.applies_to.products == [product.id]
    fixed = coupon(client, percent_off=None, amount_off=500, currency="USD", duration="once")
    assert (fixed.amount_off, fixed.currency, fixed.percent_off) == (500, "usd", None)
    assert [c.id for c in client.v1.coupons.list().data] == [fixed.id, "LAUNCH"]

    promo = promotion_code(
        client, "LAUNCH", code="SPRING", max_redemptions=2, restrictions={"first_time_transaction": True}
    )
    assert (promo.code, promo.active, promo.promotion.coupon, promo.restrictions.first_time_transaction) == (
        "SPRING",
        True,
        "LAUNCH",
        True,
    )
    taken = refused(lambda: promotion_code(client, "LAUNCH", code="spring"))
    assert taken.code == "resource_already_exists"
    assert [p.id for p in client.v1.promotion_codes.list(params={"code": "SPRING"}).data] == [promo.id]
    off = client.v1.promotion_codes.update(promo.id, params={"active": False})
    assert off.active is False
    assert client.v1.promotion_codes.list(params={"active": True}).data == []

    renamed = client.v1.coupons.update("LAUNCH", params={"name": "Launch week"})
    assert renamed.name == "Launch week"
    gone = client.v1.coupons.delete("LAUNCH")
    assert (gone.id, gone.deleted) == ("LAUNCH", True)
    assert refused(lambda: client.v1.coupons.retrieve("LAUNCH")).http_status == 404
    emulator.flush()
    types = webhook_receiver.types()
    for expected in (
        "coupon.created",
        "promotion_code.created",
        "promotion_code.updated",
        "coupon.updated",
        "coupon.deleted",
    ):
        assert expected in types


def test_the_same_idempotency_key_makes_one_coupon(client: stripe.StripeClient, emulator: Control) -> None:
    options: Any = {"idempotency_key": "coupon-1"}
    first = client.v1.coupons.create(params={"duration": "once", "percent_off": 10}, options=options)
    again = client.v1.coupons.create(params={"duration": "once", "percent_off": 10}, options=options)
    assert first.id == again.id
    assert len(client.v1.coupons.list().data) == 1


def test_a_subscription_with_a_coupon_pays_the_discounted_invoice_while_the_discount_lasts(
    client: stripe.StripeClient, emulator: Control, webhook_receiver: Receiver
) -> None:
    price = make_price(client, 4000)
    once = coupon(client, duration="once", percent_off=None, amount_off=1500, currency="usd")
    session, done = checkout(client, emulator, price.id, discounts=[{"coupon": once.id}])
    assert (session.amount_subtotal, session.amount_total, session.total_details.amount_discount) == (
        4000,
        2500,
        1500,
    )
    assert session.discounts[0].coupon == once.id
    sub = client.v1.subscriptions.retrieve(
        done["subscription"]["id"], params={"expand": ["discounts", "latest_invoice"]}
    )
    discount = sub.discounts[0]
    assert (discount.source.coupon, discount.subscription, discount.checkout_session, discount.end) == (
        once.id,
        sub.id,
        session.id,
        None,
    )
    invoice = sub.latest_invoice
    assert (invoice.subtotal, invoice.total, invoice.amount_due, invoice.amount_paid) == (
        4000,
        2500,
        2500,
        2500,
    )
    assert invoice.total_discount_amounts[0].amount == 1500
    assert invoice.total_discount_amounts[0].discount == discount.id
    assert invoice.discounts == [discount.id]
    assert invoice.lines.data[0].discount_amounts[0].amount == 1500
    assert client.v1.coupons.retrieve(once.id).times_redeemed == 1

    emulator.advance(30 * DAY)  # the renewal: a once discount has served its invoice
    renewed = client.v1.subscriptions.retrieve(sub.id, params={"expand": ["latest_invoice"]})
    assert renewed.discounts == []
    assert (renewed.latest_invoice.total, renewed.latest_invoice.total_discount_amounts) == (4000, [])
    emulator.flush()
    types = webhook_receiver.types()
    assert types.count("customer.discount.created") == 1
    assert types.count("customer.discount.deleted") == 1


def test_a_forever_percent_discount_applies_to_every_renewal_until_deleted(
    client: stripe.StripeClient, emulator: Control
) -> None:
    customer = client.v1.customers.create(params={"email": "bo@example.com"})
    price = make_price(client, 3000)
    forever = coupon(client, percent_off=50)
    sub = client.v1.subscriptions.create(
        params={
            "customer": customer.id,
            "items": [{"price": price.id}],
            "discounts": [{"coupon": forever.id}],
            "expand": ["latest_invoice"],
        }
    )
    assert sub.latest_invoice.total == 1500
    emulator.advance(30 * DAY)
    assert (
        client.v1.subscriptions.retrieve(sub.id, params={"expand": ["latest_invoice"]}).latest_invoice.total
        == 1500
    )
    removed = client.v1.subscriptions.delete_discount(sub.id)
    assert (removed.deleted, removed.subscription) == (True, sub.id)
    assert client.v1.subscriptions.retrieve(sub.id, params={"expand": ["discounts"]}).discounts == []
    emulator.advance(30 * DAY)
    assert (
        client.v1.subscriptions.retrieve(sub.id, params={"expand": ["latest_invoice"]}).latest_invoice.total
        == 3000
    )


def test_a_coupon_for_another_product_or_currency_is_refused(
    client: stripe.StripeClient, emulator: Control
) -> None:
    customer = client.v1.customers.create(params={"email": "bo@example.com"})
    price = make_price(client, 3000)
    other = client.v1.products.create(params={"name": "Other"})
    narrow = coupon(client, applies_to={"products": [other.id]})
    euros = coupon(client, percent_off=None, amount_off=100, currency="eur")
    for bad in (narrow, euros):
        error = refused(
            lambda bad=bad: client.v1.subscriptions.create(
                params={
                    "customer": customer.id,
                    "items": [{"price": price.id}],
                    "discounts": [{"coupon": bad.id}],
                }
            )
        )
        assert error.param == "discounts[0][coupon]"
    assert client.v1.subscriptions.list(params={"customer": customer.id}).data == []


def test_promotion_codes_refuse_when_expired_used_up_inactive_or_not_a_first_purchase(
    client: stripe.StripeClient, emulator: Control
) -> None:
    price = make_price(client, 3000)
    base = coupon(client, percent_off=10)
    expiring = promotion_code(client, base.id, code="SOON", expires_at=emulator.now() + DAY)
    single = promotion_code(client, base.id, code="ONCE", max_redemptions=1)
    first = promotion_code(client, base.id, code="FIRST", restrictions={"first_time_transaction": True})
    inactive = promotion_code(client, base.id, code="OFF", active=False)

    _, done = checkout(client, emulator, price.id, discounts=[{"promotion_code": single.id}])
    assert done["invoice"]["total"] == 2700
    assert client.v1.promotion_codes.retrieve(single.id).times_redeemed == 1
    paid_customer = done["session"]["customer"]

    emulator.advance(2 * DAY)
    for promo, message in (
        (expiring, "has expired"),
        (single, "maximum number of redemptions"),
        (inactive, "inactive"),
    ):
        error = refused(
            lambda promo=promo: client.v1.checkout.sessions.create(
                params={
                    "mode": "subscription",
                    "line_items": [{"price": price.id, "quantity": 1}],
                    "discounts": [{"promotion_code": promo.id}],
                    "success_url": "https://app.example.com/ok",
                }
            )
        )
        assert message in str(error.user_message)
    error = refused(
        lambda: client.v1.subscriptions.create(
            params={
                "customer": paid_customer,
                "items": [{"price": price.id}],
                "discounts": [{"promotion_code": first.id}],
            }
        )
    )
    assert "never made a payment" in str(error.user_message)


def test_checkout_takes_a_typed_promotion_code_only_when_it_allows_them(
    client: stripe.StripeClient, emulator: Control
) -> None:
    price = make_price(client, 2000)
    promotion_code(client, coupon(client, percent_off=25).id, code="WELCOME")
    session, done = checkout(client, emulator, price.id, code="welcome", allow_promotion_codes=True)
    assert session.allow_promotion_codes is True
    assert done["invoice"]["total"] == 1500
    completed = client.v1.checkout.sessions.retrieve(session.id)
    assert (completed.amount_total, completed.total_details.amount_discount) == (1500, 500)

    plain = client.v1.checkout.sessions.create(
        params={
            "mode": "subscription",
            "line_items": [{"price": price.id, "quantity": 1}],
            "success_url": "https://a.example/ok",
        }
    )
    response = emulator.http.post(
        f"/_emulator/checkout/sessions/{plain.id}/complete",
        json={"outcome": "paid", "promotion_code": "WELCOME"},
    )
    assert response.status_code == 400 and "does not take promotion codes" in response.text
    unknown = client.v1.checkout.sessions.create(
        params={
            "mode": "subscription",
            "line_items": [{"price": price.id, "quantity": 1}],
            "success_url": "https://a.example/ok",
            "allow_promotion_codes": True,
        }
    )
    response = emulator.http.post(
        f"/_emulator/checkout/sessions/{unknown.id}/complete",
        json={"outcome": "paid", "promotion_code": "NOPE"},
    )
    assert response.status_code == 400 and "is invalid" in response.text
    both = refused(
        lambda: client.v1.checkout.sessions.create(
            params={
                "mode": "subscription",
                "line_items": [{"price": price.id, "quantity": 1}],
                "success_url": "https://a.example/ok",
                "allow_promotion_codes": True,
                "discounts": [{"coupon": "x"}],
            }
        )
    )
    assert "allow_promotion_codes, discounts" in str(both.user_message)


def test_replacing_a_subscriptions_discounts_announces_the_removal_and_the_new_one(
    client: stripe.StripeClient, emulator: Control, webhook_receiver: Receiver
) -> None:
    customer = client.v1.customers.create(params={"email": "bo@example.com"})
    price = make_price(client, 3000)
    first, second = coupon(client, percent_off=10), coupon(client, percent_off=20)
    sub = client.v1.subscriptions.create(
        params={"customer": customer.id, "items": [{"price": price.id}], "discounts": [{"coupon": first.id}]}
    )
    emulator.flush()
    webhook_receiver.clear()
    updated = client.v1.subscriptions.update(
        sub.id, params={"discounts": [{"coupon": second.id}], "expand": ["discounts"]}
    )
    assert updated.discounts[0].source.coupon == second.id
    emulator.flush()
    events = webhook_receiver.events()
    assert [e.type for e in events if e.type.startswith("customer.discount.")] == [
        "customer.discount.deleted",
        "customer.discount.created",
    ]
    change = next(e for e in events if e.type == "customer.subscription.updated")
    assert change.data.previous_attributes["discounts"] == [sub.discounts[0]]
