"""billing-service tables. The platform's `outbox` and `processed_events` live in the same database.

Statuses are strings with CHECK constraints (listed from the enums below), so the database and the
model can never disagree about which values exist. Server defaults and partial-index conditions are
SQLAlchemy expressions (`literal(0)`, `true()`, `func.now()`, `column(…).in_(…)`), not `text()`: SQL
text is for repositories, and these give the defaults and indexes the migration creates.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Enum,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    and_,
    column,
    false,
    func,
    literal,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql.elements import ColumnElement

from gatehouse_platform.db import Base, TimestampMixin, utcnow


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    """A VARCHAR with a CHECK constraint holding the enum's values (not its names)."""
    return Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=32,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


class PlanInterval(enum.StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    YEAR = "year"


class PlanTier(enum.StrEnum):
    FREE = "free"
    STARTER = "starter"
    PRO = "pro"
    BUSINESS = "business"
    ENTERPRISE = "enterprise"


class SubscriptionStatus(enum.StrEnum):
    # Ours: a Checkout session is open and no Stripe subscription exists yet.
    CHECKOUT_PENDING = "checkout_pending"
    # Ours: that Checkout session expired or was replaced; nothing was bought.
    CHECKOUT_EXPIRED = "checkout_expired"
    # Stripe's subscription statuses (`paused` is not used: we never pause).
    INCOMPLETE = "incomplete"
    INCOMPLETE_EXPIRED = "incomplete_expired"
    TRIALING = "trialing"
    ACTIVE = "active"
    PAST_DUE = "past_due"
    UNPAID = "unpaid"
    CANCELED = "canceled"


# Statuses that hold access or are about to: at most one row per user in these (unique index).
HOLDING_STATUSES = (
    SubscriptionStatus.CHECKOUT_PENDING,
    SubscriptionStatus.INCOMPLETE,
    SubscriptionStatus.TRIALING,
    SubscriptionStatus.ACTIVE,
    SubscriptionStatus.PAST_DUE,
    SubscriptionStatus.UNPAID,
)
# Statuses that grant the plan's entitlements (until the period end plus the grace).
ACCESS_STATUSES = (SubscriptionStatus.TRIALING, SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE)
# Terminal statuses: nothing moves a subscription out of them.
ENDED_STATUSES = (
    SubscriptionStatus.CHECKOUT_EXPIRED,
    SubscriptionStatus.INCOMPLETE_EXPIRED,
    SubscriptionStatus.CANCELED,
)


class EndReason(enum.StrEnum):
    CANCELED = "canceled"
    PAYMENT_FAILED = "payment_failed"
    ACCOUNT_DEACTIVATED = "account_deactivated"
    REPLACED = "replaced"
    DISPUTE_LOST = "dispute_lost"  # a lost dispute ended access (BILLING_LOST_DISPUTE_ENDS_ACCESS)


class PaymentStatus(enum.StrEnum):
    OPEN = "open"
    REQUIRES_ACTION = "requires_action"
    FAILED = "failed"
    PAID = "paid"
    VOID = "void"
    UNCOLLECTIBLE = "uncollectible"
    # After paid: what happened to the money since (see payments/money.py).
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"
    DISPUTED = "disputed"  # a dispute is open


# Once paid (or given up), no invoice event moves a payment again: refunds and disputes only.
PAID_STATUSES = (
    PaymentStatus.PAID,
    PaymentStatus.PARTIALLY_REFUNDED,
    PaymentStatus.REFUNDED,
    PaymentStatus.DISPUTED,
)
TERMINAL_PAYMENT_STATUSES = (*PAID_STATUSES, PaymentStatus.VOID, PaymentStatus.UNCOLLECTIBLE)


class DisputeStatus(enum.StrEnum):
    OPEN = "open"
    WON = "won"
    LOST = "lost"


class RefundStatus(enum.StrEnum):
    """Stripe's refund statuses; a card refund is `succeeded` at once, and may still fail later."""

    PENDING = "pending"
    REQUIRES_ACTION = "requires_action"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"


# Refund statuses that count against what was paid (Stripe's `amount_refunded` counts pending too).
COUNTED_REFUND_STATUSES = (RefundStatus.PENDING, RefundStatus.REQUIRES_ACTION, RefundStatus.SUCCEEDED)


class StripeEventStatus(enum.StrEnum):
    PENDING = "pending"
    PROCESSED = "processed"
    IGNORED = "ignored"
    FAILED = "failed"  # retried after `next_attempt_at`


class CouponDuration(enum.StrEnum):
    ONCE = "once"
    REPEATING = "repeating"
    FOREVER = "forever"


def _in(name: str, values: tuple[enum.StrEnum, ...]) -> ColumnElement[bool]:
    """`name IN (values…)`, for a partial index (DDL renders the values inline)."""
    return column(name).in_([v.value for v in values])


class Plan(TimestampMixin, Base):
    """What can be bought. Its Stripe product and current price follow every change made here."""

    __tablename__ = "plans"
    __table_args__ = (
        CheckConstraint("amount >= 0", name="amount_non_negative"),
        CheckConstraint("trial_days >= 0", name="trial_days_non_negative"),
        CheckConstraint("interval_count >= 1", name="interval_count_positive"),
        CheckConstraint("min_seats >= 1 AND max_seats >= 1", name="seats_positive"),
        CheckConstraint("min_seats <= max_seats", name="min_seats_within_max"),
        CheckConstraint("per_seat OR (min_seats IS NULL AND max_seats IS NULL)", name="seats_if_per_seat"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text, default="", server_default="")
    tier: Mapped[PlanTier] = mapped_column(_enum(PlanTier, "plan_tier"))
    amount: Mapped[int] = mapped_column(Integer)  # minor units per period
    currency: Mapped[str] = mapped_column(String(3))
    interval: Mapped[PlanInterval] = mapped_column(_enum(PlanInterval, "plan_interval"))
    interval_count: Mapped[int] = mapped_column(Integer, default=1, server_default=literal(1))
    features: Mapped[list[str]] = mapped_column(JSONB, default=list, server_default="[]")
    trial_days: Mapped[int] = mapped_column(Integer, default=0, server_default=literal(0))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    # Priced per member of the organization that buys it (a licensed Stripe price billed with a
    # quantity); min_seats raises the quantity billed, max_seats caps the members (auth refuses more).
    per_seat: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    min_seats: Mapped[int | None] = mapped_column(Integer)
    max_seats: Mapped[int | None] = mapped_column(Integer)
    stripe_product_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    stripe_price_id: Mapped[str | None] = mapped_column(String(255))
    # Bumped by every change pushed to Stripe: part of the idempotency keys of those calls.
    revision: Mapped[int] = mapped_column(Integer, default=0, server_default=literal(0))
    deleted_at: Mapped[datetime | None]


class PlanPrice(Base):
    """Every Stripe price a plan ever had: a webhook naming an old price still maps to its plan, and
    subscribers who kept an old price are described with what they actually pay."""

    __tablename__ = "plan_prices"

    stripe_price_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    plan_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("plans.id", ondelete="CASCADE"), index=True)
    amount: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    interval: Mapped[PlanInterval] = mapped_column(_enum(PlanInterval, "plan_price_interval"))
    interval_count: Mapped[int] = mapped_column(Integer, default=1, server_default=literal(1))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    archived_at: Mapped[datetime | None]


class Coupon(TimestampMixin, Base):
    """A discount an admin made (percent or fixed amount, for once, some months or forever), kept in
    step with its Stripe coupon. Deleting it stops new redemptions; discounts already given run on."""

    __tablename__ = "coupons"
    __table_args__ = (
        CheckConstraint("(percent_off IS NULL) <> (amount_off IS NULL)", name="percent_or_amount"),
        CheckConstraint("(amount_off IS NULL) = (currency IS NULL)", name="amount_has_currency"),
        CheckConstraint("percent_off > 0 AND percent_off <= 100", name="percent_off_range"),
        CheckConstraint("amount_off > 0", name="amount_off_positive"),
        CheckConstraint(
            "(duration = 'repeating') = (duration_in_months IS NOT NULL)", name="months_if_repeating"
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(40))
    percent_off: Mapped[float | None] = mapped_column(Numeric(5, 2, asdecimal=False))
    amount_off: Mapped[int | None] = mapped_column(Integer)
    currency: Mapped[str | None] = mapped_column(String(3))
    duration: Mapped[CouponDuration] = mapped_column(_enum(CouponDuration, "coupon_duration"))
    duration_in_months: Mapped[int | None] = mapped_column(Integer)
    max_redemptions: Mapped[int | None] = mapped_column(Integer)
    redeem_by: Mapped[datetime | None]
    # Plan codes it is limited to (empty: every plan); at Stripe, those plans' products.
    plan_codes: Mapped[list[str]] = mapped_column(JSONB, default=list, server_default="[]")
    stripe_coupon_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    deleted_at: Mapped[datetime | None]


class PromotionCode(TimestampMixin, Base):
    """A code customers type for a coupon. Codes are unique among active ones, whatever their case."""

    __tablename__ = "promotion_codes"
    __table_args__ = (
        Index(
            "uq_promotion_codes_active_code",
            func.lower(column("code")),
            unique=True,
            postgresql_where=column("is_active"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    coupon_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("coupons.id"), index=True)
    code: Mapped[str] = mapped_column(String(64))
    max_redemptions: Mapped[int | None] = mapped_column(Integer)
    expires_at: Mapped[datetime | None]
    first_time_only: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    stripe_promotion_code_id: Mapped[str | None] = mapped_column(String(255), unique=True)


class Customer(TimestampMixin, Base):
    """billing's projection of a user (from user.* events or the first token it sees) and the one
    Stripe customer that user has."""

    __tablename__ = "customers"

    user_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    # When the email was last set from an event: older email changes arriving late do not win.
    email_changed_at: Mapped[datetime | None]
    stripe_customer_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    deactivated_at: Mapped[datetime | None]
    # The user's account was erased (user.erased): the email is a placeholder, the Stripe customer
    # deleted; the subscriptions and payments stay, as the books must.
    erased_at: Mapped[datetime | None]


class Subscription(TimestampMixin, Base):
    """One purchase of a plan, from the Checkout session to its end. Its Stripe fields are a copy of
    Stripe's subscription, converged on every webhook (see subscriptions/sync.py)."""

    __tablename__ = "subscriptions"
    __table_args__ = (
        # The database, not the code, guarantees one live subscription per user.
        Index(
            "uq_subscriptions_user_holding",
            "user_id",
            unique=True,
            postgresql_where=and_(_in("status", HOLDING_STATUSES), column("org_id").is_(None)),
        ),
        # …and one per organization (its subscription is the org's, whoever bought it).
        Index(
            "uq_subscriptions_org_holding",
            "org_id",
            unique=True,
            postgresql_where=and_(_in("status", HOLDING_STATUSES), column("org_id").is_not(None)),
        ),
        CheckConstraint("quantity >= 0", name="quantity_non_negative"),
        Index("ix_subscriptions_user_id_created_at", "user_id", "created_at"),
        Index("ix_subscriptions_status_period_end", "status", "current_period_end"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    # Who bought it; for an organization's subscription, the owner or admin who subscribed.
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.user_id"))
    # Set for an organization's subscription: it is the org's, billed to the org's Stripe customer.
    org_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("billing_orgs.org_id"), index=True)
    # The subscription item's quantity at Stripe (seats billed), converged like the rest.
    quantity: Mapped[int] = mapped_column(Integer, default=1, server_default=literal(1))
    plan_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("plans.id"))
    status: Mapped[SubscriptionStatus] = mapped_column(_enum(SubscriptionStatus, "subscription_status"))
    stripe_subscription_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    stripe_checkout_session_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    checkout_url: Mapped[str | None] = mapped_column(Text)
    stripe_price_id: Mapped[str | None] = mapped_column(String(255))
    current_period_start: Mapped[datetime | None]
    current_period_end: Mapped[datetime | None]
    cancel_at_period_end: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    cancel_at: Mapped[datetime | None]
    canceled_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    end_reason: Mapped[EndReason | None] = mapped_column(_enum(EndReason, "end_reason"))
    trial_end: Mapped[datetime | None]
    # Transition markers: each event that announces a transition is emitted once because of these.
    activated_at: Mapped[datetime | None]
    renewed_through: Mapped[datetime | None]
    trial_notice_for: Mapped[datetime | None]
    # The discount on the Stripe subscription now (converged like the rest; ids are Stripe's).
    stripe_discount_id: Mapped[str | None] = mapped_column(String(255))
    discount_stripe_coupon_id: Mapped[str | None] = mapped_column(String(255))
    discount_stripe_promotion_code_id: Mapped[str | None] = mapped_column(String(255))
    discount_start: Mapped[datetime | None]
    discount_end: Mapped[datetime | None]
    # Dunning, converged on Stripe (subscriptions/dunning.py): when the unpaid invoice first failed
    # (Stripe's time; grace counts from it), Stripe's next retry, when the last retry had failed, and
    # when access was restricted (grace over, retries exhausted, or `unpaid`). Cleared once paid.
    past_due_since: Mapped[datetime | None]
    next_payment_attempt: Mapped[datetime | None]
    retries_exhausted_at: Mapped[datetime | None]
    restricted_at: Mapped[datetime | None]
    # A plan change waiting for the period end (a Stripe subscription schedule), converged on Stripe:
    # the schedule, the price of its next phase and that price's plan, and when that phase begins.
    stripe_schedule_id: Mapped[str | None] = mapped_column(String(255))
    scheduled_price_id: Mapped[str | None] = mapped_column(String(255))
    scheduled_plan_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("plans.id"))
    scheduled_change_at: Mapped[datetime | None]
    # Bumped by every change we ask Stripe for: part of the idempotency keys of those calls.
    revision: Mapped[int] = mapped_column(Integer, default=0, server_default=literal(0))
    synced_at: Mapped[datetime | None]


class Payment(TimestampMixin, Base):
    """One Stripe invoice of a subscription. Applied forward only: paid is terminal, the attempt
    count only grows."""

    __tablename__ = "payments"
    __table_args__ = (
        CheckConstraint("attempt_count >= 0", name="attempt_count_non_negative"),
        Index("ix_payments_user_id_invoice_created_at", "user_id", "invoice_created_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.user_id"))
    subscription_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("subscriptions.id"), index=True)
    stripe_invoice_id: Mapped[str] = mapped_column(String(255), unique=True)
    status: Mapped[PaymentStatus] = mapped_column(_enum(PaymentStatus, "payment_status"))
    amount_due: Mapped[int] = mapped_column(Integer)
    amount_paid: Mapped[int] = mapped_column(Integer, default=0, server_default=literal(0))
    # What the invoice's discounts took off its subtotal.
    amount_discount: Mapped[int] = mapped_column(Integer, default=0, server_default=literal(0))
    currency: Mapped[str] = mapped_column(String(3))
    billing_reason: Mapped[str | None] = mapped_column(String(64))
    attempt_count: Mapped[int] = mapped_column(Integer, default=0, server_default=literal(0))
    failure_reason: Mapped[str | None] = mapped_column(Text)
    next_payment_attempt: Mapped[datetime | None]
    period_start: Mapped[datetime]
    period_end: Mapped[datetime]
    hosted_invoice_url: Mapped[str | None] = mapped_column(Text)
    paid_at: Mapped[datetime | None]
    invoice_created_at: Mapped[datetime]
    # What the money did after: the sum of the counted refunds, and the charge's one dispute.
    amount_refunded: Mapped[int] = mapped_column(Integer, default=0, server_default=literal(0))
    stripe_payment_intent_id: Mapped[str | None] = mapped_column(String(255), index=True)
    stripe_charge_id: Mapped[str | None] = mapped_column(String(255), index=True)
    stripe_dispute_id: Mapped[str | None] = mapped_column(String(255))
    dispute_status: Mapped[DisputeStatus | None] = mapped_column(_enum(DisputeStatus, "dispute_status"))
    dispute_reason: Mapped[str | None] = mapped_column(String(64))
    disputed_amount: Mapped[int | None] = mapped_column(Integer)


class Refund(TimestampMixin, Base):
    """One Stripe refund of a payment, stored once by its `re_…` id whoever made it (an admin
    through our API, or someone in Stripe's dashboard) and whichever event told us first."""

    __tablename__ = "refunds"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        # The same Idempotency-Key on one payment is the same refund.
        Index("uq_refunds_payment_id_idempotency_key", "payment_id", "idempotency_key", unique=True),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    payment_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("payments.id"), index=True)
    stripe_refund_id: Mapped[str] = mapped_column(String(255), unique=True)
    amount: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    reason: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[RefundStatus] = mapped_column(_enum(RefundStatus, "refund_status"))
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    requested_by: Mapped[uuid.UUID | None]  # the admin, when made through our API
    stripe_created_at: Mapped[datetime]
    # When `payment.refunded` was staged for it (once per refund, whatever the events' order).
    announced_at: Mapped[datetime | None]


class StripeEvent(Base):
    """Every Stripe event received (webhook or reconciliation), stored once by its `evt_…` id, with
    what processing made of it."""

    __tablename__ = "stripe_events"
    __table_args__ = (
        Index(
            "ix_stripe_events_due",
            "next_attempt_at",
            postgresql_where=_in("status", (StripeEventStatus.PENDING, StripeEventStatus.FAILED)),
        ),
        Index("ix_stripe_events_received_at_id", "received_at", "id"),  # the admins' log, newest first
        CheckConstraint("attempts >= 0", name="attempts_non_negative"),
    )

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    type: Mapped[str] = mapped_column(String(100))
    object_id: Mapped[str | None] = mapped_column(String(255))
    api_version: Mapped[str | None] = mapped_column(String(64))
    stripe_created_at: Mapped[datetime]
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    source: Mapped[str] = mapped_column(String(16), default="webhook", server_default="webhook")
    # W3C traceparent of the request that received it (tracing on): processing joins that trace.
    traceparent: Mapped[str | None] = mapped_column(String(55))
    status: Mapped[StripeEventStatus] = mapped_column(
        _enum(StripeEventStatus, "stripe_event_status"),
        default=StripeEventStatus.PENDING,
        server_default=StripeEventStatus.PENDING.value,
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=literal(0))
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    received_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    processed_at: Mapped[datetime | None]


class JobCursor(Base):
    """Where a periodic job got to (e.g. the reconciliation's last Events API window)."""

    __tablename__ = "job_cursors"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    position: Mapped[datetime]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow, server_default=func.now())


class AuditEvent(Base):
    """One admin action on money or the catalogue: a plan, coupon or promotion code changed, a
    refund made. Append-only, kept as long as the payments it explains (no purge). `user_id` (the
    customer concerned) is no foreign key, so an entry outlives what it names."""

    __tablename__ = "billing_audit_events"  # auth-service has an audit_events table of its own
    __table_args__ = (
        Index("ix_billing_audit_events_occurred_at", "occurred_at"),
        Index("ix_billing_audit_events_actor_id_occurred_at", "actor_id", "occurred_at"),
        Index("ix_billing_audit_events_user_id_occurred_at", "user_id", "occurred_at"),
        Index("ix_billing_audit_events_subject_id", "subject_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    occurred_at: Mapped[datetime] = mapped_column(server_default=func.now(), default=utcnow)
    actor_id: Mapped[uuid.UUID]  # the admin
    action: Mapped[str] = mapped_column(String(40))
    subject_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[uuid.UUID | None]
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default=text("'{}'"))


class CardExpiryNotice(Base):
    """A "card expires soon" email sent: one per card and expiry date, so the daily check tells each
    person once (a card renewed with a new expiry date is a new notice)."""

    __tablename__ = "card_expiry_notices"

    payment_method_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    exp_year: Mapped[int] = mapped_column(Integer, primary_key=True)
    exp_month: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(index=True)
    notified_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())


class BillingOrg(TimestampMixin, Base):
    """billing's projection of an organization (from org.* events): its member count at the highest
    membership version applied, its own Stripe customer, the seat quantity waiting to reach Stripe
    (`seats_pending`, applied by the seat worker: a burst of joins costs one update), and the version
    of the seat limit last announced (org.seat_limit_changed)."""

    __tablename__ = "billing_orgs"
    __table_args__ = (
        Index("ix_billing_orgs_seats_pending", "org_id", postgresql_where=column("seats_pending")),
        CheckConstraint("member_count >= 0", name="member_count_non_negative"),
    )

    org_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="", server_default="")
    member_count: Mapped[int] = mapped_column(Integer, default=1, server_default=literal(1))
    # The highest membership_version applied (0: none yet); older or repeated events change nothing.
    membership_version: Mapped[int] = mapped_column(Integer, default=0, server_default=literal(0))
    stripe_customer_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    seats_pending: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # The membership version whose count the Stripe quantity was last set from.
    seats_applied_version: Mapped[int] = mapped_column(Integer, default=0, server_default=literal(0))
    limit_version: Mapped[int] = mapped_column(Integer, default=0, server_default=literal(0))
    deleted_at: Mapped[datetime | None]
