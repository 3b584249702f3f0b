"""Invoices, their lines and pending invoice items; status changes draft → open → paid/void/uncollectible.

As in Stripe, `period_start`/`period_end` of a subscription invoice is the period that *ended*
(zero-length on the first invoice); the service period of each charge is on its line
(`lines.data[].period`). A negative total becomes a credit on the customer's `balance`, and a
credit balance is applied to the next invoice before it is charged."""

from __future__ import annotations

from dataclasses import dataclass

from gatehouse_emulators.stripe.domain import discounts
from gatehouse_emulators.stripe.domain.state import Emulator
from gatehouse_emulators.stripe.domain.store import Obj, list_object, new_id


@dataclass
class Charge:
    """One line to bill: a subscription item's price for a period, or a proration."""

    amount: int
    description: str
    price: Obj
    quantity: int
    start: int
    end: int
    subscription: str | None = None
    subscription_item: str | None = None
    proration: bool = False


def line_from_charge(charge: Charge, invoice_id: str | None, *, preview: bool = False) -> Obj:
    parent: Obj = {
        "type": "subscription_item_details",
        "invoice_item_details": None,
        "subscription_item_details": {
            "invoice_item": None,
            "proration": charge.proration,
            "proration_details": {"credited_items": None},
            "subscription": charge.subscription,
            "subscription_item": charge.subscription_item,
        },
    }
    return _line(charge, invoice_id, parent, preview)


def line_from_item(item: Obj, price: Obj, invoice_id: str | None, *, preview: bool = False) -> Obj:
    charge = Charge(
        amount=item["amount"],
        description=item["description"],
        price=price,
        quantity=item["quantity"],
        start=item["period"]["start"],
        end=item["period"]["end"],
        proration=item["proration"],
    )
    details = item["parent"]["subscription_details"] or {}
    parent: Obj = {
        "type": "invoice_item_details",
        "invoice_item_details": {
            "invoice_item": item["id"],
            "proration": item["proration"],
            "proration_details": {"credited_items": None},
            "subscription": details.get("subscription"),
        },
        "subscription_item_details": None,
    }
    return _line(charge, invoice_id, parent, preview)


def _line(charge: Charge, invoice_id: str | None, parent: Obj, preview: bool) -> Obj:
    return {
        "id": new_id("il_tmp_" if preview else "il_"),
        "object": "line_item",
        "amount": charge.amount,
        "currency": charge.price["currency"],
        "description": charge.description,
        "discount_amounts": [],
        "discountable": not charge.proration,
        "discounts": [],
        "invoice": invoice_id,
        "livemode": False,
        "metadata": {},
        "parent": parent,
        "period": {"end": charge.end, "start": charge.start},
        "pretax_credit_amounts": [],
        "pricing": {
            "price_details": {"price": charge.price["id"], "product": charge.price["product"]},
            "type": "price_details",
            "unit_amount_decimal": charge.price["unit_amount_decimal"],
        },
        "quantity": charge.quantity,
        "quantity_decimal": str(charge.quantity),
        "subscription": charge.subscription,
        "subtotal": charge.amount,
        "taxes": [],
    }


def create_invoice_item(emu: Emulator, customer: Obj, charge: Charge) -> Obj:
    item: Obj = {
        "id": new_id("ii_"),
        "object": "invoiceitem",
        "amount": charge.amount,
        "currency": charge.price["currency"],
        "customer": customer["id"],
        "customer_account": None,
        "date": emu.now(),
        "description": charge.description,
        "discountable": False,
        "discounts": [],
        "invoice": None,
        "livemode": False,
        "metadata": {},
        "net_amount": charge.amount,
        "parent": {
            "type": "subscription_details",
            "subscription_details": {
                "subscription": charge.subscription,
                "subscription_item": charge.subscription_item,
            },
        },
        "period": {"end": charge.end, "start": charge.start},
        "pricing": {
            "price_details": {"price": charge.price["id"], "product": charge.price["product"]},
            "type": "price_details",
            "unit_amount_decimal": charge.price["unit_amount_decimal"],
        },
        "proration": charge.proration,
        "quantity": charge.quantity,
        "quantity_decimal": str(charge.quantity),
        "tax_rates": [],
        "test_clock": None,
    }
    emu.store.add(item)
    emu.emit("invoiceitem.created", item)
    return item


def pending_items(emu: Emulator, subscription_id: str) -> list[Obj]:
    items = emu.store.all(
        "invoiceitem",
        lambda i: (
            i["invoice"] is None
            and (i["parent"]["subscription_details"] or {}).get("subscription") == subscription_id
        ),
    )
    return list(reversed(items))  # oldest first, as lines


def invoice_shape(
    emu: Emulator,
    invoice_id: str,
    customer: Obj,
    subscription: Obj | None,
    billing_reason: str,
    lines: list[Obj],
    period: tuple[int, int],
    currency: str,
) -> Obj:
    subtotal = sum(line["amount"] for line in lines)
    now = emu.now()
    parent = None
    if subscription is not None:
        parent = {
            "type": "subscription_details",
            "quote_details": None,
            "subscription_details": {
                "metadata": dict(subscription["metadata"]),
                "subscription": subscription["id"],
            },
        }
    return {
        "id": invoice_id,
        "object": "invoice",
        "account_country": "US",
        "account_name": "Gatehouse (Stripe emulator)",
        "account_tax_ids": None,
        "amount_due": subtotal,
        "amount_overpaid": 0,
        "amount_paid": 0,
        "amount_remaining": subtotal,
        "amount_shipping": 0,
        "application": None,
        "attempt_count": 0,
        "attempted": False,
        "auto_advance": True,
        "automatic_tax": {
            "disabled_reason": None,
            "enabled": False,
            "liability": None,
            "provider": None,
            "status": None,
        },
        "automatically_finalizes_at": None,
        "billing_reason": billing_reason,
        "collection_method": "charge_automatically",
        "created": now,
        "currency": currency,
        "custom_fields": None,
        "customer": customer["id"],
        "customer_account": None,
        "customer_address": customer.get("address"),
        "customer_email": customer.get("email"),
        "customer_name": customer.get("name"),
        "customer_phone": customer.get("phone"),
        "customer_shipping": None,
        "customer_tax_exempt": customer.get("tax_exempt", "none"),
        "customer_tax_ids": [],
        "default_payment_method": None,
        "default_source": None,
        "default_tax_rates": [],
        "description": None,
        "discounts": [],
        "due_date": None,
        "effective_at": None,
        "ending_balance": None,
        "footer": None,
        "from_invoice": None,
        "hosted_invoice_url": None,
        "invoice_pdf": None,
        "issuer": {"type": "self"},
        "last_finalization_error": None,
        "latest_revision": None,
        "lines": list_object(lines, False, f"/v1/invoices/{invoice_id}/lines"),
        "livemode": False,
        "metadata": {},
        "next_payment_attempt": None,
        "number": None,
        "on_behalf_of": None,
        "parent": parent,
        "payment_settings": {
            "default_mandate": None,
            "payment_method_options": None,
            "payment_method_types": None,
        },
        "period_end": period[1],
        "period_start": period[0],
        "post_payment_credit_notes_amount": 0,
        "pre_payment_credit_notes_amount": 0,
        "receipt_number": None,
        "rendering": None,
        "shipping_cost": None,
        "shipping_details": None,
        "starting_balance": customer.get("balance", 0),
        "statement_descriptor": None,
        "status": "draft",
        "status_transitions": {
            "finalized_at": None,
            "marked_uncollectible_at": None,
            "paid_at": None,
            "voided_at": None,
        },
        "subtotal": subtotal,
        "subtotal_excluding_tax": subtotal,
        "test_clock": None,
        "total": subtotal,
        "total_discount_amounts": [],
        "total_excluding_tax": subtotal,
        "total_pretax_credit_amounts": [],
        "total_taxes": [],
        "webhooks_delivered_at": None,
    }


def apply_discounts(invoice: Obj, totals: list[Obj]) -> None:
    """Lower the draft invoice's total by what its lines' discounts took off."""
    if not totals:
        return
    taken = sum(t["amount"] for t in totals)
    total = invoice["subtotal"] - taken
    invoice.update(
        discounts=[t["discount"] for t in totals],
        total_discount_amounts=totals,
        total=total,
        total_excluding_tax=total,
        amount_due=total,
        amount_remaining=total,
    )


def apply_balance(invoice: Obj, balance: int) -> int:
    """Fill in the amounts from the customer's balance (negative = credit); returns the new balance."""
    applied = invoice["total"] + balance
    invoice["starting_balance"] = balance
    invoice["amount_due"] = max(0, applied)
    invoice["amount_remaining"] = max(0, applied)
    invoice["ending_balance"] = min(0, applied)
    return min(0, applied)


def create_invoice(
    emu: Emulator,
    customer: Obj,
    subscription: Obj | None,
    billing_reason: str,
    charges: list[Charge],
    period: tuple[int, int],
    currency: str,
) -> Obj:
    """A draft invoice with a line per charge plus the subscription's pending invoice items."""
    invoice_id = new_id("in_")
    lines = [line_from_charge(c, invoice_id) for c in charges]
    if subscription is not None:
        for item in pending_items(emu, subscription["id"]):
            price = emu.store.get(item["pricing"]["price_details"]["price"], "price")
            if price is not None:
                lines.append(line_from_item(item, price, invoice_id))
                item["invoice"] = invoice_id
    invoice = invoice_shape(emu, invoice_id, customer, subscription, billing_reason, lines, period, currency)
    if subscription is not None:
        discounts.expire_due(emu, subscription)
        apply_discounts(invoice, discounts.discount_lines(emu, subscription, lines))
    emu.store.add(invoice)
    emu.emit("invoice.created", invoice)
    return invoice


def finalize(emu: Emulator, invoice: Obj, customer: Obj) -> None:
    now = emu.now()
    balance = customer.get("balance", 0)
    new_balance = apply_balance(invoice, balance)
    if new_balance != balance:
        customer["balance"] = new_balance
        emu.emit("customer.updated", customer, {"balance": balance})
    invoice["number"] = f"{customer['invoice_prefix']}-{customer['next_invoice_sequence']:04d}"
    customer["next_invoice_sequence"] += 1
    invoice["status"] = "open"
    invoice["effective_at"] = now
    invoice["status_transitions"]["finalized_at"] = now
    invoice["hosted_invoice_url"] = f"{emu.context.base_url}/invoices/{invoice['id']}"
    invoice["invoice_pdf"] = f"{emu.context.base_url}/invoices/{invoice['id']}/pdf"
    emu.emit("invoice.finalized", invoice)


def mark_paid(emu: Emulator, invoice: Obj) -> None:
    invoice.update(
        status="paid",
        amount_paid=invoice["amount_due"],
        amount_remaining=0,
        attempted=True,
        next_payment_attempt=None,
    )
    invoice["status_transitions"]["paid_at"] = emu.now()
    emu.emit("invoice.paid", invoice)
    emu.emit("invoice.payment_succeeded", invoice)


def void(emu: Emulator, invoice: Obj) -> None:
    invoice.update(status="void", amount_remaining=0, next_payment_attempt=None)
    invoice["status_transitions"]["voided_at"] = emu.now()
    emu.emit("invoice.voided", invoice)


def mark_uncollectible(emu: Emulator, invoice: Obj) -> None:
    invoice.update(status="uncollectible", next_payment_attempt=None)
    invoice["status_details"] = {"uncollectible": {"reason": "user_forgiven"}}
    invoice["status_transitions"]["marked_uncollectible_at"] = emu.now()
    emu.emit("invoice.marked_uncollectible", invoice)


def open_invoices(emu: Emulator, subscription_id: str) -> list[Obj]:
    return emu.store.all("invoice", lambda i: i["status"] == "open" and subscription_of(i) == subscription_id)


def subscription_of(invoice: Obj) -> str | None:
    parent = invoice.get("parent") or {}
    details = parent.get("subscription_details") or {}
    value = details.get("subscription")
    return value if isinstance(value, str) else None
