"""Subscription request and response bodies."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from billing_service.models import (
    ACCESS_STATUSES,
    ENDED_STATUSES,
    Coupon,
    CouponDuration,
    EndReason,
    Plan,
    PlanInterval,
    PlanPrice,
    PlanTier,
    Subscription,
    SubscriptionStatus,
)
from billing_service.pagination import Page
from billing_service.plans.schemas import PlanCode
from billing_service.subscriptions.dunning import DUNNING_STATUSES, grace_until
from gatehouse_platform.schemas import RequestModel, without_null


class SubscribeRequest(RequestModel):
    model_config = ConfigDict(json_schema_extra=without_null("promotion_code", "org_id"))

    plan_code: PlanCode
    org_id: uuid.UUID | None = Field(
        default=None,
        description="Subscribe this organization (you must act in it as owner or admin: the token's "
        "org_id and org_role); billed per member on a per-seat plan.",
    )
    promotion_code: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9]{1,64}$",
        description="A promotion code to subscribe with (any case); without one, the customer may "
        "type a code on the Checkout page.",
    )

    @field_validator("promotion_code", "org_id", mode="after")
    @classmethod
    def _not_null(cls, value: str | uuid.UUID | None) -> str | uuid.UUID:
        if value is None:
            raise ValueError("must not be null (leave the field out)")
        return value


class CheckoutOut(BaseModel):
    checkout_url: str = Field(description="Send the customer here to pay (Stripe Checkout).")
    session_id: str
    subscription_id: uuid.UUID


class ChangePlanRequest(RequestModel):
    model_config = ConfigDict(json_schema_extra=without_null("when"))

    plan_code: PlanCode
    proration_date: int | None = Field(
        default=None,
        description="The preview's `proration_date` (unix time), so the charge matches what the "
        "customer saw; it must lie in the current billing period.",
    )
    when: Literal["now", "period_end"] | None = Field(
        default=None,
        description="When the change takes effect: `now` (prorated) or `period_end` (Stripe switches "
        "the plan at the renewal; see `scheduled_change`). Left out: upgrades now, downgrades at the "
        "period end. During a trial a change is always immediate.",
    )

    @field_validator("when", mode="after")
    @classmethod
    def _when_not_null(cls, value: str | None) -> str:
        if value is None:
            raise ValueError("must not be null (leave the field out)")
        return value


def has_access(subscription: Subscription, *, grace: timedelta, now: datetime) -> bool:
    return (
        subscription.status in ACCESS_STATUSES
        and subscription.restricted_at is None
        and subscription.current_period_end is not None
        and subscription.current_period_end + grace > now
    )


class PlanSummary(BaseModel):
    id: uuid.UUID
    code: str
    name: str
    tier: PlanTier
    per_seat: bool = False
    max_seats: int | None = None


class DiscountOut(BaseModel):
    """The discount on the subscription now."""

    coupon_id: uuid.UUID
    name: str
    percent_off: float | None
    amount_off: int | None
    currency: str | None
    duration: CouponDuration
    duration_in_months: int | None
    promotion_code: str | None = Field(description="The code it was redeemed with, if one was.")
    started_at: datetime
    ends_at: datetime | None = Field(
        description="When it stops applying: a `repeating` coupon's end, a `once` coupon's first "
        "period end; null for `forever`."
    )

    @classmethod
    def of(cls, subscription: Subscription, coupon: Coupon, code: str | None) -> DiscountOut:
        assert subscription.discount_start is not None
        ends_at = subscription.discount_end
        if coupon.duration == CouponDuration.ONCE:
            ends_at = subscription.current_period_end
        return cls(
            coupon_id=coupon.id,
            name=coupon.name,
            percent_off=coupon.percent_off,
            amount_off=coupon.amount_off,
            currency=coupon.currency,
            duration=coupon.duration,
            duration_in_months=coupon.duration_in_months,
            promotion_code=code,
            started_at=subscription.discount_start,
            ends_at=ends_at,
        )


class ScheduledChangeOut(BaseModel):
    """A plan change waiting for the period end."""

    plan_code: str
    plan_name: str
    effective_at: datetime = Field(description="When Stripe switches the plan (the period end).")


class SubscriptionOut(BaseModel):
    id: uuid.UUID
    user_id: uuid.UUID = Field(description="Who bought it (for an organization, its owner or admin).")
    org_id: uuid.UUID | None = Field(description="The organization it is for, if any.")
    quantity: int = Field(description="Seats billed (a per-seat plan), else 1.")
    status: SubscriptionStatus
    plan: PlanSummary
    amount: int = Field(description="What the subscriber pays per period, in minor units.")
    currency: str
    interval: PlanInterval
    current_period_start: datetime | None
    current_period_end: datetime | None
    cancel_at_period_end: bool
    cancel_at: datetime | None
    canceled_at: datetime | None
    ended_at: datetime | None
    end_reason: EndReason | None
    trial_end: datetime | None
    checkout_url: str | None = Field(description="While the Checkout is open: where to pay.")
    has_access: bool
    entitlements: list[str]
    discount: DiscountOut | None = Field(description="The discount it has now, if any.")
    next_payment_attempt: datetime | None = Field(
        description="While past due: when Stripe retries the unpaid invoice (null: no retry planned)."
    )
    grace_until: datetime | None = Field(
        description="While past due: until when the plan's features are kept (then restricted until paid)."
    )
    restricted: bool = Field(
        description="Past due beyond the grace, or past the last retry: the plan's features are withheld "
        "until the invoice is paid."
    )
    scheduled_change: ScheduledChangeOut | None = Field(
        description="A plan change waiting for the period end (a downgrade, by default); "
        "`DELETE /billing/subscriptions/scheduled-change` withdraws it."
    )
    created_at: datetime

    @classmethod
    def of(
        cls,
        subscription: Subscription,
        plan: Plan,
        price: PlanPrice | None,
        *,
        grace: timedelta,
        dunning_grace: timedelta,
        now: datetime,
        discount: DiscountOut | None = None,
        scheduled_plan: Plan | None = None,
    ) -> SubscriptionOut:
        access = has_access(subscription, grace=grace, now=now)
        return cls(
            id=subscription.id,
            user_id=subscription.user_id,
            org_id=subscription.org_id,
            quantity=subscription.quantity,
            status=subscription.status,
            plan=PlanSummary(
                id=plan.id,
                code=plan.code,
                name=plan.name,
                tier=plan.tier,
                per_seat=plan.per_seat,
                max_seats=plan.max_seats,
            ),
            amount=price.amount if price else plan.amount,
            currency=price.currency if price else plan.currency,
            interval=price.interval if price else plan.interval,
            current_period_start=subscription.current_period_start,
            current_period_end=subscription.current_period_end,
            cancel_at_period_end=subscription.cancel_at_period_end,
            cancel_at=subscription.cancel_at,
            canceled_at=subscription.canceled_at,
            ended_at=subscription.ended_at,
            end_reason=subscription.end_reason,
            trial_end=subscription.trial_end,
            checkout_url=subscription.checkout_url
            if subscription.status == SubscriptionStatus.CHECKOUT_PENDING
            else None,
            has_access=access,
            entitlements=list(plan.features) if access else [],
            discount=discount,
            next_payment_attempt=subscription.next_payment_attempt,
            grace_until=grace_until(subscription, dunning_grace),
            restricted=subscription.restricted_at is not None and subscription.status in DUNNING_STATUSES,
            scheduled_change=ScheduledChangeOut(
                plan_code=scheduled_plan.code,
                plan_name=scheduled_plan.name,
                effective_at=subscription.scheduled_change_at,
            )
            if scheduled_plan is not None
            and subscription.scheduled_change_at is not None
            and subscription.status not in ENDED_STATUSES
            else None,
            created_at=subscription.created_at,
        )


class SubscriptionPage(Page[SubscriptionOut]):
    pass


class EntitlementsOut(BaseModel):
    """What the caller may do now. Empty (nulls, no features) without a subscription that grants access."""

    org_id: uuid.UUID | None = Field(
        default=None, description="Set when these are the organization's (a token acting in it)."
    )
    plan_code: str | None = None
    tier: PlanTier | None = None
    features: list[str] = Field(default_factory=list)
    status: SubscriptionStatus | None = None
    active_until: datetime | None = Field(default=None, description="End of the paid (or trial) period.")
    restricted: bool = Field(
        default=False,
        description="The subscription is past due beyond its grace (or its last retry): `features` is "
        "empty until the invoice is paid; `plan_code` and `status` say which plan is held back.",
    )


class PreviewLineOut(BaseModel):
    description: str | None
    amount: int
    proration: bool
    period_start: datetime
    period_end: datetime


class ChangePreviewOut(BaseModel):
    plan_code: str
    direction: str = Field(description="`upgrade` (costs more per day) or `downgrade`.")
    effective_at: datetime | None = Field(
        description="For a change that waits for the period end (a downgrade's default, or "
        "`when=period_end`): when it takes effect, `amount_due` being that renewal at the new price; "
        "null for a change made now."
    )
    proration_behavior: str
    proration_date: int = Field(description="Pass it back to the upgrade call to be charged exactly this.")
    due_now: bool = Field(description="Whether `amount_due` is charged at once (upgrades) or at renewal.")
    amount_due: int
    currency: str
    lines: list[PreviewLineOut]
