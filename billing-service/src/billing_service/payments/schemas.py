"""Payment response bodies."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from billing_service.models import PaymentStatus
from billing_service.pagination import Page


class PaymentOut(BaseModel):
    # Read from a Payment row: `PaymentOut.model_validate(payment)`.
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    subscription_id: uuid.UUID | None
    invoice_id: str = Field(validation_alias="stripe_invoice_id")
    status: PaymentStatus
    amount_due: int
    amount_paid: int
    amount_discount: int = Field(description="What discounts took off the invoice's subtotal.")
    currency: str
    billing_reason: str | None
    attempt_count: int
    failure_reason: str | None
    next_payment_attempt: datetime | None
    period_start: datetime
    period_end: datetime
    hosted_invoice_url: str | None
    paid_at: datetime | None
    created_at: datetime = Field(validation_alias="invoice_created_at")


class PaymentPage(Page[PaymentOut]):
    pass
