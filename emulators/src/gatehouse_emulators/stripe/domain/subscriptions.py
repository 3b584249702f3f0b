"""Subscription objects, their items and periods, proration arithmetic, and the one announcement of a
change (`snapshot` before, `publish` after). No other side effects here: billing.py and collection.py
orchestrate invoices, payments and events.

The billing period lives on the items (`items.data[].current_period_start/end`), as in the pinned
API version; all items of a subscription share one period. Proration at time t in period [s, e):
credit `-round(old_amount × (e − t) / (e − s))` for the old item and charge
`round(new_amount × (e − t) / (e − s))` for the new one, each rounded half up to the minor unit, the
way Stripe itemises "Unused time on …" and "Remaining time on …" lines. A change of billing interval
(month → year) resets the cycle at t: the unused old time is credited and the new price is charged
for a full new period right away."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from gatehouse_emulators.stripe.domain.clock import add_interval
from gatehouse_emulators.stripe.domain.invoices import Charge
from gatehouse_emulators.stripe.domain.state import Emulator
from gatehouse_emulators.stripe.domain.store import Obj, list_object, new_id
from gatehouse_emulators.stripe.wire.errors import invalid, resource_missing
from gatehouse_emulators.stripe.wire.forms import Params, read_metadata_update

TRACKED = (
    "billing_cycle_anchor",
    "cancel_at",
    "cancel_at_period_end",
    "canceled_at",
    "cancellation_details",
    "default_payment_method",
    "description",
    "discounts",
    "ended_at",
    "items",
    "latest_invoice",
    "metadata",
    "schedule",
    "status",
    "trial_end",
)
ENDED = ("canceled", "incomplete_expired")
# A subscription nobody has canceled (a copy is taken wherever it is set).
NO_CANCELLATION_DETAILS: Obj = {"comment": None, "feedback": None, "feedback_option": None, "reason": None}


@dataclass
class ItemSpec:
    price: Obj
    quantity: int = 1
    metadata: dict[str, str] = field(default_factory=dict)


def recurring_price(emu: Emulator, price_id: str | None, param: str) -> Obj:
    price = emu.store.require(price_id, "price", "price", param)
    if not price["active"]:
        raise invalid("The price specified is inactive. This field only accepts active prices.", param=param)
    if price["recurring"] is None:
        raise invalid(
            f"The price specified ({price['id']}) is a one-time price; recurring prices only here.",
            param=param,
        )
    return price


def check_compatible(prices: list[Obj], param: str) -> None:
    if not prices:
        raise invalid("A subscription needs at least one item.", param=param)
    first = prices[0]
    for price in prices[1:]:
        if price["currency"] != first["currency"]:
            raise invalid("All prices on a subscription must use the same currency.", param=param)
        if (price["recurring"]["interval"], price["recurring"]["interval_count"]) != (
            first["recurring"]["interval"],
            first["recurring"]["interval_count"],
        ):
            raise invalid("All prices on a subscription must have the same recurring interval.", param=param)


def cycle_of(price: Obj) -> tuple[str, int]:
    return price["recurring"]["interval"], price["recurring"]["interval_count"]


def new_item(emu: Emulator, subscription_id: str, spec: ItemSpec, start: int, end: int) -> Obj:
    return {
        "id": new_id("si_", 14),
        "object": "subscription_item",
        "billing_thresholds": None,
        "created": emu.now(),
        "current_period_end": end,
        "current_period_start": start,
        "current_trial": None,
        "discounts": [],
        "metadata": dict(spec.metadata),
        "price": spec.price["id"],
        "quantity": spec.quantity,
        "subscription": subscription_id,
        "tax_rates": [],
    }


def new_subscription(
    emu: Emulator,
    customer: Obj,
    specs: list[ItemSpec],
    *,
    metadata: dict[str, str],
    trial_end: int | None,
    description: str | None = None,
    default_payment_method: str | None = None,
) -> Obj:
    now = emu.now()
    interval, count = cycle_of(specs[0].price)
    anchor = trial_end or now
    end = trial_end or add_interval(now, interval, count)
    sub_id = new_id("sub_")
    # `current_trial` belongs to trial offers (it names one); a plain trial leaves it null.
    items = [new_item(emu, sub_id, spec, now, end) for spec in specs]
    sub: Obj = {
        "id": sub_id,
        "object": "subscription",
        "application": None,
        "application_fee_percent": None,
        "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None},
        "billing_cycle_anchor": anchor,
        "billing_cycle_anchor_config": None,
        "billing_mode": {
            "flexible": {"proration_discounts": "included"},
            "type": "flexible",
            "updated_at": now,
        },
        "billing_schedules": [],
        "billing_thresholds": None,
        "cancel_at": None,
        "cancel_at_period_end": False,
        "canceled_at": None,
        "cancellation_details": dict(NO_CANCELLATION_DETAILS),
        "collection_method": "charge_automatically",
        "created": now,
        "currency": specs[0].price["currency"],
        "customer": customer["id"],
        "customer_account": None,
        "days_until_due": None,
        "default_payment_method": default_payment_method,
        "default_source": None,
        "default_tax_rates": [],
        "description": description,
        "discounts": [],
        "ended_at": None,
        "invoice_settings": {
            "account_tax_ids": None,
            "custom_fields": None,
            "description": None,
            "footer": None,
            "issuer": {"type": "self"},
        },
        "items": list_object(items, False, f"/v1/subscription_items?subscription={sub_id}"),
        "latest_invoice": None,
        "livemode": False,
        "managed_payments": None,
        "metadata": dict(metadata),
        "next_pending_invoice_item_invoice": None,
        "on_behalf_of": None,
        "pause_collection": None,
        "payment_settings": {
            "payment_method_options": None,
            "payment_method_types": None,
            "save_default_payment_method": "off",
        },
        "pending_invoice_item_interval": None,
        "pending_setup_intent": None,
        "pending_update": None,
        "schedule": None,
        "start_date": now,
        "status": "trialing" if trial_end else "incomplete",
        "test_clock": None,
        "transfer_data": None,
        "trial_end": trial_end,
        "trial_settings": {
            "end_behavior": {"billing_cycle_anchor": None, "missing_payment_method": "create_invoice"}
        },
        "trial_start": now if trial_end else None,
    }
    return sub


def items_of(sub: Obj) -> list[Obj]:
    items: list[Obj] = sub["items"]["data"]
    return items


def period(sub: Obj) -> tuple[int, int]:
    first = items_of(sub)[0]
    return first["current_period_start"], first["current_period_end"]


def set_period(sub: Obj, start: int, end: int) -> None:
    for item in items_of(sub):
        item["current_period_start"] = start
        item["current_period_end"] = end


def set_items(sub: Obj, items: list[Obj]) -> None:
    sub["items"]["data"] = items


def cycle(emu: Emulator, sub: Obj) -> tuple[str, int]:
    price = emu.store.get(items_of(sub)[0]["price"], "price")
    assert price is not None
    return cycle_of(price)


def product_name(emu: Emulator, price: Obj) -> str:
    product = emu.store.get(price["product"], "product")
    return str(product["name"]) if product else price["id"]


def period_charges(emu: Emulator, sub: Obj, items: list[Obj], start: int, end: int) -> list[Charge]:
    charges = []
    for item in items:
        price = emu.store.get(item["price"], "price")
        assert price is not None
        trial = sub["status"] == "trialing" and sub["trial_end"] and start < sub["trial_end"]
        quantity = item["quantity"]
        name = product_name(emu, price)
        if trial:
            description = f"Trial period for {name}"
        else:
            description = f"{quantity} × {name} (at {_money(price['unit_amount'], price['currency'])} / "
            description += f"{price['recurring']['interval']})"
        charges.append(
            Charge(
                amount=0 if trial else price["unit_amount"] * quantity,
                description=description,
                price=price,
                quantity=quantity,
                start=start,
                end=end,
                subscription=sub["id"],
                subscription_item=item["id"],
            )
        )
    return charges


def _money(amount: int, currency: str) -> str:
    return f"{amount / 100:.2f} {currency.upper()}"


def _share(amount: int, remaining: int, length: int) -> int:
    """round(amount × remaining / length), half away from zero, in integers."""
    if length <= 0:
        return 0
    sign = -1 if amount < 0 else 1
    return sign * ((2 * abs(amount) * remaining + length) // (2 * length))


def _date(moment: int) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%d %b %Y")


@dataclass
class Change:
    """What an items update would do, computed without touching the subscription."""

    items: list[Obj]
    prorations: list[Charge]
    cycle_reset: bool
    changed: bool
    proration_date: int


def plan_change(
    emu: Emulator, sub: Obj, updates: list[Params], proration_behavior: str, moment: int, *, apply_ids: bool
) -> Change:
    """The items after `items[n][...]` updates and the proration charges they cause at `moment`.

    `apply_ids` gives new items real ids (an update) rather than placeholders (a preview)."""
    old_items = items_of(sub)
    by_id = {item["id"]: item for item in old_items}
    new_items = [copy.deepcopy(item) for item in old_items]
    for update in updates:
        update.allow(
            "id", "price", "quantity", "deleted", "metadata", "clear_usage", "discounts", "tax_rates"
        )
        item_id = update.text("id")
        if item_id is not None:
            if item_id not in by_id:
                raise resource_missing("subscription item", item_id, update.name("id"))
            target = next(i for i in new_items if i["id"] == item_id)
            if update.flag("deleted"):
                new_items.remove(target)
                continue
            if "price" in update:
                target["price"] = recurring_price(emu, update.text("price"), update.name("price"))["id"]
            if "quantity" in update:
                target["quantity"] = update.integer("quantity", minimum=0) or 0
            target["metadata"] = read_metadata_update(update, target["metadata"])
        else:
            price = recurring_price(emu, update.text("price", required=True), update.name("price"))
            spec = ItemSpec(
                price, update.integer("quantity", minimum=1) or 1, read_metadata_update(update, {})
            )
            start, end = period(sub)
            item = new_item(emu, sub["id"], spec, start, end)
            if not apply_ids:
                item["id"] = "si_preview_" + str(len(new_items))
            new_items.append(item)
    prices = [emu.store.get(i["price"], "price") or {} for i in new_items]
    check_compatible(prices, "items")
    if prices[0]["currency"] != sub["currency"]:
        raise invalid(
            "A subscription's currency cannot change; use prices in " + sub["currency"], param="items"
        )
    old_cycle = cycle(emu, sub)
    cycle_reset = cycle_of(prices[0]) != old_cycle
    changed = [(i["id"], i["price"], i["quantity"]) for i in old_items] != [
        (i["id"], i["price"], i["quantity"]) for i in new_items
    ]
    prorations: list[Charge] = []
    if changed and proration_behavior != "none" and sub["status"] != "trialing":
        prorations = prorate(emu, sub, old_items, new_items, moment, cycle_reset)
    return Change(new_items, prorations, cycle_reset, changed, moment)


def prorate(
    emu: Emulator, sub: Obj, old_items: list[Obj], new_items: list[Obj], moment: int, cycle_reset: bool
) -> list[Charge]:
    start, end = period(sub)
    moment = min(max(moment, start), end)
    remaining, length = end - moment, end - start

    def charge(item: Obj, sign: int, what: str) -> Charge:
        """The item's share of the rest of the period: a credit (-1) for what it was, a charge
        (+1) for what it becomes."""
        price = emu.store.get(item["price"], "price")
        assert price is not None
        return Charge(
            amount=sign * _share(price["unit_amount"] * item["quantity"], remaining, length),
            description=f"{what} time on {_qty(item)}{product_name(emu, price)} after {_date(moment)}",
            price=price,
            quantity=item["quantity"],
            start=moment,
            end=end,
            subscription=sub["id"],
            subscription_item=item["id"],
            proration=True,
        )

    def same(one: Obj | None, other: Obj) -> bool:
        return one is not None and (one["price"], one["quantity"]) == (other["price"], other["quantity"])

    old_by_id = {i["id"]: i for i in old_items}
    new_by_id = {i["id"]: i for i in new_items}
    charges = [
        charge(item, -1, "Unused")
        for item in old_items
        if cycle_reset or not same(new_by_id.get(item["id"]), item)
    ]
    if cycle_reset:
        return charges  # the new prices are billed for a whole new period instead
    charges += [
        charge(item, +1, "Remaining") for item in new_items if not same(old_by_id.get(item["id"]), item)
    ]
    return charges


def _qty(item: Obj) -> str:
    return f"{item['quantity']} × " if item["quantity"] != 1 else ""


def snapshot(emu: Emulator, sub: Obj) -> dict[str, Any]:
    rendered = emu.render(sub)
    return {key: rendered.get(key) for key in TRACKED}


def publish(emu: Emulator, sub: Obj, before: dict[str, Any]) -> None:
    after = snapshot(emu, sub)
    previous = {key: before[key] for key in TRACKED if before[key] != after[key]}
    if not previous:
        return
    ended = after["status"] in ENDED and before["status"] not in ENDED
    emu.emit("customer.subscription.deleted" if ended else "customer.subscription.updated", sub, previous)
