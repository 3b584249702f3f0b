"""Payment response bodies."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from billing_service.models import DisputeStatus, PaymentStatus, RefundStatus
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
    amount_refunded: int = Field(description="What refunds took back, in minor units.")
    dispute_status: DisputeStatus | None = Field(description="The charge's dispute: open, won or lost.")
    created_at: datetime = Field(validation_alias="invoice_created_at")


class PaymentPage(Page[PaymentOut]):
    pass


class RefundRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: int | None = Field(
        default=None, gt=0, description="In minor units; leave out to refund all that is left."
    )
    reason: Literal["duplicate", "fraudulent", "requested_by_customer"] | None = None


class RefundOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    payment_id: uuid.UUID
    stripe_refund_id: str
    amount: int
    currency: str
    reason: str | None
    status: RefundStatus
    created_at: datetime = Field(validation_alias="stripe_created_at")


class RefundResult(BaseModel):
    refund: RefundOut
    payment: PaymentOut
