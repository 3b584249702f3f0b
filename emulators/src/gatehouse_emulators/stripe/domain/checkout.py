"""Checkout Sessions in `mode=subscription`: create, complete (paid / declined / requires_action), expire.

Completing a session the way a customer would on Stripe's page:
- paid: a new Customer (unless the session names one), a card PaymentMethod, the subscription
  (`active`, or `trialing` with a $0 first invoice) and its paid first invoice; the session becomes
  `complete` with `payment_status` `paid` (`no_payment_required` when nothing was charged), then
  `checkout.session.completed`;
- declined: nothing is created and the session stays `open` (Stripe's page shows the decline);
- requires_action: the customer and an `incomplete` subscription whose first invoice is `open`
  with its PaymentIntent in `requires_action`; the session stays `open` until completed again with
  `paid` (authentication passed) — or expires with it."""

from __future__ import annotations

from typing import Any

from gatehouse_emulators.stripe.domain import billing, collection, customers, discounts
from gatehouse_emulators.stripe.domain.payments import DECLINE
from gatehouse_emulators.stripe.domain.state import PAYMENT_OUTCOMES, Emulator
from gatehouse_emulators.stripe.domain.store import Obj, new_id
from gatehouse_emulators.stripe.domain.subscriptions import (
    ItemSpec,
    check_compatible,
    product_name,
    publish,
    recurring_price,
    snapshot,
)
from gatehouse_emulators.stripe.wire.errors import invalid, missing_param
from gatehouse_emulators.stripe.wire.forms import Params, read_metadata_update

# No `payment_method_types`: the pinned version refuses it (`allowed_payment_method_types` instead).
_CREATE = (
    "allow_promotion_codes",
    "allowed_payment_method_types",
    "automatic_tax",
    "billing_address_collection",
    "cancel_url",
    "client_reference_id",
    "consent_collection",
    "currency",
    "custom_text",
    "customer",
    "customer_email",
    "customer_update",
    "discounts",
    "expand",
    "expires_at",
    "line_items",
    "locale",
    "metadata",
    "mode",
    "payment_method_collection",
    "phone_number_collection",
    "saved_payment_method_options",
    "subscription_data",
    "success_url",
    "tax_id_collection",
    "ui_mode",
)
_SUBSCRIPTION_DATA = (
    "billing_cycle_anchor",
    "default_tax_rates",
    "description",
    "invoice_settings",
    "metadata",
    "proration_behavior",
    "trial_end",
    "trial_period_days",
    "trial_settings",
)
DEFAULT_EMAIL = "jenny.rosen@example.com"


def create_session(emu: Emulator, params: Params) -> Obj:
    params.allow(*_CREATE)
    mode = params.enum("mode", ("payment", "setup", "subscription"), required=True)
    if mode != "subscription":
        raise invalid("The emulator supports Checkout Sessions with mode=subscription only.", param="mode")
    ui_mode = params.enum("ui_mode", ("elements", "embedded_page", "form", "hosted_page"))
    if ui_mode not in (None, "hosted_page"):
        raise invalid(
            "The emulator serves the hosted Checkout page only (ui_mode=hosted_page).", param="ui_mode"
        )
    allowed_types = None
    if "allowed_payment_method_types" in params:
        allowed_types = params.strings("allowed_payment_method_types")
        if set(allowed_types) != {"card"}:
            raise invalid(
                "The emulator takes cards only (allowed_payment_method_types=[card]).",
                param="allowed_payment_method_types",
            )
    customer_id, email = params.text("customer"), params.text("customer_email")
    if customer_id and email:
        raise invalid("You may only specify one of these parameters: customer, customer_email.")
    customer = emu.store.require(customer_id, "customer", "customer", "customer") if customer_id else None
    line_items = params.hashes("line_items")
    if not line_items:
        raise missing_param("line_items")
    items = []
    for item in line_items:
        item.allow("price", "quantity", "adjustable_quantity", "dynamic_tax_rates", "tax_rates")
        if "price" not in item:
            raise missing_param(item.name("price"))
        price = recurring_price(emu, item.text("price"), item.name("price"))
        items.append((price, item.integer("quantity", minimum=1) or 1))
    check_compatible([p for p, _ in items], "line_items")
    allow_codes = params.flag("allow_promotion_codes")
    if allow_codes and "discounts" in params:
        raise invalid("You may only specify one of these parameters: allow_promotion_codes, discounts.")
    redemptions = discounts.read_discounts(
        emu, params, "discounts", customer, items[0][0]["currency"], [p for p, _ in items]
    )
    data = params.hash("subscription_data") or Params({}, "subscription_data")
    data.allow(*_SUBSCRIPTION_DATA)
    trial_days = data.integer("trial_period_days", minimum=1)
    trial_end = data.integer("trial_end")
    if trial_days and trial_end:
        raise invalid("You may only specify one of these parameters: trial_end, trial_period_days.")
    now = emu.now()
    expires_at = params.integer("expires_at") or now + emu.config.checkout_session_ttl
    if not now + 1800 <= expires_at <= now + 24 * 3600:
        raise invalid("expires_at must be between 30 minutes and 24 hours from now.", param="expires_at")
    session_id = new_id("cs_test_", 58)
    currency = items[0][0]["currency"]
    lines = [
        {
            "id": new_id("li_"),
            "object": "item",
            "amount_discount": 0,
            "amount_subtotal": price["unit_amount"] * qty,
            "amount_tax": 0,
            "amount_total": price["unit_amount"] * qty,
            "currency": currency,
            "adjustable_quantity": None,
            "description": product_name(emu, price),
            "metadata": {},
            "price": price["id"],
            "quantity": qty,
        }
        for price, qty in items
    ]
    trial = bool(trial_days or trial_end)
    subtotal = 0 if trial else sum(line["amount_total"] for line in lines)
    session: Obj = {
        "id": session_id,
        "object": "checkout.session",
        "adaptive_pricing": None,
        "after_expiration": None,
        "allow_promotion_codes": allow_codes,
        "allowed_payment_method_types": allowed_types,
        "amount_subtotal": subtotal,
        "amount_total": subtotal,
        "automatic_tax": {"enabled": False, "liability": None, "provider": None, "status": None},
        "billing_address_collection": params.text("billing_address_collection"),
        "cancel_url": params.text("cancel_url"),
        "client_reference_id": params.text("client_reference_id"),
        "client_secret": None,
        "collected_information": None,
        "consent": None,
        "consent_collection": None,
        "created": now,
        "currency": currency,
        "currency_conversion": None,
        "custom_fields": [],
        "custom_text": {
            "after_submit": None,
            "shipping_address": None,
            "submit": None,
            "terms_of_service_acceptance": None,
        },
        "customer": customer["id"] if customer else None,
        "customer_account": None,
        "customer_creation": None if customer else "always",
        "customer_details": _details(customer, customer["email"])
        if customer and customer.get("email")
        else None,
        "customer_email": email,
        "discounts": [
            {"coupon": r.coupon["id"], "promotion_code": r.promotion_code["id"] if r.promotion_code else None}
            for r in redemptions
        ],
        "expires_at": expires_at,
        "integration_identifier": None,
        "invoice": None,
        "invoice_creation": None,
        "livemode": False,
        "locale": params.text("locale"),
        "managed_payments": None,
        "metadata": read_metadata_update(params, {}),
        "mode": "subscription",
        "origin_context": None,
        "payment_intent": None,
        "payment_link": None,
        "payment_method_collection": params.text("payment_method_collection") or "always",
        "payment_method_configuration_details": None,
        "payment_method_options": {"card": {"request_three_d_secure": "automatic"}},
        "payment_method_types": ["card"],
        "payment_status": "unpaid",
        "permissions": None,
        "phone_number_collection": {"enabled": False},
        "recovered_from": None,
        "saved_payment_method_options": None,
        "setup_intent": None,
        "shipping_address_collection": None,
        "shipping_cost": None,
        "shipping_options": [],
        "status": "open",
        "submit_type": None,
        "subscription": None,
        "success_url": params.text("success_url"),
        "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
        "ui_mode": "hosted_page",
        "url": f"{emu.context.base_url}/checkout/{session_id}",
        "wallet_options": None,
        "_line_items": lines,
        "_subscription_data": {
            "metadata": read_metadata_update(data, {}),
            "description": data.text("description"),
            "trial_period_days": trial_days,
            "trial_end": trial_end,
        },
        "_pending_subscription": None,
    }
    _price_discounts(emu, session, redemptions)
    emu.store.add(session)
    return session


def _price_discounts(emu: Emulator, session: Obj, redemptions: list[discounts.Redemption]) -> None:
    """The session's totals with its discount taken off, as the first invoice will take it."""
    taken = 0
    if session["amount_subtotal"] > 0:
        for redemption in redemptions:
            coupon = redemption.coupon
            products = coupon.get("_products")
            for line in session["_line_items"]:
                price = emu.store.get(line["price"], "price") or {}
                if products is not None and price.get("product") not in products:
                    continue
                left = line["amount_subtotal"] - line["amount_discount"]
                if coupon["percent_off"] is not None:
                    amount = min(left, int(line["amount_subtotal"] * coupon["percent_off"] / 100 + 0.5))
                else:
                    amount = min(left, coupon["amount_off"] - taken)
                line["amount_discount"] += amount
                line["amount_total"] -= amount
                taken += amount
    session["amount_total"] = session["amount_subtotal"] - taken
    session["total_details"]["amount_discount"] = taken
    session["_redemptions"] = [
        {"coupon": r.coupon["id"], "promotion_code": r.promotion_code["id"] if r.promotion_code else None}
        for r in redemptions
    ]


def _redemptions(
    emu: Emulator, session: Obj, customer: Obj | None, promotion_code: str | None
) -> list[discounts.Redemption]:
    """The session's discounts checked again at payment, or the code the customer typed."""
    prices = [emu.store.get(line["price"], "price") or {} for line in session["_line_items"]]
    if promotion_code:
        if not session["allow_promotion_codes"]:
            raise invalid("This Checkout Session does not take promotion codes.", param="promotion_code")
        promo = discounts.promotion_code_by_code(emu, promotion_code)
        if promo is None:
            raise invalid(f"The promotion code {promotion_code} is invalid.", param="promotion_code")
        found = [
            discounts.check_promotion_code(
                emu, promo, customer, session["currency"], prices, "promotion_code"
            )
        ]
        _price_discounts(emu, session, found)
        session["discounts"] = list(session["_redemptions"])
        return found
    out = []
    for entry in session.get("_redemptions", []):
        if entry["promotion_code"]:
            promo = emu.store.require(
                entry["promotion_code"], "promotion_code", "promotion code", "discounts"
            )
            out.append(
                discounts.check_promotion_code(emu, promo, customer, session["currency"], prices, "discounts")
            )
        else:
            coupon = emu.store.require(entry["coupon"], "coupon", "coupon", "discounts")
            discounts.check_coupon(emu, coupon, session["currency"], prices, "discounts")
            out.append(discounts.Redemption(coupon))
    return out


def complete(
    emu: Emulator,
    session: Obj,
    outcome: str,
    email: str | None = None,
    promotion_code: str | None = None,
) -> dict[str, Any]:
    """What the customer's click on Pay / Decline / an authentication page does to the session
    (`promotion_code`: what they typed in the code field, when the session allows codes)."""
    if outcome not in PAYMENT_OUTCOMES:
        raise invalid(f"outcome must be one of {', '.join(PAYMENT_OUTCOMES)}", param="outcome")
    if session["status"] != "open":
        raise invalid(f"This Checkout Session is {session['status']}; only open sessions can be completed.")
    pending = emu.store.get(session["_pending_subscription"] or "", "subscription")
    if pending is not None:
        return _retry_pending(emu, session, pending, outcome)
    redemptions = _redemptions(
        emu, session, emu.store.get(session["customer"] or "", "customer"), promotion_code
    )
    if outcome == "declined":
        return {
            "outcome": "declined",
            "error": _decline(),
            "session": session,
            "subscription": None,
            "invoice": None,
        }
    customer = emu.store.get(session["customer"] or "", "customer")
    address = email or session["customer_email"] or (customer or {}).get("email") or DEFAULT_EMAIL
    if customer is None:
        customer = customers.add_customer(emu, address)
    card = customers.create_payment_method(emu, outcome, address)
    customers.attach_payment_method(emu, customer, card)
    data = session["_subscription_data"]
    trial_end = data["trial_end"] or (
        emu.now() + data["trial_period_days"] * 86400 if data["trial_period_days"] else None
    )
    specs = [
        ItemSpec(emu.store.get(line["price"], "price") or {}, line["quantity"])
        for line in session["_line_items"]
    ]
    sub, invoice, result = billing.start_subscription(
        emu,
        customer,
        specs,
        metadata=data["metadata"],
        trial_end=trial_end,
        description=data["description"],
        default_payment_method=card["id"],
        redemptions=redemptions,
        checkout_session=session["id"],
    )
    session["customer"] = customer["id"]
    session["customer_details"] = _details(customer, address)
    if result == "paid":
        _mark_complete(emu, session, sub, invoice)
    else:
        session["_pending_subscription"] = sub["id"]
    return {"outcome": result, "session": session, "subscription": sub, "invoice": invoice}


def _retry_pending(emu: Emulator, session: Obj, sub: Obj, outcome: str) -> dict[str, Any]:
    invoice = emu.store.get(sub["latest_invoice"] or "", "invoice")
    assert invoice is not None
    customer = emu.store.get(sub["customer"], "customer")
    assert customer is not None
    customers.set_payment_outcome(customer, outcome)
    before = snapshot(emu, sub)
    result = collection.collect(emu, invoice) if invoice["status"] == "open" else "paid"
    publish(emu, sub, before)
    if result == "paid":
        session["_pending_subscription"] = None
        _mark_complete(emu, session, sub, invoice)
    answer: dict[str, Any] = {"outcome": result, "session": session, "subscription": sub, "invoice": invoice}
    if result == "declined":
        answer["error"] = _decline()
    return answer


def _mark_complete(emu: Emulator, session: Obj, sub: Obj, invoice: Obj) -> None:
    session.update(
        status="complete",
        subscription=sub["id"],
        invoice=invoice["id"],
        payment_status="paid" if invoice["amount_paid"] > 0 else "no_payment_required",
    )
    emu.emit("checkout.session.completed", session)


def _details(customer: Obj, email: str) -> Obj:
    return {
        "address": customer.get("address"),
        "business_name": None,
        "email": email,
        "individual_name": None,
        "name": customer.get("name"),
        "phone": customer.get("phone"),
        "tax_exempt": customer.get("tax_exempt", "none"),
        "tax_ids": [],
    }


def _decline() -> Obj:
    """What the page shows for a declined card: the card error without its documentation link."""
    return {key: value for key, value in DECLINE.items() if key != "doc_url"}


def expire(emu: Emulator, session: Obj) -> Obj:
    if session["status"] != "open":
        raise invalid('Only Checkout Sessions with a status in ["open"] can be expired.')
    session["status"] = "expired"
    session["url"] = None
    emu.emit("checkout.session.expired", session)
    return session


def update_session(emu: Emulator, session: Obj, params: Params) -> Obj:
    params.allow("metadata", "expand")
    session["metadata"] = read_metadata_update(params, session["metadata"] or {})
    return session
