"""Collecting invoices, and how a subscription's status follows its payments.

Status rules (Stripe's defaults, simplified):
- the first invoice paid → `incomplete` becomes `active` (`trialing` subscriptions start with a $0 paid
  invoice); unpaid first invoice → stays `incomplete` (expires after 23 h, see lifecycle.py);
- a renewal, trial-end or plan-change invoice that fails → `past_due`; it is retried after
  `dunning_retry_days` (3, 5, 7 days apart by default), each failure emitting `invoice.payment_failed`
  (the retries and what follows the last one are billing.py's `retry_invoice`);
- an invoice paid, voided or marked uncollectible while `past_due`/`unpaid` with no other open
  invoice → `active`."""

from __future__ import annotations

from gatehouse_emulators.stripe.domain import invoices, payments
from gatehouse_emulators.stripe.domain.clock import DAY
from gatehouse_emulators.stripe.domain.customers import customer_of
from gatehouse_emulators.stripe.domain.state import Emulator
from gatehouse_emulators.stripe.domain.store import Obj
from gatehouse_emulators.stripe.domain.subscriptions import publish, snapshot
from gatehouse_emulators.stripe.wire.errors import card_declined, invalid
from gatehouse_emulators.stripe.wire.forms import Params


def collect(emu: Emulator, invoice: Obj) -> str:
    """One payment attempt on an open invoice; moves its subscription's status. Returns the outcome."""
    customer = customer_of(emu, invoice)
    sub = emu.store.get(invoices.subscription_of(invoice) or "", "subscription")
    if invoice["amount_remaining"] == 0:
        invoices.mark_paid(emu, invoice)
        _on_paid(emu, sub)
        return "paid"
    payment_method = (sub or {}).get("default_payment_method") or customer["invoice_settings"][
        "default_payment_method"
    ]
    intent = payments.ensure_intent(emu, invoice, payment_method)
    outcome = payments.attempt(emu, intent, customer["_payment_outcome"])
    invoice["attempt_count"] += 1
    invoice["attempted"] = True
    if outcome == "paid":
        invoices.mark_paid(emu, invoice)
        _on_paid(emu, sub)
        return outcome
    retries = invoice.get("_retries", 0)
    days = emu.config.dunning_retry_days
    retryable = sub is not None and invoice["billing_reason"] != "subscription_create"
    invoice["next_payment_attempt"] = (
        emu.now() + days[retries] * DAY if retryable and retries < len(days) else None
    )
    if outcome == "requires_action":
        emu.emit("invoice.payment_action_required", invoice)
    else:
        emu.emit("invoice.payment_failed", invoice)
    if (
        sub is not None
        and sub["status"] in ("active", "trialing")
        and invoice["billing_reason"] != "subscription_create"
    ):
        sub["status"] = "past_due"
    return outcome


def _on_paid(emu: Emulator, sub: Obj | None) -> None:
    if sub is None:
        return
    if sub["status"] == "incomplete":
        sub["status"] = "active"
    else:
        _reactivate_if_settled(emu, sub)


def _reactivate_if_settled(emu: Emulator, sub: Obj) -> None:
    """A past-due or unpaid subscription with no open invoice left is active again."""
    if sub["status"] in ("past_due", "unpaid") and not invoices.open_invoices(emu, sub["id"]):
        sub["status"] = "active"


def void_invoice(emu: Emulator, invoice: Obj) -> Obj:
    if invoice["status"] != "open":
        raise invalid("You can only void an open invoice.")
    payments.cancel_intent(emu, invoice)
    invoices.void(emu, invoice)
    _settle(emu, invoice)
    return invoice


def mark_uncollectible(emu: Emulator, invoice: Obj) -> Obj:
    if invoice["status"] != "open":
        raise invalid("You can only mark an open invoice as uncollectible.")
    invoices.mark_uncollectible(emu, invoice)
    _settle(emu, invoice)
    return invoice


def _settle(emu: Emulator, invoice: Obj) -> None:
    """The invoice no longer needs paying: its past-due subscription may be active again."""
    sub = emu.store.get(invoices.subscription_of(invoice) or "", "subscription")
    if sub is None or sub["status"] not in ("past_due", "unpaid"):
        return
    before = snapshot(emu, sub)
    _reactivate_if_settled(emu, sub)
    publish(emu, sub, before)


def pay_invoice(emu: Emulator, invoice: Obj, params: Params) -> Obj:
    params.allow(
        "expand", "off_session", "paid_out_of_band", "payment_method", "source", "forgive", "mandate"
    )
    if invoice["status"] == "draft":
        invoices.finalize(emu, invoice, customer_of(emu, invoice))
    if invoice["status"] != "open":
        raise invalid(
            "Invoice is already paid" if invoice["status"] == "paid" else "This invoice cannot be paid."
        )
    sub = emu.store.get(invoices.subscription_of(invoice) or "", "subscription")
    before = snapshot(emu, sub) if sub else None
    if params.flag("paid_out_of_band"):
        invoices.mark_paid(emu, invoice)
        _on_paid(emu, sub)
        outcome = "paid"
    else:
        outcome = collect(emu, invoice)
    if sub is not None and before is not None:
        publish(emu, sub, before)
    if outcome != "paid":
        intent = emu.store.get(invoice.get("_payment_intent") or "", "payment_intent")
        raise card_declined(charge_or_intent=emu.render(intent) if intent else None)
    return invoice
