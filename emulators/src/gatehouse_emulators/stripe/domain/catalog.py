"""Products and prices. A price's amount, currency and interval never change once created: Stripe's
update endpoint does not take them, so sending one is refused as an unknown parameter."""

from __future__ import annotations

import copy

from gatehouse_emulators.stripe.domain.clock import INTERVALS
from gatehouse_emulators.stripe.domain.state import Emulator, changed
from gatehouse_emulators.stripe.domain.store import Obj, new_id
from gatehouse_emulators.stripe.wire.errors import StripeError, invalid, missing_param
from gatehouse_emulators.stripe.wire.forms import Params, read_metadata_update

_PRODUCT_CREATE = (
    "active",
    "default_price_data",
    "description",
    "expand",
    "id",
    "images",
    "marketing_features",
    "metadata",
    "name",
    "shippable",
    "statement_descriptor",
    "tax_code",
    "unit_label",
    "url",
)
_PRODUCT_UPDATE = (
    "active",
    "default_price",
    "description",
    "expand",
    "images",
    "marketing_features",
    "metadata",
    "name",
    "shippable",
    "statement_descriptor",
    "tax_code",
    "unit_label",
    "url",
)
_PRODUCT_TEXT = ("description", "statement_descriptor", "tax_code", "unit_label", "url")
_PRICE_CREATE = (
    "active",
    "billing_scheme",
    "currency",
    "expand",
    "lookup_key",
    "metadata",
    "nickname",
    "product",
    "product_data",
    "recurring",
    "tax_behavior",
    "transfer_lookup_key",
    "unit_amount",
    "unit_amount_decimal",
)
_PRICE_UPDATE = (
    "active",
    "expand",
    "lookup_key",
    "metadata",
    "nickname",
    "tax_behavior",
    "transfer_lookup_key",
)
_TAX_BEHAVIORS = ("exclusive", "inclusive", "unspecified")


def _apply_product(product: Obj, params: Params) -> None:
    if "name" in params:
        product["name"] = params.req_text("name")
    if "active" in params:
        product["active"] = bool(params.flag("active"))
    for key in _PRODUCT_TEXT:
        if key in params:
            product[key] = params.text(key)
    if "images" in params:
        product["images"] = params.strings("images")
    if "shippable" in params:
        product["shippable"] = params.flag("shippable")
    if "marketing_features" in params:
        product["marketing_features"] = [
            {"name": f.text("name")} for f in params.hashes("marketing_features")
        ]
    product["metadata"] = read_metadata_update(params, product["metadata"])


def new_product(emu: Emulator, name: str, product_id: str | None = None) -> Obj:
    now = emu.now()
    return {
        "id": product_id or new_id("prod_", 14),
        "object": "product",
        "active": True,
        "created": now,
        "default_price": None,
        "description": None,
        "images": [],
        "livemode": False,
        "marketing_features": [],
        "metadata": {},
        "name": name,
        "package_dimensions": None,
        "shippable": None,
        "statement_descriptor": None,
        "tax_code": None,
        "tax_details": None,
        "type": "service",
        "unit_label": None,
        "updated": now,
        "url": None,
    }


def create_product(emu: Emulator, params: Params) -> Obj:
    params.allow(*_PRODUCT_CREATE)
    product_id = params.text("id")
    if product_id is not None and emu.store.get(product_id) is not None:
        raise invalid(
            f"Product already exists with ID {product_id}", param="id", code="resource_already_exists"
        )
    product = new_product(emu, params.req_text("name"), product_id)
    _apply_product(product, params)
    emu.store.add(product)
    price_data = params.hash("default_price_data")
    if price_data is not None:
        price_data.allow(
            "currency", "metadata", "recurring", "tax_behavior", "unit_amount", "unit_amount_decimal"
        )
        product["default_price"] = _create_price(emu, price_data, product)["id"]
    emu.emit("product.created", product)
    return product


def update_product(emu: Emulator, product: Obj, params: Params) -> Obj:
    params.allow(*_PRODUCT_UPDATE)
    before = copy.deepcopy(product)
    _apply_product(product, params)
    if "default_price" in params:
        price_id = params.text("default_price")
        if price_id is not None:
            price = emu.store.require(price_id, "price", "price", "default_price")
            if price["product"] != product["id"]:
                raise invalid("The default price must belong to this product.", param="default_price")
        product["default_price"] = price_id
    previous = changed(before, product, [k for k in product if k not in ("updated",)])
    if previous:
        product["updated"] = emu.now()
        emu.emit("product.updated", product, previous)
    return product


def delete_product(emu: Emulator, product: Obj) -> Obj:
    if emu.store.all("price", lambda p: p["product"] == product["id"]):
        raise invalid("This product cannot be deleted because it has one or more user-created prices.")
    emu.store.remove(product["id"])
    emu.emit("product.deleted", product)
    return {"id": product["id"], "object": "product", "deleted": True}


def _recurring(params: Params) -> Obj | None:
    sub = params.hash("recurring")
    if sub is None:
        return None
    sub.allow("interval", "interval_count", "usage_type", "meter", "trial_period_days")
    interval = sub.enum("interval", INTERVALS, required=True)
    count = sub.integer("interval_count", minimum=1) or 1
    if sub.enum("usage_type", ("licensed", "metered")) == "metered":
        raise invalid("The emulator supports licensed (per-seat) prices only.", param="recurring[usage_type]")
    return {
        "interval": interval,
        "interval_count": count,
        "meter": None,
        "trial_period_days": sub.integer("trial_period_days", minimum=0),
        "usage_type": "licensed",
    }


def _unit_amount(params: Params) -> int:
    if "unit_amount" in params:
        amount = params.integer("unit_amount", minimum=0)
    elif "unit_amount_decimal" in params:
        text = params.req_text("unit_amount_decimal")
        try:
            amount = int(float(text))
        except ValueError:
            raise invalid(f"Invalid decimal: {text}", param="unit_amount_decimal") from None
    else:
        raise missing_param("unit_amount")
    assert amount is not None
    if amount > 99999999:
        raise invalid("Amount must be no more than $999,999.99", param="unit_amount")
    return amount


def _claim_lookup_key(emu: Emulator, key: str, transfer: bool) -> None:
    holders = emu.store.all("price", lambda p: p["lookup_key"] == key)
    if holders and not transfer:
        raise invalid(
            f"A price (`{holders[0]['id']}`) already uses that lookup key.",
            param="lookup_key",
        )
    for holder in holders:
        before = copy.deepcopy(holder)
        holder["lookup_key"] = None
        emu.emit("price.updated", holder, changed(before, holder, ("lookup_key",)))


def _create_price(emu: Emulator, params: Params, product: Obj) -> Obj:
    currency = params.req_text("currency").lower()
    amount = _unit_amount(params)
    recurring = _recurring(params)
    tax_behavior = params.enum("tax_behavior", _TAX_BEHAVIORS) or "unspecified"
    price: Obj = {
        "id": new_id("price_"),
        "object": "price",
        "active": True,
        "billing_scheme": "per_unit",
        "created": emu.now(),
        "currency": currency,
        "custom_unit_amount": None,
        "livemode": False,
        "lookup_key": None,
        "metadata": {},
        "nickname": None,
        "product": product["id"],
        "recurring": recurring,
        "tax_behavior": tax_behavior,
        "tiers_mode": None,
        "transform_quantity": None,
        "type": "recurring" if recurring else "one_time",
        "unit_amount": amount,
        "unit_amount_decimal": str(amount),
    }
    if "active" in params:
        price["active"] = bool(params.flag("active"))
    price["nickname"] = params.text("nickname")
    price["metadata"] = read_metadata_update(params, {})
    lookup_key = params.text("lookup_key")
    if lookup_key is not None:
        _claim_lookup_key(emu, lookup_key, bool(params.flag("transfer_lookup_key")))
        price["lookup_key"] = lookup_key
    emu.store.add(price)
    emu.emit("price.created", price)
    return price


def create_price(emu: Emulator, params: Params) -> Obj:
    params.allow(*_PRICE_CREATE)
    if params.text("billing_scheme") not in (None, "per_unit"):
        raise invalid("The emulator supports billing_scheme=per_unit only.", param="billing_scheme")
    product_id = params.text("product")
    product_data = params.hash("product_data")
    if product_id and product_data is not None:
        raise invalid("You may only specify one of these parameters: product, product_data.")
    if product_id:
        product = emu.store.require(product_id, "product", "product", "product")
    elif product_data is not None:
        product_data.allow(
            "active", "id", "metadata", "name", "statement_descriptor", "tax_code", "unit_label"
        )
        product = new_product(emu, product_data.req_text("name"), product_data.text("id"))
        _apply_product(product, product_data)
        emu.store.add(product)
        emu.emit("product.created", product)
    else:
        raise missing_param("product")
    return _create_price(emu, params, product)


def update_price(emu: Emulator, price: Obj, params: Params) -> Obj:
    params.allow(*_PRICE_UPDATE)
    before = copy.deepcopy(price)
    if "active" in params:
        price["active"] = bool(params.flag("active"))
    if "nickname" in params:
        price["nickname"] = params.text("nickname")
    if "tax_behavior" in params:
        if price["tax_behavior"] != "unspecified":
            raise StripeError(400, "tax_behavior cannot be changed once specified.", param="tax_behavior")
        price["tax_behavior"] = params.enum("tax_behavior", _TAX_BEHAVIORS)
    if "lookup_key" in params:
        key = params.text("lookup_key")
        if key is not None and key != price["lookup_key"]:
            _claim_lookup_key(emu, key, bool(params.flag("transfer_lookup_key")))
        price["lookup_key"] = key
    price["metadata"] = read_metadata_update(params, price["metadata"])
    previous = changed(before, price, ("active", "nickname", "tax_behavior", "lookup_key", "metadata"))
    if previous:
        emu.emit("price.updated", price, previous)
    return price


def price_filter(emu: Emulator, params: Params) -> list[Obj]:
    product = params.text("product")
    active = params.flag("active")
    kind = params.enum("type", ("one_time", "recurring"))
    currency = params.text("currency")
    lookup_keys = params.strings("lookup_keys")
    recurring = params.hash("recurring")
    interval = recurring.text("interval") if recurring is not None else None

    def keep(price: Obj) -> bool:
        return (
            (product is None or price["product"] == product)
            and (active is None or price["active"] == active)
            and (kind is None or price["type"] == kind)
            and (currency is None or price["currency"] == currency.lower())
            and (not lookup_keys or price["lookup_key"] in lookup_keys)
            and (interval is None or (price["recurring"] or {}).get("interval") == interval)
        )

    return emu.store.all("price", keep)
