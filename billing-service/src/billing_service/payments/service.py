"""Payments: one row per Stripe invoice of one of our subscriptions, applied forward only.

An invoice event is applied from its payload (invoices carry their own state; no re-read is needed)
under these rules, whatever order or multiplicity the events arrive in:
- the row is created once (unique invoice id, INSERT … ON CONFLICT DO NOTHING);
- paid, void and uncollectible are terminal: nothing changes a row after them;
- a failure counts only if its `attempt_count` is higher than the one recorded.
`payment.succeeded` is emitted when a row becomes paid (once: paid is terminal) and `payment.failed`
when the recorded attempt count grows, so duplicates cannot emit twice. A renewal paid after a failed
attempt (Stripe's `attempt_count` above 1, or a failure recorded here) is also `payment.recovered`,
whichever of its events arrives first. A paid $0 invoice (a trial
start) is recorded without an event. Failures of the first invoice, taken while the customer is on
the Checkout page, are recorded without an event too: the page tells them.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from billing_service import publishing
from billing_service.customers.repository import CustomerRepository
from billing_service.integrations.stripe import InvoiceSnapshot
from billing_service.models import TERMINAL_PAYMENT_STATUSES, Payment, PaymentStatus, Subscription
from billing_service.pagination import decode_time_cursor, page_of
from billing_service.payments.repository import PaymentRepository
from billing_service.plans.repository import PlanRepository
from billing_service.subscriptions.repository import SubscriptionRepository
from gatehouse_platform.db import utcnow

FIRST_INVOICE = "subscription_create"


class InvoiceChange(enum.StrEnum):
    PAID = "paid"
    FAILED = "failed"
    ACTION_REQUIRED = "action_required"
    VOIDED = "voided"
    UNCOLLECTIBLE = "uncollectible"


_STATUS = {
    InvoiceChange.PAID: PaymentStatus.PAID,
    InvoiceChange.FAILED: PaymentStatus.FAILED,
    InvoiceChange.ACTION_REQUIRED: PaymentStatus.REQUIRES_ACTION,
    InvoiceChange.VOIDED: PaymentStatus.VOID,
    InvoiceChange.UNCOLLECTIBLE: PaymentStatus.UNCOLLECTIBLE,
}
_FAILURES = (InvoiceChange.FAILED, InvoiceChange.ACTION_REQUIRED)
_FAILED_STATUSES = (PaymentStatus.FAILED, PaymentStatus.REQUIRES_ACTION)


def _failure_reason(change: InvoiceChange) -> str | None:
    return "authentication_required" if change == InvoiceChange.ACTION_REQUIRED else None


async def subscription_of(db: AsyncSession, invoice: InvoiceSnapshot) -> Subscription | None:
    subscriptions = SubscriptionRepository(db)
    row = await subscriptions.by_stripe_id(invoice.subscription_id) if invoice.subscription_id else None
    if row is None and invoice.subscription_metadata.get("subscription_id"):
        try:
            row = await subscriptions.get(uuid.UUID(invoice.subscription_metadata["subscription_id"]))
        except ValueError:
            return None
    return row


@dataclass(frozen=True)
class Addressee:
    """Who a payment event is for: the customer's email and the plan's name."""

    email: str
    plan_name: str | None


async def addressee_of(db: AsyncSession, subscription: Subscription) -> Addressee:
    customer = await CustomerRepository(db).get(subscription.user_id)
    plan = await PlanRepository(db).get(subscription.plan_id)
    return Addressee(customer.email if customer else "", plan.name if plan else None)


async def apply_invoice(
    db: AsyncSession,
    invoice: InvoiceSnapshot,
    change: InvoiceChange,
    subscription: Subscription,
    addressee: Addressee,
    *,
    batch: dict[str, Payment] | None = None,
) -> list[str]:
    """Apply one invoice event to its payment row; returns the emitted event types.

    `batch`, when given, holds the (locked) rows of the invoices of a webhook batch that exist, read
    in one query: a new row is then added to the session and inserted with the others at flush, and
    a concurrent insert of the same invoice surfaces there as a unique violation (the batch is then
    redone event by event, without `batch`, through INSERT … ON CONFLICT)."""
    payments = PaymentRepository(db)
    status = _STATUS[change]
    paid = change == InvoiceChange.PAID
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "user_id": subscription.user_id,
        "subscription_id": subscription.id,
        "stripe_invoice_id": invoice.id,
        "status": status,
        "amount_due": invoice.amount_due,
        "amount_paid": invoice.amount_paid if paid else 0,
        "amount_discount": invoice.amount_discount,
        "currency": invoice.currency,
        "billing_reason": invoice.billing_reason,
        "attempt_count": invoice.attempt_count,
        "failure_reason": _failure_reason(change),
        "next_payment_attempt": None if paid else invoice.next_payment_attempt,
        "period_start": invoice.period_start,
        "period_end": invoice.period_end,
        "hosted_invoice_url": invoice.hosted_invoice_url,
        "paid_at": (invoice.paid_at or utcnow()) if paid else None,
        "invoice_created_at": invoice.created,
    }
    if batch is not None:
        known = batch.get(invoice.id)
        created = known is None
        if created:
            batch[invoice.id] = Payment(**values)
            db.add(batch[invoice.id])
    else:
        known = None
        created = await payments.insert_if_missing(values)
    if created:
        payment = Payment(**values)  # what was inserted, to describe it in the event
        announce = (paid and payment.amount_paid > 0) or (
            change in _FAILURES and payment.attempt_count > 0 and invoice.billing_reason != FIRST_INVOICE
        )
        recovered = paid and _after_failures(payment, failed_here=False)
        return await _announce(db, payment, addressee, recovered=recovered) if announce else []

    existing = known or await payments.by_invoice(invoice.id, for_update=True)
    assert existing is not None
    payment = existing
    if payment.status in TERMINAL_PAYMENT_STATUSES:
        return []
    if paid:
        recovered = _after_failures(payment, failed_here=payment.status in _FAILED_STATUSES)
        payment.status = PaymentStatus.PAID
        payment.amount_paid = invoice.amount_paid
        payment.amount_due = invoice.amount_due
        payment.paid_at = invoice.paid_at or utcnow()
        payment.attempt_count = max(payment.attempt_count, invoice.attempt_count)
        payment.next_payment_attempt = None
        return await _announce(db, payment, addressee, recovered=recovered) if payment.amount_paid > 0 else []
    if change in _FAILURES:
        if invoice.attempt_count <= payment.attempt_count:
            return []  # an attempt we already know of (or an older one)
        payment.status = status
        payment.attempt_count = invoice.attempt_count
        payment.next_payment_attempt = invoice.next_payment_attempt
        payment.failure_reason = _failure_reason(change)
        payment.hosted_invoice_url = invoice.hosted_invoice_url or payment.hosted_invoice_url
        if invoice.billing_reason == FIRST_INVOICE:
            return []
        return await _announce(db, payment, addressee)
    payment.status = status  # voided or uncollectible: terminal, no event
    payment.next_payment_attempt = None
    return []


def _after_failures(payment: Payment, *, failed_here: bool) -> bool:
    """Whether this renewal's payment comes after a failed attempt: the invoice took more than one
    attempt (as Stripe counts them), or we recorded its failure (it was then paid without an attempt,
    out of band)."""
    return payment.billing_reason != FIRST_INVOICE and (payment.attempt_count > 1 or failed_here)


async def _announce(
    db: AsyncSession, payment: Payment, addressee: Addressee, *, recovered: bool = False
) -> list[str]:
    email, plan_name = addressee.email, addressee.plan_name
    if payment.status == PaymentStatus.PAID:
        await publishing.payment_succeeded(db, payment, email=email, plan_name=plan_name)
        if not recovered:
            return ["payment.succeeded"]
        await publishing.payment_recovered(db, payment, email=email, plan_name=plan_name)
        return ["payment.succeeded", "payment.recovered"]
    await publishing.payment_failed(db, payment, email=email, plan_name=plan_name)
    return ["payment.failed"]


async def payments_page(
    db: AsyncSession, user_id: uuid.UUID, *, limit: int, cursor: str | None
) -> tuple[list[Payment], str | None]:
    after = decode_time_cursor(cursor) if cursor else None
    rows = await PaymentRepository(db).page_for_user(user_id, limit=limit + 1, after=after)
    return page_of(rows, limit, lambda payment: (payment.invoice_created_at, payment.id))


async def org_payments_page(
    db: AsyncSession, org_id: uuid.UUID, *, limit: int, cursor: str | None
) -> tuple[list[Payment], str | None]:
    after = decode_time_cursor(cursor) if cursor else None
    rows = await PaymentRepository(db).page_for_org(org_id, limit=limit + 1, after=after)
    return page_of(rows, limit, lambda payment: (payment.invoice_created_at, payment.id))
