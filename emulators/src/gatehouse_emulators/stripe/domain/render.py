"""Objects as the API shows them: bookkeeping stripped, nested objects filled in, `expand[]` applied.

Expansion follows Stripe: a dotted path whose fields hold ids (`latest_invoice`, `customer`,
`items.data.price.product`; list endpoints prefix `data.`) is replaced by the object; some fields
are only present when expanded ("includable": `invoice.payments`, `invoice.confirmation_secret`,
`checkout.session.line_items`, `customer.subscriptions`); anything else is refused with Stripe's
"This property cannot be expanded" error. Paths through an already embedded object (the
subscription item's `price`) are accepted."""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

from gatehouse_emulators.stripe.domain.store import Obj, Store, list_object
from gatehouse_emulators.stripe.wire.errors import invalid

Hydrator = Callable[[Store, Obj], None]
Includable = Callable[[Store, Obj], Any]


def plan_from_price(price: Obj) -> Obj:
    """The legacy `plan` Stripe still nests beside `price` in subscription items."""
    recurring = price.get("recurring") or {}
    return {
        "id": price["id"],
        "object": "plan",
        "active": price["active"],
        "amount": price["unit_amount"],
        "amount_decimal": price["unit_amount_decimal"],
        "billing_scheme": "per_unit",
        "created": price["created"],
        "currency": price["currency"],
        "interval": recurring.get("interval"),
        "interval_count": recurring.get("interval_count"),
        "livemode": False,
        "metadata": copy.deepcopy(price["metadata"]),
        "meter": None,
        "nickname": price["nickname"],
        "product": price["product"],
        "tiers_mode": None,
        "transform_usage": None,
        "trial_period_days": None,
        "usage_type": "licensed",
    }


def _hydrate_item(store: Store, item: Obj) -> None:
    price = store.get(item["price"], "price") if isinstance(item.get("price"), str) else None
    if price is not None:
        item["price"] = _strip(price)
        item["plan"] = plan_from_price(price)


def _hydrate_subscription(store: Store, sub: Obj) -> None:
    for item in sub["items"]["data"]:
        _hydrate_item(store, item)


HYDRATORS: dict[str, Hydrator] = {
    "subscription": _hydrate_subscription,
    "subscription_item": _hydrate_item,
}


def _invoice_payments(store: Store, invoice: Obj) -> Any:
    payments = store.all("invoice_payment", lambda p: p["invoice"] == invoice["id"])
    return list_object([_strip(p) for p in payments], False, "/v1/invoice_payments")


def _confirmation_secret(store: Store, invoice: Obj) -> Any:
    stored = store.get(invoice["id"], "invoice") or invoice
    intent = store.get(stored.get("_payment_intent") or "", "payment_intent")
    if intent is None or invoice.get("status") != "open":
        return None
    return {"client_secret": intent["client_secret"], "type": "payment_intent"}


def _session_line_items(store: Store, session: Obj) -> Any:
    stored = store.get(session["id"], "checkout.session") or {}
    items = copy.deepcopy(stored.get("_line_items", []))
    for item in items:
        price = store.get(item["price"], "price")
        if price is not None:
            item["price"] = _strip(price)
    return list_object(items, False, f"/v1/checkout/sessions/{session['id']}/line_items")


def _customer_subscriptions(store: Store, customer: Obj) -> Any:
    subs = store.all(
        "subscription",
        lambda s: s["customer"] == customer["id"] and s["status"] not in ("canceled", "incomplete_expired"),
    )
    data = [render(store, s) for s in subs]
    return list_object(data, False, f"/v1/customers/{customer['id']}/subscriptions")


def _coupon_applies_to(store: Store, coupon: Obj) -> Any:
    stored = store.get(coupon["id"], "coupon") or coupon
    return {"products": list(stored.get("_products") or [])}


INCLUDABLE: dict[tuple[str, str], Includable] = {
    ("coupon", "applies_to"): _coupon_applies_to,
    ("invoice", "payments"): _invoice_payments,
    ("invoice", "confirmation_secret"): _confirmation_secret,
    ("checkout.session", "line_items"): _session_line_items,
    ("customer", "subscriptions"): _customer_subscriptions,
}


def _strip(obj: Obj) -> Obj:
    return {k: copy.deepcopy(v) for k, v in obj.items() if not k.startswith("_")}


def render(store: Store, obj: Obj, expand: Sequence[str] = ()) -> Obj:
    out = _strip(obj)
    hydrate = HYDRATORS.get(str(obj.get("object")))
    if hydrate is not None:
        hydrate(store, out)
    return apply_expand(store, out, expand)


def render_list(store: Store, items: Sequence[Obj], has_more: bool, url: str, expand: Sequence[str]) -> Obj:
    return apply_expand(store, list_object([render(store, o) for o in items], has_more, url), expand)


def apply_expand(store: Store, obj: Obj, expand: Sequence[str]) -> Obj:
    """Expand paths on an already rendered object (also an embedded one served on its own)."""
    for path in expand:
        _expand(store, obj, path.split("."), path)
    return obj


def _cannot(path: str) -> Exception:
    return invalid(f"This property cannot be expanded ({path}).", param="expand")


def _expand(store: Store, node: Any, segments: list[str], path: str) -> None:
    if not segments:
        return
    if isinstance(node, list):
        for element in node:
            _expand(store, element, segments, path)
        return
    if not isinstance(node, dict):
        raise _cannot(path)
    field, rest = segments[0], segments[1:]
    if field not in node:
        include = INCLUDABLE.get((str(node.get("object")), field))
        if include is None:
            raise _cannot(path)
        node[field] = include(store, node)
    value = node[field]
    if value is None:
        return
    if isinstance(value, str):
        target = store.get(value)
        if target is None:
            raise _cannot(path)
        node[field] = value = render(store, target)
    elif isinstance(value, list):
        if not rest and all(isinstance(v, str) for v in value):  # a list of ids (`discounts`), or none
            targets = [store.get(v) for v in value]
            if any(t is None for t in targets):
                raise _cannot(path)
            node[field] = [render(store, t) for t in targets if t is not None]
            return
        if not rest:
            raise _cannot(path)
    elif not isinstance(value, dict):
        raise _cannot(path)
    _expand(store, value, rest, path)
