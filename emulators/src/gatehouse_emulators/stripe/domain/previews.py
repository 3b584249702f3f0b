"""Invoice previews: `POST /v1/invoices/create_preview` and the `invoice.upcoming` event.

For an existing subscription with proposed `subscription_details[items]`: with
`proration_behavior=always_invoice` (or a billing-interval change) the preview is the invoice the
change would raise at once (`billing_reason` `subscription_update`); otherwise it is the next
renewal invoice (`billing_reason` `upcoming`) with the change's proration lines, pending invoice
items, and the next period at the new prices. Without a subscription, `customer` plus
`subscription_details[items]` previews a new subscription's first invoice. Nothing is stored."""

from __future__ import annotations

from gatehouse_emulators.stripe.domain import invoices
from gatehouse_emulators.stripe.domain.billing import (
    PRORATION_BEHAVIORS,
    item_specs,
    trial_end_from,
)
from gatehouse_emulators.stripe.domain.clock import add_interval, next_period_end
from gatehouse_emulators.stripe.domain.customers import customer_of
from gatehouse_emulators.stripe.domain.invoices import Charge, line_from_charge, line_from_item
from gatehouse_emulators.stripe.domain.state import Emulator
from gatehouse_emulators.stripe.domain.store import Obj, random_token
from gatehouse_emulators.stripe.domain.subscriptions import (
    ENDED,
    cycle,
    items_of,
    new_subscription,
    period,
    period_charges,
    plan_change,
)
from gatehouse_emulators.stripe.wire.errors import StripeError, invalid
from gatehouse_emulators.stripe.wire.forms import Params, read_metadata_update


def preview_invoice(emu: Emulator, params: Params) -> Obj:
    """POST /v1/invoices/create_preview for a subscription (change) or a new subscription."""
    params.allow(
        "automatic_tax",
        "currency",
        "customer",
        "customer_details",
        "discounts",
        "expand",
        "issuer",
        "preview_mode",
        "subscription",
        "subscription_details",
    )
    details = params.hash("subscription_details") or Params({}, "subscription_details")
    details.allow(
        "billing_cycle_anchor",
        "cancel_at",
        "cancel_at_period_end",
        "cancel_now",
        "default_tax_rates",
        "items",
        "metadata",
        "proration_behavior",
        "proration_date",
        "resume_at",
        "start_date",
        "trial_end",
    )
    sub_id, customer_id = params.text("subscription"), params.text("customer")
    sub: Obj | None = None
    if sub_id:
        sub = emu.store.require(sub_id, "subscription", "subscription", "subscription")
        if customer_id and customer_id != sub["customer"]:
            raise invalid("The subscription does not belong to this customer.", param="customer")
        customer = customer_of(emu, sub)
    elif customer_id:
        customer = emu.store.require(customer_id, "customer", "customer", "customer")
        if details.raw("items") is None:
            subs = emu.store.all(
                "subscription", lambda s: s["customer"] == customer_id and s["status"] not in ENDED
            )
            if not subs:
                raise _no_upcoming(customer_id)
            sub = subs[0]
    else:
        raise StripeError(400, "Missing required param: customer or subscription.", code="parameter_missing")
    if sub is None:
        return _preview_new(emu, customer, details)
    return _preview_change(emu, customer, sub, details)


def _no_upcoming(customer_id: str) -> StripeError:
    return StripeError(404, f"No upcoming invoices for customer: {customer_id}", code="invoice_upcoming_none")


def _preview_new(emu: Emulator, customer: Obj, details: Params) -> Obj:
    specs = item_specs(emu, details, "items")
    trial_end = trial_end_from(emu, details)
    sub = new_subscription(
        emu, customer, specs, metadata=read_metadata_update(details, {}), trial_end=trial_end
    )
    start, end = period(sub)
    charges = period_charges(emu, sub, items_of(sub), start, end)
    return _preview(emu, customer, None, "subscription_create", charges, [], (start, start), None)


def upcoming_invoice(emu: Emulator, sub: Obj) -> Obj:
    """The next invoice as `invoice.upcoming` shows it: a preview without an id (Stripe's docs: "The
    received Invoice object will not have an invoice ID"; the conformance check knows)."""
    preview = _preview_change(emu, customer_of(emu, sub), sub, Params({}, "subscription_details"))
    preview.pop("id")
    return preview


def _preview_change(emu: Emulator, customer: Obj, sub: Obj, details: Params) -> Obj:
    if sub["status"] in ENDED:
        raise _no_upcoming(customer["id"])
    behavior = details.enum("proration_behavior", PRORATION_BEHAVIORS) or "create_prorations"
    moment = details.integer("proration_date") or emu.now()
    updates = details.hashes("items")
    change = plan_change(emu, sub, updates, behavior, moment, apply_ids=False) if updates else None
    pending = invoices.pending_items(emu, sub["id"])
    start, end = period(sub)
    immediate = (
        change is not None
        and change.changed
        and sub["status"] != "trialing"
        and (behavior == "always_invoice" or change.cycle_reset)
    )
    if change is not None and immediate:
        charges = list(change.prorations)
        if change.cycle_reset:
            probe = {**sub, "items": {"data": change.items}}
            interval, count = cycle(emu, probe)
            charges += period_charges(emu, sub, change.items, moment, add_interval(moment, interval, count))
        return _preview(emu, customer, sub, "subscription_update", charges, pending, (moment, moment), moment)
    cancels = details.flag("cancel_at_period_end")
    if (sub["cancel_at_period_end"] if cancels is None else cancels) or details.flag("cancel_now"):
        raise _no_upcoming(customer["id"])
    items = change.items if change is not None else items_of(sub)
    probe = {**sub, "items": {"data": items}}
    interval, count = cycle(emu, probe)
    next_end = next_period_end(sub["billing_cycle_anchor"], interval, count, after=end)
    prorations = change.prorations if change is not None else []
    renewal = {**sub, "status": "active"}
    charges = prorations + period_charges(emu, renewal, items, end, next_end)
    proration_date = moment if prorations else None
    return _preview(emu, customer, sub, "upcoming", charges, pending, (start, end), proration_date)


def _preview(
    emu: Emulator,
    customer: Obj,
    sub: Obj | None,
    reason: str,
    charges: list[Charge],
    pending: list[Obj],
    span: tuple[int, int],
    proration_date: int | None,
) -> Obj:
    lines = []
    for item in pending:
        price = emu.store.get(item["pricing"]["price_details"]["price"], "price")
        if price is not None:
            lines.append(line_from_item(item, price, None, preview=True))
    lines += [line_from_charge(c, None, preview=True) for c in charges]
    currency = sub["currency"] if sub else (charges[0].price["currency"] if charges else "usd")
    invoice = invoices.invoice_shape(
        emu, "upcoming_in_" + random_token(), customer, sub, reason, lines, span, currency
    )
    invoices.apply_balance(invoice, customer.get("balance", 0))
    if invoice["parent"] is not None and proration_date is not None:
        invoice["parent"]["subscription_details"]["subscription_proration_date"] = proration_date
    invoice["lines"]["url"] = "/v1/invoices/create_preview/lines"
    return invoice
