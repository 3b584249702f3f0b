"""Events published by billing-service (source `/billing-service`).

Amounts are integers in the currency's minor unit (cents), currencies ISO 4217 lower-case, as Stripe
sends them. Each event carries the account's email (billing keeps it current from user events), so a
consumer such as notification-service needs no projection of its own.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import EmailStr, Field

from gatehouse_contracts.envelope import EventData

Interval = Literal["day", "week", "month", "year"]


class _SubscriptionData(EventData):
    """Fields every subscription event carries (not an event itself)."""

    user_id: uuid.UUID
    email: EmailStr
    subscription_id: uuid.UUID = Field(description="billing-service's id for the subscription.")
    plan_code: str
    plan_name: str
    amount: int = Field(ge=0, description="Price per billing period, in minor units.")
    currency: str = Field(min_length=3, max_length=3)
    interval: Interval
    org_id: uuid.UUID | None = Field(
        default=None, description="Set for an organization's subscription (`user_id` is who bought it)."
    )
    quantity: int = Field(default=1, ge=0, description="Seats billed (a per-seat plan), else 1.")


class SubscriptionActivated(_SubscriptionData):
    event_type = "subscription.activated"
    description = "A subscription started (paid, or trialing): grant the plan's entitlements."

    status: Literal["active", "trialing"]
    current_period_end: datetime
    trial_end: datetime | None = None
    entitlements: list[str]


class SubscriptionRenewed(_SubscriptionData):
    event_type = "subscription.renewed"
    description = "A renewal was paid and the period extended."

    current_period_start: datetime
    current_period_end: datetime


class SubscriptionPlanChanged(_SubscriptionData):
    event_type = "subscription.plan_changed"
    description = "The subscription moved to another plan (prorated); `plan_*` fields name the new plan."

    previous_plan_code: str
    previous_plan_name: str
    entitlements: list[str]
    changed_at: datetime


class SubscriptionCancelScheduled(_SubscriptionData):
    event_type = "subscription.cancel_scheduled"
    description = "The subscription will end at `cancel_at` (period end); access runs until then."

    cancel_at: datetime


class SubscriptionResumed(_SubscriptionData):
    event_type = "subscription.resumed"
    description = "A scheduled cancellation was withdrawn; the subscription renews as before."

    current_period_end: datetime


class SubscriptionPastDue(_SubscriptionData):
    event_type = "subscription.past_due"
    description = "A renewal payment failed; Stripe retries it. Access continues while past due."

    next_payment_attempt: datetime | None


class SubscriptionEnded(_SubscriptionData):
    event_type = "subscription.ended"
    description = "The subscription ended: revoke the plan's entitlements."

    reason: Literal["canceled", "payment_failed", "account_deactivated", "replaced", "dispute_lost"]
    ended_at: datetime


class SubscriptionTrialEnding(_SubscriptionData):
    event_type = "subscription.trial_will_end"
    description = "The trial ends soon; the first payment is taken at `trial_end`."

    trial_end: datetime


class _PaymentData(EventData):
    user_id: uuid.UUID
    email: EmailStr
    payment_id: uuid.UUID = Field(description="billing-service's id for the payment.")
    subscription_id: uuid.UUID | None
    plan_name: str | None
    amount: int = Field(ge=0, description="In minor units.")
    currency: str = Field(min_length=3, max_length=3)
    invoice_id: str = Field(description="Stripe's invoice id (in_…).")


class PaymentSucceeded(_PaymentData):
    event_type = "payment.succeeded"
    description = "An invoice was paid."

    period_start: datetime
    period_end: datetime
    paid_at: datetime
    amount_discount: int = Field(
        default=0,
        ge=0,
        description="What discounts (coupons, promotion codes) took off the invoice; 0 without.",
    )


class PaymentFailed(_PaymentData):
    event_type = "payment.failed"
    description = "An invoice payment failed; tell the customer what to do before `next_payment_attempt`."

    failure_reason: str | None
    attempt_count: int = Field(ge=1)
    next_payment_attempt: datetime | None
    failed_at: datetime


class PaymentRecovered(_PaymentData):
    event_type = "payment.recovered"
    description = (
        "An invoice whose payment had failed (a renewal in dunning) was paid after all: the subscription "
        "is in good standing again and any restriction is lifted. Sent once, beside `payment.succeeded`."
    )

    attempt_count: int = Field(ge=1, description="Attempts it took, the successful one included.")
    period_start: datetime
    period_end: datetime
    paid_at: datetime


class PaymentRefunded(_PaymentData):
    event_type = "payment.refunded"
    description = (
        "Money of a paid invoice was given back (by an admin through billing, or in Stripe's dashboard); "
        "`amount` is this refund, `amount_refunded` the invoice's total refunded so far."
    )

    refund_id: str = Field(description="Stripe's refund id (re_…).")
    reason: str | None = Field(description="Stripe's reason: duplicate, fraudulent, requested_by_customer.")
    amount_paid: int = Field(ge=0)
    amount_refunded: int = Field(ge=0)
    fully_refunded: bool
    refunded_at: datetime


class PaymentDisputed(_PaymentData):
    event_type = "payment.disputed"
    description = (
        "The cardholder disputed a paid invoice (`dispute_status` open), or the dispute closed (won or "
        "lost); `amount` is the disputed amount. Sent once per status; tell the admins."
    )

    dispute_id: str = Field(description="Stripe's dispute id (dp_…).")
    dispute_status: Literal["open", "won", "lost"]
    reason: str = Field(description="Stripe's dispute reason (fraudulent, product_not_received, …).")
    ends_access: bool = Field(description="True when this lost dispute ended the subscription's access.")
    changed_at: datetime


class PaymentMethodExpiring(EventData):
    event_type = "payment_method.expiring"
    description = (
        "The card an active subscription is paid with expires within a month: ask the customer for a "
        "new one (the billing page's Manage billing). Sent once per card and expiry date."
    )

    user_id: uuid.UUID
    email: EmailStr
    payment_method_id: str = Field(description="Stripe's payment method id (pm_…).")
    brand: str = Field(description="The card's brand as Stripe displays it: visa, mastercard, …")
    last4: str = Field(min_length=4, max_length=4)
    exp_month: int = Field(ge=1, le=12)
    exp_year: int
    expires_at: datetime = Field(description="The end of the card's last valid month (UTC).")


class OrgSeatLimitChanged(EventData):
    event_type = "org.seat_limit_changed"
    description = (
        "The seats an organization's subscription allows changed (it subscribed to a per-seat plan, "
        "changed plan, or its subscription ended): auth-service refuses invitations and joins past "
        "`max_seats`. Keep the one with the highest `limit_version` per org."
    )

    org_id: uuid.UUID
    plan_code: str | None = Field(description="The org's plan now; None once its subscription ended")
    max_seats: int | None = Field(ge=1, description="None: the plan sets no seat limit")
    limit_version: int = Field(ge=1, description="Grows with every change of this org's limit")
    changed_at: datetime


BILLING_EVENTS: tuple[type[EventData], ...] = (
    SubscriptionActivated,
    SubscriptionRenewed,
    SubscriptionPlanChanged,
    SubscriptionCancelScheduled,
    SubscriptionResumed,
    SubscriptionPastDue,
    SubscriptionEnded,
    SubscriptionTrialEnding,
    PaymentSucceeded,
    PaymentFailed,
    PaymentRecovered,
    PaymentRefunded,
    PaymentDisputed,
    PaymentMethodExpiring,
    OrgSeatLimitChanged,
)
