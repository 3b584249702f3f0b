"""Payment response bodies."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel

from billing_service.models import Payment, PaymentStatus


class PaymentOut(BaseModel):
    id: uuid.UUID
    subscription_id: uuid.UUID | None
    invoice_id: str
    status: PaymentStatus
    amount_due: int
    amount_paid: int
    currency: str
    billing_reason: str | None
    attempt_count: int
    failure_reason: str | None
    next_payment_attempt: datetime | None
    period_start: datetime
    period_end: datetime
    hosted_invoice_url: str | None
    paid_at: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, payment: Payment) -> PaymentOut:
        return cls(
            id=payment.id,
            subscription_id=payment.subscription_id,
            invoice_id=payment.stripe_invoice_id,
            status=payment.status,
            amount_due=payment.amount_due,
            amount_paid=payment.amount_paid,
            currency=payment.currency,
            billing_reason=payment.billing_reason,
            attempt_count=payment.attempt_count,
            failure_reason=payment.failure_reason,
            next_payment_attempt=payment.next_payment_attempt,
            period_start=payment.period_start,
            period_end=payment.period_end,
            hosted_invoice_url=payment.hosted_invoice_url,
            paid_at=payment.paid_at,
            created_at=payment.invoice_created_at,
        )


class PaymentPage(BaseModel):
    items: list[PaymentOut]
    next_cursor: str | None
