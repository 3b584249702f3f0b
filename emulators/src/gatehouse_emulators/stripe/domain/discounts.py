"""Coupons, promotion codes, and the discounts they put on subscriptions and their invoices.

A coupon is `percent_off` (0 < p ≤ 100) or `amount_off` in one `currency`, for `once`, `repeating`
(`duration_in_months`) or `forever`; `max_redemptions` and `redeem_by` limit how often and until
when it can be applied, and `applies_to.products` (includable: `expand[]=applies_to`) limits which
invoice lines it reduces. A promotion code is a customer-facing code for one coupon with its own
`max_redemptions`, `expires_at`, `active` switch and `restrictions.first_time_transaction` (only a
customer who never paid an invoice may use it).

Applying a coupon or a code (`discounts=[{coupon|promotion_code}]` on a subscription or a Checkout
Session, a code typed on the Checkout page) redeems it (its and its coupon's `times_redeemed` go up)
and makes a Discount object on the subscription (`customer.discount.created`). Every invoice the
subscription makes then has its discountable lines reduced (`discount_amounts`, the invoice's
`discounts` and `total_discount_amounts`, a lower `total` and `amount_due`) while the discount
lasts: a `once` discount serves the invoice that follows its start and is removed when the next one
is made, a `repeating` one until its `end` (start + `duration_in_months`), a `forever` one until it
is removed (`DELETE /v1/subscriptions/{id}/discount`, or `discounts` on an update); a removed
discount is announced as `customer.discount.deleted`."""

from __future__ import annotations

import copy
import re
import secrets
import string
from dataclasses import dataclass

from gatehouse_emulators.stripe.domain.clock import add_interval
from gatehouse_emulators.stripe.domain.state import Emulator, changed
from gatehouse_emulators.stripe.domain.store import Obj, new_id
from gatehouse_emulators.stripe.wire.errors import invalid, missing_param, resource_missing
from gatehouse_emulators.stripe.wire.forms import Params, read_metadata_update

DURATIONS = ("once", "repeating", "forever")
_COUPON_CREATE = (
    "amount_off",
    "applies_to",
    "currency",
    "currency_options",
    "duration",
    "duration_in_months",
    "expand",
    "id",
    "max_redemptions",
    "metadata",
    "name",
    "percent_off",
    "redeem_by",
)
_PROMOTION_CODE_CREATE = (
    "active",
    "code",
    "customer",
    "expand",
    "expires_at",
    "max_redemptions",
    "metadata",
    "promotion",
    "restrictions",
)
_CODE = re.compile(r"^[a-zA-Z0-9]{1,500}$")


# -- coupons ---------------------------------------------------------------------------------------


def _percent(params: Params) -> float | None:
    text = params.text("percent_off")
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        raise invalid(f"Invalid decimal: {text}", param="percent_off") from None
    if not 0 < value <= 100:
        raise invalid("percent_off must be greater than 0 and at most 100.", param="percent_off")
    return value


def create_coupon(emu: Emulator, params: Params) -> Obj:
    params.allow(*_COUPON_CREATE)
    coupon_id = params.text("id") or "".join(
        secrets.choice(string.ascii_letters + string.digits) for _ in range(8)
    )
    if emu.store.get(coupon_id) is not None:
        raise invalid(
            f"Coupon already exists with ID {coupon_id}", param="id", code="resource_already_exists"
        )
    percent_off = _percent(params)
    amount_off = params.integer("amount_off", minimum=1)
    if percent_off is None and amount_off is None:
        raise invalid("You must pass either amount_off or percent_off.", param="percent_off")
    if percent_off is not None and amount_off is not None:
        raise invalid("You may only specify one of these parameters: amount_off, percent_off.")
    currency = params.text("currency")
    if amount_off is not None and currency is None:
        raise invalid("You must pass currency when passing amount_off.", param="currency")
    if percent_off is not None and currency is not None:
        raise invalid("currency may only be given with amount_off.", param="currency")
    duration = params.enum("duration", DURATIONS) or "once"
    months = params.integer("duration_in_months", minimum=1)
    if duration == "repeating" and months is None:
        raise missing_param("duration_in_months")
    if duration != "repeating" and months is not None:
        raise invalid(
            "duration_in_months may only be given when duration is repeating.", param="duration_in_months"
        )
    redeem_by = params.integer("redeem_by")
    if redeem_by is not None and redeem_by <= emu.now():
        raise invalid("redeem_by must be in the future.", param="redeem_by")
    products: list[str] | None = None
    applies_to = params.hash("applies_to")
    if applies_to is not None:
        applies_to.allow("products")
        products = applies_to.strings("products")
        for index, product_id in enumerate(products):
            emu.store.require(product_id, "product", "product", f"applies_to[products][{index}]")
    coupon: Obj = {
        "id": coupon_id,
        "object": "coupon",
        "amount_off": amount_off,
        "created": emu.now(),
        "currency": currency.lower() if currency else None,
        "duration": duration,
        "duration_in_months": months,
        "livemode": False,
        "max_redemptions": params.integer("max_redemptions", minimum=1),
        "metadata": read_metadata_update(params, {}),
        "name": params.text("name"),
        "percent_off": percent_off,
        "redeem_by": redeem_by,
        "times_redeemed": 0,
        "valid": True,
        "_products": products,
    }
    emu.store.add(coupon)
    emu.emit("coupon.created", coupon)
    return coupon


def refresh_validity(emu: Emulator, coupon: Obj) -> None:
    """`valid` goes false once the coupon can no longer be redeemed (and never comes back)."""
    used_up = coupon["max_redemptions"] is not None and coupon["times_redeemed"] >= coupon["max_redemptions"]
    expired = coupon["redeem_by"] is not None and coupon["redeem_by"] <= emu.now()
    if coupon["valid"] and (used_up or expired):
        coupon["valid"] = False


def update_coupon(emu: Emulator, coupon: Obj, params: Params) -> Obj:
    params.allow("currency_options", "expand", "metadata", "name")
    before = copy.deepcopy(coupon)
    if "name" in params:
        coupon["name"] = params.text("name")
    coupon["metadata"] = read_metadata_update(params, coupon["metadata"])
    previous = changed(before, coupon, ("name", "metadata"))
    if previous:
        emu.emit("coupon.updated", coupon, previous)
    return coupon


def delete_coupon(emu: Emulator, coupon: Obj) -> Obj:
    """Deleted coupons can no longer be applied; discounts already made from them run on."""
    coupon["valid"] = False
    coupon["_deleted"] = True  # kept whole for the discounts and invoices that name it
    emu.emit("coupon.deleted", coupon)
    return {"id": coupon["id"], "object": "coupon", "deleted": True}


def coupon_applies_to(coupon: Obj) -> Obj:
    """The includable `applies_to` (`expand[]=applies_to`)."""
    return {"products": list(coupon.get("_products") or [])}


# -- promotion codes -------------------------------------------------------------------------------


def _live_code_taken(emu: Emulator, code: str) -> bool:
    wanted = code.lower()
    return bool(emu.store.all("promotion_code", lambda p: p["active"] and p["code"].lower() == wanted))


def create_promotion_code(emu: Emulator, params: Params) -> Obj:
    params.allow(*_PROMOTION_CODE_CREATE)
    promotion = params.hash("promotion")
    if promotion is None:
        raise missing_param("promotion")
    promotion.allow("coupon", "type")
    if promotion.enum("type", ("coupon",), required=True) != "coupon":
        raise invalid("promotion[type] must be coupon.", param="promotion[type]")
    coupon = emu.store.require(
        promotion.text("coupon", required=True), "coupon", "coupon", "promotion[coupon]"
    )
    refresh_validity(emu, coupon)
    if not coupon["valid"]:
        raise invalid(f"Coupon {coupon['id']} is no longer valid.", param="promotion[coupon]")
    code = params.text("code") or "".join(
        secrets.choice(string.ascii_uppercase + string.digits) for _ in range(8)
    )
    if not _CODE.match(code):
        raise invalid("A promotion code may contain letters and digits only.", param="code")
    if _live_code_taken(emu, code):
        raise invalid(
            f"An active promotion code with the code {code} already exists.",
            param="code",
            code="resource_already_exists",
        )
    expires_at = params.integer("expires_at")
    if expires_at is not None and expires_at <= emu.now():
        raise invalid("expires_at must be in the future.", param="expires_at")
    customer_id = params.text("customer")
    if customer_id is not None:
        emu.store.require(customer_id, "customer", "customer", "customer")
    restrictions = params.hash("restrictions") or Params({}, "restrictions")
    restrictions.allow(
        "currency_options", "first_time_transaction", "minimum_amount", "minimum_amount_currency"
    )
    if "minimum_amount" in restrictions or "currency_options" in restrictions:
        raise invalid("The emulator does not support minimum amounts on promotion codes.", "restrictions")
    active = params.flag("active")
    promo: Obj = {
        "id": new_id("promo_"),
        "object": "promotion_code",
        "active": True if active is None else active,
        "code": code,
        "created": emu.now(),
        "customer": customer_id,
        "customer_account": None,
        "expires_at": expires_at,
        "livemode": False,
        "max_redemptions": params.integer("max_redemptions", minimum=1),
        "metadata": read_metadata_update(params, {}),
        "promotion": {"coupon": coupon["id"], "type": "coupon"},
        "restrictions": {
            "first_time_transaction": bool(restrictions.flag("first_time_transaction")),
            "minimum_amount": None,
            "minimum_amount_currency": None,
        },
        "times_redeemed": 0,
    }
    emu.store.add(promo)
    emu.emit("promotion_code.created", promo)
    return promo


def update_promotion_code(emu: Emulator, promo: Obj, params: Params) -> Obj:
    params.allow("active", "expand", "metadata", "restrictions")
    if "restrictions" in params:
        raise invalid(
            "The emulator does not support changing a promotion code's restrictions.", "restrictions"
        )
    before = copy.deepcopy(promo)
    active = params.flag("active")
    if active is True and not promo["active"] and _live_code_taken(emu, promo["code"]):
        raise invalid(f"An active promotion code with the code {promo['code']} already exists.", "active")
    if active is not None:
        promo["active"] = active
    promo["metadata"] = read_metadata_update(params, promo["metadata"])
    previous = changed(before, promo, ("active", "metadata"))
    if previous:
        emu.emit("promotion_code.updated", promo, previous)
    return promo


def promotion_code_filter(emu: Emulator, params: Params) -> list[Obj]:
    active = params.flag("active")
    code = params.text("code")
    coupon = params.text("coupon")
    customer = params.text("customer")

    def keep(promo: Obj) -> bool:
        return (
            (active is None or promo["active"] == active)
            and (code is None or promo["code"].lower() == code.lower())
            and (coupon is None or promo["promotion"]["coupon"] == coupon)
            and (customer is None or promo["customer"] == customer)
        )

    return emu.store.all("promotion_code", keep)


# -- applying them ---------------------------------------------------------------------------------


@dataclass
class Redemption:
    """A coupon (and the promotion code it came through) checked for one customer and purchase."""

    coupon: Obj
    promotion_code: Obj | None = None


def _has_paid_before(emu: Emulator, customer: Obj) -> bool:
    return bool(emu.store.all("invoice", lambda i: i["customer"] == customer["id"] and i["amount_paid"] > 0))


def check_coupon(emu: Emulator, coupon: Obj, currency: str, prices: list[Obj], param: str) -> None:
    refresh_validity(emu, coupon)
    if coupon.get("_deleted") or not coupon["valid"]:
        raise invalid(f"Coupon {coupon['id']} is no longer valid.", param=param, code="coupon_expired")
    if coupon["currency"] is not None and coupon["currency"] != currency:
        raise invalid(
            f"Coupon {coupon['id']} is in {coupon['currency']}; this purchase is in {currency}.", param=param
        )
    products = coupon.get("_products")
    if products is not None and not any(p["product"] in products for p in prices):
        raise invalid(f"Coupon {coupon['id']} does not apply to any item of this purchase.", param=param)


def check_promotion_code(
    emu: Emulator, promo: Obj, customer: Obj | None, currency: str, prices: list[Obj], param: str
) -> Redemption:
    if not promo["active"]:
        raise invalid(f"The promotion code {promo['code']} is inactive.", param=param)
    if promo["expires_at"] is not None and promo["expires_at"] <= emu.now():
        raise invalid(f"The promotion code {promo['code']} has expired.", param=param)
    if promo["max_redemptions"] is not None and promo["times_redeemed"] >= promo["max_redemptions"]:
        raise invalid(
            f"The promotion code {promo['code']} has reached its maximum number of redemptions.", param=param
        )
    if promo["customer"] is not None and (customer is None or customer["id"] != promo["customer"]):
        raise invalid(f"The promotion code {promo['code']} belongs to another customer.", param=param)
    if (
        promo["restrictions"]["first_time_transaction"]
        and customer is not None
        and _has_paid_before(emu, customer)
    ):
        raise invalid(
            f"The promotion code {promo['code']} is for customers who never made a payment.", param=param
        )
    coupon = emu.store.get(promo["promotion"]["coupon"], "coupon")
    if coupon is None:
        raise resource_missing("coupon", promo["promotion"]["coupon"], param)
    check_coupon(emu, coupon, currency, prices, param)
    return Redemption(coupon, promo)


def read_discounts(
    emu: Emulator, params: Params, key: str, customer: Obj | None, currency: str, prices: list[Obj]
) -> list[Redemption]:
    """`discounts=[{coupon}|{promotion_code}]`, checked (at most one, as Stripe's subscriptions and
    Checkout take in the emulator)."""
    entries = params.hashes(key)
    if len(entries) > 1:
        raise invalid("The emulator applies at most one discount.", param=key)
    redemptions = []
    for entry in entries:
        entry.allow("coupon", "promotion_code", "discount")
        if "discount" in entry:
            raise invalid("The emulator does not reuse discounts; pass a coupon or a promotion code.")
        coupon_id, promo_id = entry.text("coupon"), entry.text("promotion_code")
        if bool(coupon_id) == bool(promo_id):
            raise invalid("Each discount takes one of coupon or promotion_code.", param=entry.path)
        if coupon_id:
            coupon = emu.store.require(coupon_id, "coupon", "coupon", entry.name("coupon"))
            check_coupon(emu, coupon, currency, prices, entry.name("coupon"))
            redemptions.append(Redemption(coupon))
        else:
            promo = emu.store.require(
                promo_id, "promotion_code", "promotion code", entry.name("promotion_code")
            )
            redemptions.append(
                check_promotion_code(emu, promo, customer, currency, prices, entry.name("promotion_code"))
            )
    return redemptions


def promotion_code_by_code(emu: Emulator, code: str) -> Obj | None:
    wanted = code.strip().lower()
    found = emu.store.all("promotion_code", lambda p: p["active"] and p["code"].lower() == wanted)
    return found[0] if found else None


def redeem(
    emu: Emulator,
    redemption: Redemption,
    customer: Obj,
    sub: Obj,
    *,
    checkout_session: str | None = None,
) -> Obj:
    """Count the redemption and put its Discount on the subscription (announced once the
    subscription itself has been)."""
    coupon, promo = redemption.coupon, redemption.promotion_code
    coupon["times_redeemed"] += 1
    refresh_validity(emu, coupon)
    if promo is not None:
        promo["times_redeemed"] += 1
    now = emu.now()
    end = (
        add_interval(now, "month", coupon["duration_in_months"])
        if coupon["duration"] == "repeating"
        else None
    )
    discount: Obj = {
        "id": new_id("di_"),
        "object": "discount",
        "checkout_session": checkout_session,
        "customer": customer["id"],
        "customer_account": None,
        "end": end,
        "invoice": None,
        "invoice_item": None,
        "promotion_code": promo["id"] if promo else None,
        "source": {"coupon": coupon["id"], "type": "coupon"},
        "start": now,
        "subscription": sub["id"],
        "subscription_item": None,
        "_invoices": 0,
    }
    emu.store.add(discount)
    sub["discounts"] = [*sub["discounts"], discount["id"]]
    return discount


def announce(emu: Emulator, sub: Obj) -> None:
    """`customer.discount.created` for each discount on the subscription not yet announced."""
    for discount in live_discounts(emu, sub):
        if not discount.get("_announced"):
            discount["_announced"] = True
            emu.emit("customer.discount.created", discount)


def live_discounts(emu: Emulator, sub: Obj) -> list[Obj]:
    found = (emu.store.get(d, "discount") for d in sub.get("discounts", []))
    return [d for d in found if d is not None]


def remove(emu: Emulator, sub: Obj, discount: Obj) -> None:
    sub["discounts"] = [d for d in sub["discounts"] if d != discount["id"]]
    emu.emit("customer.discount.deleted", discount)


def remove_all(emu: Emulator, sub: Obj) -> None:
    for discount in live_discounts(emu, sub):
        remove(emu, sub, discount)


def expire_due(emu: Emulator, sub: Obj) -> None:
    """Before an invoice: drop the discounts that have served their time."""
    now = emu.now()
    for discount in live_discounts(emu, sub):
        coupon = emu.store.get(discount["source"]["coupon"], "coupon") or {}
        once_used = coupon.get("duration") == "once" and discount["_invoices"] > 0
        if once_used or (discount["end"] is not None and discount["end"] <= now):
            remove(emu, sub, discount)


def discount_lines(emu: Emulator, sub: Obj, lines: list[Obj]) -> list[Obj]:
    """Reduce the discountable lines by the subscription's discounts; returns
    `total_discount_amounts` (one entry per discount that took something off)."""
    totals = []
    for discount in live_discounts(emu, sub):
        coupon = emu.store.get(discount["source"]["coupon"], "coupon")
        if coupon is None:
            continue
        products = coupon.get("_products")
        eligible = [
            line
            for line in lines
            if line["discountable"]
            and line["amount"] > 0
            and (products is None or line["pricing"]["price_details"]["product"] in products)
        ]
        if not eligible:
            continue
        left = coupon["amount_off"]
        taken = 0
        for line in eligible:
            remaining = line["amount"] - sum(d["amount"] for d in line["discount_amounts"])
            if coupon["percent_off"] is not None:
                amount = min(remaining, int(line["amount"] * coupon["percent_off"] / 100 + 0.5))
            else:
                amount = min(remaining, left)
                left -= amount
            if amount <= 0:
                continue
            line["discount_amounts"].append({"amount": amount, "discount": discount["id"]})
            line["discounts"].append(discount["id"])
            taken += amount
        discount["_invoices"] += 1
        totals.append({"amount": taken, "discount": discount["id"]})
    return totals
