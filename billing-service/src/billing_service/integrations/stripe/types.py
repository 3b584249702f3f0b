"""Our view of Stripe's objects: frozen dataclasses the rest of billing reads, never the SDK's."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

Json = dict[str, Any]


@dataclass(frozen=True)
class StripeCustomer:
    id: str
    email: str | None


@dataclass(frozen=True)
class StripeProduct:
    id: str
    name: str
    active: bool


@dataclass(frozen=True)
class StripePrice:
    id: str
    product_id: str
    amount: int
    currency: str
    interval: str
    interval_count: int
    active: bool


@dataclass(frozen=True)
class CheckoutSession:
    id: str
    url: str | None
    status: str  # open | complete | expired
    customer_id: str | None
    subscription_id: str | None
    metadata: dict[str, str]
    expires_at: datetime | None


@dataclass(frozen=True)
class InvoiceSnapshot:
    id: str
    customer_id: str | None
    subscription_id: str | None
    subscription_metadata: dict[str, str]
    status: str  # draft | open | paid | void | uncollectible
    amount_due: int
    amount_paid: int
    currency: str
    billing_reason: str | None
    attempt_count: int
    next_payment_attempt: datetime | None
    period_start: datetime  # the service period its subscription lines cover
    period_end: datetime
    hosted_invoice_url: str | None
    paid_at: datetime | None
    created: datetime
    amount_discount: int = 0  # what its discounts took off


@dataclass(frozen=True)
class CardOnFile:
    """A customer's card as it may be shown: never more than brand, last four digits and expiry."""

    id: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int


@dataclass(frozen=True)
class PortalConfiguration:
    """A Customer Portal configuration as billing keeps it in step: which plans one may switch
    between (each product with its prices) and where the portal's link back goes."""

    id: str
    products: tuple[tuple[str, tuple[str, ...]], ...]
    default_return_url: str | None
    metadata: dict[str, str]


@dataclass(frozen=True)
class InvoiceSummary:
    """An invoice as its customer reads it in a list: amounts in minor units of `currency`."""

    id: str
    number: str | None
    status: str  # open | paid | void | uncollectible (drafts are not listed)
    currency: str
    subtotal: int
    discount: int  # the sum of its discounts
    tax: int  # the sum of its taxes
    total: int
    amount_paid: int
    amount_remaining: int
    billing_reason: str | None
    hosted_invoice_url: str | None
    invoice_pdf: str | None
    period_start: datetime
    period_end: datetime
    created: datetime


@dataclass(frozen=True)
class DiscountSnapshot:
    """A discount on a subscription: the coupon (and the promotion code) it came from, and when it ends
    (None: with the coupon's duration, `once` or `forever`)."""

    id: str
    coupon_id: str
    promotion_code_id: str | None
    start: datetime
    end: datetime | None


@dataclass(frozen=True)
class PromotionCodeState:
    """A promotion code as Stripe counts it now, with its coupon's validity."""

    id: str
    active: bool
    times_redeemed: int
    max_redemptions: int | None
    expires_at: datetime | None
    coupon_valid: bool
    coupon_times_redeemed: int
    coupon_max_redemptions: int | None


@dataclass(frozen=True)
class ScheduledPriceChange:
    """The next phase of a subscription's schedule that moves it to another price."""

    price_id: str
    effective_at: datetime


@dataclass(frozen=True)
class SubscriptionSnapshot:
    """A Stripe subscription as it is now (re-read, never taken from a webhook payload)."""

    id: str
    customer_id: str
    status: str
    metadata: dict[str, str]
    item_id: str
    price_id: str
    current_period_start: datetime
    current_period_end: datetime
    cancel_at_period_end: bool
    cancel_at: datetime | None
    canceled_at: datetime | None
    ended_at: datetime | None
    trial_end: datetime | None
    cancellation_reason: str | None
    cancellation_comment: str | None
    latest_invoice: InvoiceSnapshot | None
    discount: DiscountSnapshot | None = None  # read with `discounts` expanded
    schedule_id: str | None = None  # the subscription schedule it is attached to, if any
    scheduled_change: ScheduledPriceChange | None = None  # read with `schedule` expanded
    quantity: int = 1  # the item's quantity: seats billed


@dataclass(frozen=True)
class PreviewLine:
    description: str | None
    amount: int
    proration: bool
    period_start: datetime
    period_end: datetime


@dataclass(frozen=True)
class InvoicePreview:
    amount_due: int
    total: int
    currency: str
    proration_date: datetime | None
    lines: list[PreviewLine] = field(default_factory=list)


@dataclass(frozen=True)
class WebhookEvent:
    id: str
    type: str
    created: datetime
    api_version: str | None
    object_id: str | None
    object: Json
    payload: Json


@dataclass(frozen=True)
class RefundSnapshot:
    id: str
    amount: int
    currency: str
    status: str  # pending | requires_action | succeeded | failed | canceled
    reason: str | None
    charge_id: str | None
    payment_intent_id: str | None
    created: datetime


@dataclass(frozen=True)
class ChargeSnapshot:
    id: str
    payment_intent_id: str | None
    amount_captured: int
    amount_refunded: int


@dataclass(frozen=True)
class DisputeSnapshot:
    id: str
    amount: int
    currency: str
    status: str  # needs_response, under_review, warning_*, won, lost, prevented
    reason: str
    charge_id: str
    payment_intent_id: str | None
