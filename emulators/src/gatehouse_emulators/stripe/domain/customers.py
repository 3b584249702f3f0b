"""Customers, their (test) cards, and the outcome their next payment will have."""

from __future__ import annotations

import copy
import re
import secrets
import string

from gatehouse_emulators.stripe.domain.state import PAYMENT_OUTCOMES, Emulator, changed
from gatehouse_emulators.stripe.domain.store import Obj, new_id
from gatehouse_emulators.stripe.wire.errors import invalid
from gatehouse_emulators.stripe.wire.forms import Params, read_metadata_update

CUSTOMER_FIELDS = (
    "address",
    "balance",
    "description",
    "email",
    "expand",
    "invoice_settings",
    "metadata",
    "name",
    "payment_method",
    "phone",
    "preferred_locales",
    "shipping",
    "tax_exempt",
    "test_clock",
)
_UPDATABLE = ("address", "balance", "description", "email", "invoice_settings", "metadata", "name", "phone")
# Test cards: what each outcome looks like on the PaymentMethod.
CARDS = {"paid": "4242", "declined": "0002", "requires_action": "3155"}


def _address(params: Params, key: str) -> dict[str, str | None] | None:
    sub = params.hash(key)
    if sub is None:
        return None
    sub.allow("city", "country", "line1", "line2", "postal_code", "state")
    return {k: sub.text(k) for k in ("city", "country", "line1", "line2", "postal_code", "state")}


def _apply(emu: Emulator, customer: Obj, params: Params) -> None:
    for key in ("description", "email", "name", "phone"):
        if key in params:
            customer[key] = params.text(key)
    if "address" in params:
        customer["address"] = _address(params, "address")
    if "balance" in params:
        customer["balance"] = params.integer("balance") or 0
    if "tax_exempt" in params:
        customer["tax_exempt"] = params.enum("tax_exempt", ("exempt", "none", "reverse")) or "none"
    if "preferred_locales" in params:
        customer["preferred_locales"] = params.strings("preferred_locales")
    settings = params.hash("invoice_settings")
    if settings is not None:
        settings.allow("custom_fields", "default_payment_method", "footer", "rendering_options")
        if "default_payment_method" in settings:
            pm_id = settings.text("default_payment_method")
            if pm_id is not None:
                emu.store.require(
                    pm_id, "payment_method", "PaymentMethod", "invoice_settings[default_payment_method]"
                )
            customer["invoice_settings"] = {**customer["invoice_settings"], "default_payment_method": pm_id}
        if "footer" in settings:
            customer["invoice_settings"] = {**customer["invoice_settings"], "footer": settings.text("footer")}
    customer["metadata"] = read_metadata_update(params, customer["metadata"])


def _invoice_prefix() -> str:
    return "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(8))


def new_customer(emu: Emulator, email: str | None = None, name: str | None = None) -> Obj:
    return {
        "id": new_id("cus_", 14),
        "object": "customer",
        "address": None,
        "balance": 0,
        "created": emu.now(),
        "currency": None,
        "customer_account": None,
        "default_source": None,
        "delinquent": False,
        "description": None,
        "discount": None,
        "email": email,
        "invoice_prefix": _invoice_prefix(),
        "invoice_settings": {
            "custom_fields": None,
            "default_payment_method": None,
            "footer": None,
            "rendering_options": None,
        },
        "livemode": False,
        "metadata": {},
        "name": name,
        "next_invoice_sequence": 1,
        "phone": None,
        "preferred_locales": [],
        "shipping": None,
        "tax_exempt": "none",
        "test_clock": None,
        "_payment_outcome": "paid",
    }


def create_customer(emu: Emulator, params: Params) -> Obj:
    params.allow(*CUSTOMER_FIELDS)
    customer = new_customer(emu)
    _apply(emu, customer, params)
    clock_id = params.text("test_clock")
    if clock_id is not None:  # recorded for the shape; every object shares the one emulator clock
        customer["test_clock"] = emu.store.require(
            clock_id, "test_helpers.test_clock", "test_clock", "test_clock"
        )["id"]
    pm_id = params.text("payment_method")
    emu.store.add(customer)
    emu.emit("customer.created", customer)
    if pm_id is not None:
        attach_payment_method(emu, customer, emu.store.require(pm_id, "payment_method", "PaymentMethod"))
    return customer


def add_customer(emu: Emulator, email: str | None, name: str | None = None) -> Obj:
    customer = emu.store.add(new_customer(emu, email, name))
    emu.emit("customer.created", customer)
    return customer


def update_customer(emu: Emulator, customer: Obj, params: Params) -> Obj:
    params.allow(*(f for f in CUSTOMER_FIELDS if f != "test_clock"))
    before = copy.deepcopy(customer)
    _apply(emu, customer, params)
    previous = changed(before, customer, _UPDATABLE)
    if previous:
        emu.emit("customer.updated", customer, previous)
    return customer


def matches(customer: Obj, email: str | None) -> bool:
    if customer.get("deleted"):
        return False
    return email is None or customer.get("email") == email


_CLAUSE = re.compile(r"""^\s*(metadata\[['"]([^'"]+)['"]\]|[a-z_]+)\s*(:|~)\s*['"]([^'"]*)['"]\s*$""")


def search(emu: Emulator, query: str) -> list[Obj]:
    """A subset of Stripe's search language: `field:'value'` / `field~'sub'` clauses joined by one of
    AND / OR, on email, name, phone, description and metadata['key']."""
    joiner = " OR " if " OR " in query else " AND "
    clauses = []
    for part in query.split(joiner):
        match = _CLAUSE.match(part)
        if match is None:
            raise invalid(f"The query is invalid or not supported by the emulator: {query}", param="query")
        field, meta_key, op, value = match.groups()
        if meta_key is None and field not in ("email", "name", "phone", "description"):
            raise invalid(f"Field '{field}' is not supported by the emulator's search.", param="query")
        clauses.append((meta_key, field, op, value))

    def hit(customer: Obj) -> bool:
        results = []
        for meta_key, field, op, value in clauses:
            actual = customer["metadata"].get(meta_key) if meta_key else customer.get(field)
            actual = actual or ""
            results.append(actual == value if op == ":" else value.lower() in actual.lower())
        return any(results) if joiner == " OR " else all(results)

    return emu.store.all("customer", lambda c: not c.get("deleted") and hit(c))


def create_payment_method(
    emu: Emulator, outcome: str, email: str | None = None, card: tuple[str, str, int, int] | None = None
) -> Obj:
    """A card PaymentMethod: the outcome's test card, or `card` (last4, brand, exp_month, exp_year)."""
    last4, brand, exp_month, exp_year = card or (CARDS.get(outcome, "4242"), "visa", 12, 2034)
    pm: Obj = {
        "id": new_id("pm_"),
        "object": "payment_method",
        "allow_redisplay": "unspecified",
        "billing_details": {"address": None, "email": email, "name": None, "phone": None, "tax_id": None},
        "card": {
            "brand": brand,
            "checks": {"address_line1_check": None, "address_postal_code_check": None, "cvc_check": "pass"},
            "country": "US",
            "display_brand": brand,
            "exp_month": exp_month,
            "exp_year": exp_year,
            "funding": "credit",
            "generated_from": None,
            "last4": last4,
            "networks": {"available": [brand], "preferred": None},
            "regulated_status": "unregulated",
            "three_d_secure_usage": {"supported": True},
            "wallet": None,
        },
        "created": emu.now(),
        "customer": None,
        "customer_account": None,
        "livemode": False,
        "metadata": {},
        "type": "card",
    }
    return emu.store.add(pm)


def attach_payment_method(emu: Emulator, customer: Obj, pm: Obj) -> None:
    pm["customer"] = customer["id"]
    emu.emit("payment_method.attached", pm)
    outcome = next((o for o, last4 in CARDS.items() if last4 == pm["card"]["last4"]), "paid")
    customer["_payment_outcome"] = outcome


def set_payment_outcome(customer: Obj, outcome: str) -> None:
    if outcome not in PAYMENT_OUTCOMES:
        raise invalid(f"outcome must be one of {', '.join(PAYMENT_OUTCOMES)}", param="outcome")
    customer["_payment_outcome"] = outcome


def customer_of(emu: Emulator, obj: Obj) -> Obj:
    customer = emu.store.get(obj["customer"], "customer")
    assert customer is not None
    return customer
