"""The Customer Portal: configurations (what a customer may do there), sessions (a link for one
customer), and what the customer's clicks on the portal page do.

A session without `configuration` uses the default one, which the emulator makes on first use as
Stripe's dashboard would (card updates, invoices and cancellation at period end; no plan switching).
The page's actions go through the same rules as the API, so each fires the webhooks Stripe fires:
- a new card: `payment_method.attached`, `customer.updated` (`invoice_settings.default_payment_method`)
  and, for each live subscription that named its own card, `customer.subscription.updated`;
  a card declined at setup (4000 0000 0000 0002) changes nothing;
- cancel (the configuration's `mode`: at period end, or now) and renew again;
- switch plan among the configuration's products and prices, with its `proration_behavior`."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gatehouse_emulators.stripe.domain import billing, customers
from gatehouse_emulators.stripe.domain.state import Emulator, changed
from gatehouse_emulators.stripe.domain.store import Obj, new_id, random_token
from gatehouse_emulators.stripe.domain.subscriptions import ENDED, items_of
from gatehouse_emulators.stripe.wire.errors import card_declined, invalid, missing_param
from gatehouse_emulators.stripe.wire.forms import Params, read_metadata_update

PRORATION = ("none", "always_invoice", "create_prorations")
CANCEL_REASONS = (
    "customer_service",
    "low_quality",
    "missing_features",
    "other",
    "switched_service",
    "too_complex",
    "too_expensive",
    "unused",
)
_CONFIG_FIELDS = ("business_profile", "default_return_url", "features", "login_page", "metadata", "name")
_UPDATED_KEYS = ("active", "business_profile", "default_return_url", "features", "login_page", "name")
CONFIGURATION = "billing_portal.configuration"


@dataclass(frozen=True)
class TestCard:
    last4: str
    brand: str
    outcome: str | None  # what the card's later payments do; None: declined when it is set up


# The test cards the portal page takes (Stripe's numbers).
TEST_CARDS = {
    "4242424242424242": TestCard("4242", "visa", "paid"),
    "5555555555554444": TestCard("4444", "mastercard", "paid"),
    "4000000000000341": TestCard("0341", "visa", "declined"),  # attaches; its charges fail
    "4000002500003155": TestCard("3155", "visa", "requires_action"),
    "4000000000000002": TestCard("0002", "visa", None),  # declined at setup
}


def _features(emu: Emulator, params: Params | None, current: Obj | None) -> Obj:
    base: Obj = copy.deepcopy(current) if current else default_features()
    if params is None:
        return base
    params.allow(
        "customer_update",
        "invoice_history",
        "payment_method_update",
        "subscription_cancel",
        "subscription_pause",
        "subscription_update",
    )
    if (p := params.hash("customer_update")) is not None:
        p.allow("allowed_updates", "enabled")
        if "enabled" in p:
            base["customer_update"]["enabled"] = bool(p.flag("enabled"))
        if "allowed_updates" in p:
            base["customer_update"]["allowed_updates"] = p.strings("allowed_updates")
    for name in ("invoice_history", "payment_method_update"):
        if (p := params.hash(name)) is not None:
            p.allow("enabled", "payment_method_configuration")
            if "enabled" in p:
                base[name]["enabled"] = bool(p.flag("enabled"))
    if (p := params.hash("subscription_cancel")) is not None:
        p.allow("cancellation_reason", "enabled", "mode", "proration_behavior")
        cancel = base["subscription_cancel"]
        if "enabled" in p:
            cancel["enabled"] = bool(p.flag("enabled"))
        cancel["mode"] = p.enum("mode", ("at_period_end", "immediately")) or cancel["mode"]
        cancel["proration_behavior"] = p.enum("proration_behavior", PRORATION) or cancel["proration_behavior"]
        if (reason := p.hash("cancellation_reason")) is not None:
            reason.allow("enabled", "options")
            if "enabled" in reason:
                cancel["cancellation_reason"]["enabled"] = bool(reason.flag("enabled"))
            if "options" in reason:
                options = reason.strings("options")
                for option in options:
                    if option not in CANCEL_REASONS:
                        raise invalid(f"Invalid option: {option}", param=reason.name("options"))
                cancel["cancellation_reason"]["options"] = options
    if (p := params.hash("subscription_pause")) is not None:
        p.allow("enabled")
        if p.flag("enabled"):
            raise invalid("The emulator does not pause subscriptions.", param=p.name("enabled"))
    if (p := params.hash("subscription_update")) is not None:
        _subscription_update(emu, p, base["subscription_update"])
    return base


def _subscription_update(emu: Emulator, p: Params, update: Obj) -> None:
    p.allow(
        "billing_cycle_anchor",
        "default_allowed_updates",
        "enabled",
        "products",
        "proration_behavior",
        "schedule_at_period_end",
        "trial_update_behavior",
    )
    if "enabled" in p:
        update["enabled"] = bool(p.flag("enabled"))
    if "default_allowed_updates" in p:
        allowed = p.strings("default_allowed_updates")
        for value in allowed:
            if value not in ("price", "promotion_code", "quantity"):
                raise invalid(f"Invalid value: {value}", param=p.name("default_allowed_updates"))
        update["default_allowed_updates"] = allowed
    update["proration_behavior"] = p.enum("proration_behavior", PRORATION) or update["proration_behavior"]
    update["billing_cycle_anchor"] = (
        p.enum("billing_cycle_anchor", ("now", "unchanged")) or update["billing_cycle_anchor"]
    )
    if "products" in p:
        products = []
        for entry in p.hashes("products"):
            entry.allow("adjustable_quantity", "prices", "product")
            product = emu.store.require(entry.text("product"), "product", "product", entry.name("product"))
            prices = entry.strings("prices")
            if not prices:
                raise missing_param(entry.name("prices"))
            for price_id in prices:
                price = emu.store.require(price_id, "price", "price", entry.name("prices"))
                if price["product"] != product["id"]:
                    raise invalid(
                        f"The price {price_id} does not belong to the product {product['id']}.",
                        param=entry.name("prices"),
                    )
            products.append(
                {
                    "adjustable_quantity": {"enabled": False, "maximum": None, "minimum": 1},
                    "prices": prices,
                    "product": product["id"],
                }
            )
        update["products"] = products
    if update["enabled"] and not update["products"]:
        raise invalid(
            "features[subscription_update][products] is required when subscription updates are enabled.",
            param=p.name("products"),
        )


def default_features() -> Obj:
    return {
        "customer_update": {"allowed_updates": ["email", "address"], "enabled": False},
        "invoice_history": {"enabled": True},
        "payment_method_update": {"enabled": True, "payment_method_configuration": None},
        "subscription_cancel": {
            "cancellation_reason": {"enabled": False, "feedback_options": None, "options": []},
            "enabled": True,
            "mode": "at_period_end",
            "proration_behavior": "none",
        },
        "subscription_pause": {"duration": {"interval_options": [], "type": "indefinite"}, "enabled": False},
        "subscription_update": {
            "billing_cycle_anchor": None,
            "default_allowed_updates": [],
            "enabled": False,
            "products": [],
            "proration_behavior": "none",
            "schedule_at_period_end": {"conditions": []},
            "trial_update_behavior": "end_trial",
        },
    }


def _business_profile(params: Params | None, current: Obj) -> Obj:
    if params is None:
        return current
    params.allow("headline", "privacy_policy_url", "terms_of_service_url")
    return {
        key: params.text(key) if key in params else current[key]
        for key in ("headline", "privacy_policy_url", "terms_of_service_url")
    }


def _login_page(params: Params | None, current: Obj) -> Obj:
    if params is None:
        return current
    params.allow("enabled")
    if params.flag("enabled"):
        return {"enabled": True, "url": f"https://billing.stripe.com/p/login/test_{random_token(14)}"}
    return {"enabled": False, "url": None}


def new_configuration(emu: Emulator, *, is_default: bool = False) -> Obj:
    now = emu.now()
    return {
        "id": new_id("bpc_"),
        "object": CONFIGURATION,
        "active": True,
        "application": None,
        "business_profile": {"headline": None, "privacy_policy_url": None, "terms_of_service_url": None},
        "created": now,
        "default_return_url": None,
        "features": default_features(),
        "is_default": is_default,
        "livemode": False,
        "login_page": {"enabled": False, "url": None},
        "metadata": {},
        "name": None,
        "updated": now,
    }


def create_configuration(emu: Emulator, params: Params) -> Obj:
    params.allow(*_CONFIG_FIELDS, "expand")
    if "features" not in params:
        raise missing_param("features")
    config = new_configuration(emu)
    _apply(emu, config, params)
    emu.store.add(config)
    emu.emit("billing_portal.configuration.created", config)
    return config


def update_configuration(emu: Emulator, config: Obj, params: Params) -> Obj:
    params.allow(*_CONFIG_FIELDS, "active", "expand")
    before = copy.deepcopy(config)
    if "active" in params:
        active = bool(params.flag("active"))
        if not active and config["is_default"]:
            raise invalid("The default configuration cannot be deactivated.", param="active")
        config["active"] = active
    _apply(emu, config, params)
    previous = changed(before, config, _UPDATED_KEYS)
    if previous or before["metadata"] != config["metadata"]:
        config["updated"] = emu.now()
        emu.emit("billing_portal.configuration.updated", config, previous or {"metadata": before["metadata"]})
    return config


def _apply(emu: Emulator, config: Obj, params: Params) -> None:
    config["features"] = _features(emu, params.hash("features"), config["features"])
    profile = params.hash("business_profile")
    config["business_profile"] = _business_profile(profile, config["business_profile"])
    config["login_page"] = _login_page(params.hash("login_page"), config["login_page"])
    if "default_return_url" in params:
        config["default_return_url"] = params.text("default_return_url")
    if "name" in params:
        config["name"] = params.text("name")
    config["metadata"] = read_metadata_update(params, config["metadata"] or {})


def default_configuration(emu: Emulator) -> Obj:
    found = emu.store.all(CONFIGURATION, lambda c: c["is_default"])
    if found:
        return found[0]
    return emu.store.add(new_configuration(emu, is_default=True))


def create_session(emu: Emulator, params: Params) -> Obj:
    params.allow("configuration", "customer", "expand", "flow_data", "locale", "on_behalf_of", "return_url")
    customer = emu.store.require(params.text("customer", required=True), "customer", "customer", "customer")
    if "flow_data" in params:
        raise invalid("The emulator's portal does not support flow_data.", param="flow_data")
    config_id = params.text("configuration")
    if config_id is not None:
        config = emu.store.require(config_id, CONFIGURATION, "configuration", "configuration")
        if not config["active"]:
            raise invalid(f"The configuration {config_id} is not active.", param="configuration")
    else:
        config = default_configuration(emu)
    return_url = params.text("return_url") or config["default_return_url"]
    if return_url is None:
        raise invalid(
            "You must provide a return_url or set a default_return_url on the configuration.",
            param="return_url",
        )
    session_id = new_id("bps_")
    session: Obj = {
        "id": session_id,
        "object": "billing_portal.session",
        "configuration": config["id"],
        "created": emu.now(),
        "customer": customer["id"],
        "customer_account": None,
        "flow": None,
        "livemode": False,
        "locale": params.text("locale"),
        "on_behalf_of": params.text("on_behalf_of"),
        "return_url": return_url,
        "url": f"{emu.context.base_url}/billing_portal/{session_id}",
    }
    emu.store.add(session)
    emu.emit("billing_portal.session.created", session)
    return session


# -- what the customer does on the page ------------------------------------------------------------


def live_subscriptions(emu: Emulator, customer_id: str) -> list[Obj]:
    return emu.store.all("subscription", lambda s: s["customer"] == customer_id and s["status"] not in ENDED)


def update_card(emu: Emulator, customer: Obj, number: str, exp_month: int, exp_year: int) -> Obj:
    """A new default card for the customer (and their subscriptions that named their own)."""
    card = TEST_CARDS.get(number.replace(" ", "").replace("-", ""))
    if card is None:
        raise invalid("Your card number is not one of Stripe's test cards.", param="card_number")
    if not 1 <= exp_month <= 12:
        raise invalid("Your card's expiration month is invalid.", param="exp_month")
    year, month = _today(emu)
    if (exp_year, exp_month) < (year, month):
        raise invalid("Your card's expiration year is in the past.", param="exp_year")
    if card.outcome is None:
        raise card_declined()
    pm = customers.create_payment_method(
        emu, card.outcome, customer.get("email"), card=(card.last4, card.brand, exp_month, exp_year)
    )
    customers.attach_payment_method(emu, customer, pm)
    customers.set_payment_outcome(customer, card.outcome)
    before = copy.deepcopy(customer)
    customer["invoice_settings"] = {**customer["invoice_settings"], "default_payment_method": pm["id"]}
    emu.emit("customer.updated", customer, changed(before, customer, ("invoice_settings",)))
    for sub in live_subscriptions(emu, customer["id"]):
        if sub.get("default_payment_method"):
            billing.update_subscription(emu, sub, Params({"default_payment_method": pm["id"]}))
    return pm


def _today(emu: Emulator) -> tuple[int, int]:
    now = datetime.fromtimestamp(emu.now(), UTC)
    return now.year, now.month


def cancel(emu: Emulator, config: Obj, sub: Obj, reason: str | None) -> Obj:
    feature = config["features"]["subscription_cancel"]
    if not feature["enabled"]:
        raise invalid("This portal does not cancel subscriptions.")
    if reason is not None and reason not in CANCEL_REASONS:
        raise invalid(f"Invalid cancellation reason: {reason}", param="reason")
    details: dict[str, Any] = {"feedback": reason} if reason else {}
    if feature["mode"] == "immediately":
        return billing.cancel_subscription(emu, sub, Params({"cancellation_details": details}))
    return billing.update_subscription(
        emu, sub, Params({"cancel_at_period_end": "true", "cancellation_details": details})
    )


def renew(emu: Emulator, sub: Obj) -> Obj:
    if not sub["cancel_at_period_end"] and sub.get("cancel_at") is None:
        raise invalid("This subscription is not set to cancel.")
    return billing.update_subscription(emu, sub, Params({"cancel_at_period_end": "false"}))


def switchable_prices(config: Obj) -> list[str]:
    feature = config["features"]["subscription_update"]
    if not feature["enabled"] or "price" not in feature["default_allowed_updates"]:
        return []
    return [price for product in feature["products"] or [] for price in product["prices"]]


def switch_price(emu: Emulator, config: Obj, sub: Obj, price_id: str) -> Obj:
    if price_id not in switchable_prices(config):
        raise invalid("This plan is not offered in this portal.", param="price")
    items = items_of(sub)
    if len(items) != 1:
        raise invalid("The portal switches subscriptions of one item only.")
    if items[0]["price"] == price_id:
        raise invalid("You are already on this plan.", param="price")
    feature = config["features"]["subscription_update"]
    params: dict[str, Any] = {
        "items": [{"id": items[0]["id"], "price": price_id}],
        "proration_behavior": feature["proration_behavior"],
    }
    if feature["billing_cycle_anchor"] == "now":
        params["billing_cycle_anchor"] = "now"
    return billing.update_subscription(emu, sub, Params(params))
