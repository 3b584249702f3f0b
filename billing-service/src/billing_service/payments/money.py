"""What happens to a paid payment's money afterwards: refunds and disputes.

A payment is one invoice; its money is the charge of the PaymentIntent that paid it. Refunds are
rows of their own, stored once by Stripe's `re_…` id whoever made them (an admin through
`POST /billing/admin/payments/{id}/refund`, or someone in Stripe's dashboard) and whichever event
told us first (`refund.created`, `refund.updated`, `charge.refunded`). The payment's
`amount_refunded` is always recomputed as the sum of its counted refunds, so duplicated and
reordered events cannot count one twice; a refund's status only moves forward (pending →
succeeded → failed/canceled), and `payment.refunded` is staged once per refund, when it is first
seen succeeded.

Every rule here runs with the payment row locked (`FOR NO KEY UPDATE`): two admins refunding the
same payment with different keys are served one after the other, the second seeing what the first
took back, and Stripe's own cap (`amount_too_large`) catches a refund made meanwhile in the
dashboard.

A dispute is the charge's one chargeback: `open` until Stripe closes it `won` or `lost`, closed
being final (a late `charge.dispute.created` after `.closed` changes nothing). `payment.disputed`
is staged once per status reached. A lost dispute ends the subscription's access when
`BILLING_LOST_DISPUTE_ENDS_ACCESS` is on (the default): the Stripe subscription is canceled at once
and `subscription.ended` says `dispute_lost`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from billing_service import publishing
from billing_service.audit import service as audit
from billing_service.customers.repository import CustomerRepository
from billing_service.errors import (
    IdempotencyKeyReused,
    PaymentNotFound,
    PaymentNotRefundable,
    RefundExceedsPayment,
)
from billing_service.integrations.stripe import (
    DisputeSnapshot,
    RefundSnapshot,
    StripeGateway,
    StripeRequestRejected,
)
from billing_service.models import (
    ENDED_STATUSES,
    PAID_STATUSES,
    DisputeStatus,
    EndReason,
    Payment,
    PaymentStatus,
    Refund,
    RefundStatus,
)
from billing_service.payments.repository import PaymentRepository, RefundRepository
from billing_service.payments.service import (
    Addressee,
    InvoiceChange,
    addressee_of,
    apply_invoice,
    subscription_of,
)
from billing_service.settings import Settings
from billing_service.subscriptions.lifecycle import cancel_now
from billing_service.subscriptions.repository import SubscriptionRepository
from billing_service.subscriptions.sync import end_locally
from gatehouse_platform.db import utcnow

# A refund's status moves forward only: a late `refund.created` (succeeded) does not undo the
# `refund.updated` (failed) that overtook it.
_REFUND_RANK = {
    RefundStatus.PENDING: 0,
    RefundStatus.REQUIRES_ACTION: 1,
    RefundStatus.SUCCEEDED: 2,
    RefundStatus.FAILED: 3,
    RefundStatus.CANCELED: 3,
}
# Stripe's dispute statuses, as the payment shows them.
_DISPUTE_CLOSED = {
    "won": DisputeStatus.WON,
    "warning_closed": DisputeStatus.WON,  # an inquiry that never became a chargeback
    "prevented": DisputeStatus.WON,
    "lost": DisputeStatus.LOST,
}
# Stripe's refusals that mean "more than what is left" (a refund made elsewhere meanwhile).
_EXCEEDS = ("amount_too_large", "charge_already_refunded")


def money_status(payment: Payment) -> PaymentStatus:
    """A paid payment's status from its refunds and dispute (other statuses are the invoice's)."""
    if payment.status not in PAID_STATUSES:
        return payment.status
    if payment.dispute_status == DisputeStatus.OPEN:
        return PaymentStatus.DISPUTED
    if payment.amount_paid > 0 and payment.amount_refunded >= payment.amount_paid:
        return PaymentStatus.REFUNDED
    if payment.amount_refunded > 0:
        return PaymentStatus.PARTIALLY_REFUNDED
    return PaymentStatus.PAID


async def _addressee(db: AsyncSession, payment: Payment) -> Addressee:
    if payment.subscription_id is not None:
        subscription = await SubscriptionRepository(db).get(payment.subscription_id)
        if subscription is not None:
            return await addressee_of(db, subscription)
    customer = await CustomerRepository(db).get(payment.user_id)
    return Addressee(customer.email if customer else "", None)


def _refund_status(value: str) -> RefundStatus:
    try:
        return RefundStatus(value)
    except ValueError:
        return RefundStatus.PENDING


# -- finding the payment a charge, refund or dispute is about ---------------------------------------


async def locate_payment(
    db: AsyncSession, stripe: StripeGateway, *, payment_intent_id: str | None, charge_id: str | None
) -> Payment | None:
    """The (locked) payment whose charge this is, or None when it is not one of our invoices.

    Known by its PaymentIntent or charge once recorded; else Stripe says which invoice the
    PaymentIntent collected. A refund or dispute may arrive before that invoice's `invoice.paid`:
    the invoice is then applied as Stripe has it now (its row and `payment.succeeded`, as the late
    event would have), so nothing depends on the order events come in."""
    payments = PaymentRepository(db)
    row = await payments.by_stripe_payment(
        payment_intent_id=payment_intent_id, charge_id=charge_id, for_update=True
    )
    if row is None and payment_intent_id:
        invoice_id = await stripe.invoice_of_payment_intent(payment_intent_id)
        if invoice_id is None:
            return None
        row = await payments.by_invoice(invoice_id, for_update=True)
        if row is None and await _apply_paid_invoice(db, stripe, invoice_id):
            row = await payments.by_invoice(invoice_id, for_update=True)
    if row is None:
        return None
    row.stripe_payment_intent_id = row.stripe_payment_intent_id or payment_intent_id
    row.stripe_charge_id = row.stripe_charge_id or charge_id
    return row


async def _apply_paid_invoice(db: AsyncSession, stripe: StripeGateway, invoice_id: str) -> bool:
    invoice = await stripe.retrieve_invoice(invoice_id)
    if invoice.status != "paid":
        return False
    subscription = await subscription_of(db, invoice)
    if subscription is None:
        return False
    addressee = await addressee_of(db, subscription)
    await apply_invoice(db, invoice, InvoiceChange.PAID, subscription, addressee)
    return True


# -- refunds ----------------------------------------------------------------------------------------


async def record_refund(
    db: AsyncSession,
    payment: Payment,
    refund: RefundSnapshot,
    *,
    key: str | None = None,
    requested_by: uuid.UUID | None = None,
) -> tuple[Refund, list[str]]:
    """Store (or move forward) one refund of the locked payment and recompute what it took back;
    returns the row and the emitted event types."""
    refunds = RefundRepository(db)
    status = _refund_status(refund.status)
    row = await refunds.by_stripe_id(refund.id)
    if row is None:
        row = refunds.add(
            Refund(
                id=uuid.uuid4(),
                payment_id=payment.id,
                stripe_refund_id=refund.id,
                amount=refund.amount,
                currency=refund.currency,
                reason=refund.reason,
                status=status,
                idempotency_key=key,
                requested_by=requested_by,
                stripe_created_at=refund.created,
            )
        )
    else:
        if _REFUND_RANK[status] > _REFUND_RANK[row.status]:
            row.status = status
        if key is not None and row.idempotency_key is None:  # its webhook was applied first
            row.idempotency_key, row.requested_by = key, requested_by
    payment.amount_refunded = await refunds.counted_total(payment.id)
    payment.status = money_status(payment)
    if row.announced_at is not None or row.status != RefundStatus.SUCCEEDED:
        return row, []
    row.announced_at = utcnow()
    addressee = await _addressee(db, payment)
    await publishing.payment_refunded(db, payment, row, email=addressee.email, plan_name=addressee.plan_name)
    return row, ["payment.refunded"]


def _moves(row: Refund, refund: RefundSnapshot) -> bool:
    """Whether `record_refund` would change the stored refund: a later status, or an announcement
    still due."""
    later = _REFUND_RANK[_refund_status(refund.status)] > _REFUND_RANK[row.status]
    return later or (row.announced_at is None and row.status == RefundStatus.SUCCEEDED)


async def record_refunds(db: AsyncSession, payment: Payment, refunds: Sequence[RefundSnapshot]) -> list[str]:
    """Each of a charge's refunds (oldest first) as `record_refund` stores it, their rows read in
    one query; a refund already stored as it is now is left alone (nothing of it changed, so neither
    did what the payment took back). Returns the emitted event types."""
    stored = await RefundRepository(db).by_stripe_ids([refund.id for refund in refunds])
    emitted: list[str] = []
    for refund in refunds:
        row = stored.get(refund.id)
        if row is not None and not _moves(row, refund):
            continue
        emitted += (await record_refund(db, payment, refund))[1]
    return emitted


async def refund_payment(
    db: AsyncSession,
    stripe: StripeGateway,
    *,
    payment_id: uuid.UUID,
    amount: int | None,
    reason: str | None,
    key: str,
    admin_id: uuid.UUID,
) -> tuple[Refund, Payment]:
    """Refund `amount` (default: all that is left) of a paid payment, once per Idempotency-Key."""
    payment = await PaymentRepository(db).get(payment_id, for_update=True)
    if payment is None:
        raise PaymentNotFound("No payment with this id.")
    done = await RefundRepository(db).by_key(payment.id, key)
    if done is not None:
        if (amount is not None and amount != done.amount) or reason != done.reason:
            raise IdempotencyKeyReused(
                f"This Idempotency-Key already refunded {done.amount} ({done.reason or 'no reason'}) of "
                "this payment; use a new key for another refund."
            )
        return done, payment
    if payment.status not in PAID_STATUSES:
        raise PaymentNotRefundable(
            f"Only a paid payment can be refunded; this one is {payment.status.value}."
        )
    if payment.dispute_status == DisputeStatus.OPEN:
        raise PaymentNotRefundable("The payment is disputed: the cardholder's bank decides what is returned.")
    left = payment.amount_paid - payment.amount_refunded
    if left <= 0:
        raise RefundExceedsPayment(
            f"The payment is already fully refunded ({payment.amount_refunded} of {payment.amount_paid})."
        )
    if amount is not None and amount > left:
        raise RefundExceedsPayment(
            f"Cannot refund {amount}: only {left} of the {payment.amount_paid} paid is left to refund "
            f"({payment.amount_refunded} already refunded)."
        )
    intent = payment.stripe_payment_intent_id or await stripe.invoice_payment_intent(
        payment.stripe_invoice_id
    )
    if intent is None:
        raise PaymentNotRefundable("Stripe has no card payment for this invoice (paid outside Stripe).")
    payment.stripe_payment_intent_id = intent
    try:
        refund = await stripe.create_refund(
            payment_intent_id=intent,
            amount=amount,
            reason=reason,
            metadata={"payment_id": str(payment.id), "requested_by": str(admin_id)},
            key=f"refund-{payment.id}-{key}",
        )
    except StripeRequestRejected as exc:
        if exc.code in _EXCEEDS:
            raise RefundExceedsPayment(
                f"Stripe refused: {exc.detail} (a refund was made elsewhere meanwhile)."
            ) from exc
        if exc.code == "charge_disputed":
            raise PaymentNotRefundable("The payment is disputed: the cardholder's bank decides.") from exc
        raise
    payment.stripe_charge_id = payment.stripe_charge_id or refund.charge_id
    row, _ = await record_refund(db, payment, refund, key=key, requested_by=admin_id)
    audit.record(
        db,
        audit.AuditAction.PAYMENT_REFUNDED,
        actor_id=admin_id,
        subject_id=payment.id,
        user_id=payment.user_id,
        details={
            "refund_id": str(row.id),
            "amount": row.amount,
            "currency": payment.currency,
            "reason": reason,
        },
    )
    return row, payment


# -- disputes ---------------------------------------------------------------------------------------


async def record_dispute(
    db: AsyncSession, stripe: StripeGateway, settings: Settings, payment: Payment, dispute: DisputeSnapshot
) -> list[str]:
    """Apply a dispute's status to the locked payment, forward only; returns the emitted events."""
    status = _DISPUTE_CLOSED.get(dispute.status, DisputeStatus.OPEN)
    if payment.dispute_status in (DisputeStatus.WON, DisputeStatus.LOST) or payment.dispute_status == status:
        return []
    payment.stripe_dispute_id = dispute.id
    payment.dispute_status = status
    payment.dispute_reason = dispute.reason[:64]
    payment.disputed_amount = dispute.amount
    payment.status = money_status(payment)
    emitted = ["payment.disputed"]
    ends_access = False
    if status == DisputeStatus.LOST and settings.lost_dispute_ends_access:
        ends_access = await _end_access(db, stripe, payment)
        if ends_access:
            emitted.append("subscription.ended")
    addressee = await _addressee(db, payment)
    await publishing.payment_disputed(
        db, payment, ends_access=ends_access, email=addressee.email, plan_name=addressee.plan_name
    )
    return emitted


async def _end_access(db: AsyncSession, stripe: StripeGateway, payment: Payment) -> bool:
    """Cancel the subscription this payment paid for, now; whether it was live."""
    if payment.subscription_id is None:
        return False
    row = await SubscriptionRepository(db).get(payment.subscription_id, for_update=True)
    if row is None or row.status in ENDED_STATUSES:
        return False
    if row.stripe_subscription_id is None:
        return await end_locally(db, row, EndReason.DISPUTE_LOST)
    await cancel_now(db, stripe, row, EndReason.DISPUTE_LOST, key=f"sub-{row.id}-dispute-lost")
    return True
