"""Self-service response bodies: the card on file, the invoices."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from billing_service.pagination import Page
from billing_service.payments.schemas import PaymentOut, RefundOut
from billing_service.subscriptions.schemas import SubscriptionOut


class PaymentMethodOut(BaseModel):
    # Read from a CardOnFile: `PaymentMethodOut.model_validate(card)`.
    model_config = ConfigDict(from_attributes=True)

    brand: str = Field(description="The card's brand as Stripe displays it: visa, mastercard, amex, …")
    last4: str
    exp_month: int = Field(ge=1, le=12)
    exp_year: int


class PortalRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    return_url: str | None = Field(
        default=None,
        max_length=2048,
        description="Where the portal's link back goes: an absolute URL on an allowed origin "
        "(BILLING_RETURN_ORIGINS); default BILLING_PORTAL_RETURN_URL.",
    )


class PortalOut(BaseModel):
    url: str = Field(description="The Customer Portal session: send the person there now (short-lived).")


class InvoiceOut(BaseModel):
    # Read from an InvoiceSummary: `InvoiceOut.model_validate(invoice)`.
    model_config = ConfigDict(from_attributes=True)

    id: str = Field(description="Stripe's invoice id.")
    number: str | None = Field(description="The number printed on the invoice.")
    status: str = Field(description="open, paid, void or uncollectible.")
    currency: str
    subtotal: int = Field(description="Before discounts and taxes, in minor units.")
    discount: int = Field(description="Taken off by discounts, in minor units.")
    tax: int = Field(description="Taxes, in minor units.")
    total: int
    amount_paid: int
    amount_remaining: int
    billing_reason: str | None
    hosted_url: str | None = Field(
        validation_alias="hosted_invoice_url",
        description="Stripe's page for the invoice (pay it there if open).",
    )
    pdf_url: str | None = Field(validation_alias="invoice_pdf", description="The invoice as a PDF.")
    period_start: datetime
    period_end: datetime
    created_at: datetime = Field(validation_alias="created")


class InvoicePage(Page[InvoiceOut]):
    pass


class ExportedCustomer(BaseModel):
    # Read from a Customer row.
    model_config = ConfigDict(from_attributes=True)

    email: str = Field(description="The address billing knows (from auth-service's events).")
    stripe_customer_id: str | None = Field(description="The customer's id at Stripe, once there is one.")
    is_active: bool
    created_at: datetime


class BillingExport(BaseModel):
    service: str = "billing-service"
    exported_at: datetime
    user_id: uuid.UUID
    customer: ExportedCustomer | None = Field(description="None when billing has not heard of the user.")
    subscriptions: list[SubscriptionOut] = Field(description="Every subscription, newest first.")
    payments: list[PaymentOut] = Field(description="Every invoice's payment, newest first.")
    refunds: list[RefundOut] = Field(description="Every refund of those payments, newest first.")
    invoices: list[InvoiceOut] = Field(description="The invoices at Stripe, newest first.")
    payment_method: PaymentMethodOut | None = Field(
        description="The card on file: brand, last four digits and expiry only."
    )
