"""The events billing publishes (subscription.*, payment.*): built from local state and written to the
outbox in the caller's transaction. Callers emit on a state *transition* they just made, never because
a Stripe event arrived, so a duplicate or reordered webhook cannot emit twice.

What billing publishes lives here, apart from what it consumes (`events/handlers.py`): the two have
nothing in common but the word "event" (one writes outbox rows from our state, the other applies
other services' events), and a reader looking for "what does billing announce, and with which
fields" finds the whole list in one module that mirrors shared-contracts' `events/billing.py`,
rather than spread over the subscriptions and payments folders that call it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from billing_service.integrations.stripe import CardOnFile
from billing_service.models import EndReason, Payment, Plan, PlanPrice, Refund, Subscription
from gatehouse_contracts.envelope import EventData
from gatehouse_contracts.events import (
    OrgSeatLimitChanged,
    PaymentDisputed,
    PaymentFailed,
    PaymentMethodExpiring,
    PaymentRecovered,
    PaymentRefunded,
    PaymentSucceeded,
    SubscriptionActivated,
    SubscriptionCancelScheduled,
    SubscriptionEnded,
    SubscriptionPastDue,
    SubscriptionPlanChanged,
    SubscriptionRenewed,
    SubscriptionResumed,
    SubscriptionTrialEnding,
)
from gatehouse_platform.db import utcnow
from gatehouse_platform.outbox import add_event

SOURCE = "/billing-service"


@dataclass(frozen=True)
class SubscriptionFacts:
    """What every subscription event says: whose, which plan, at what price."""

    subscription: Subscription
    plan: Plan
    price: PlanPrice | None  # the Stripe price the subscriber pays (None: the plan's current one)
    email: str

    def base(self) -> dict[str, object]:
        sub, plan, price = self.subscription, self.plan, self.price
        return {
            "user_id": sub.user_id,
            "email": self.email,
            "subscription_id": sub.id,
            "plan_code": plan.code,
            "plan_name": plan.name,
            "amount": price.amount if price else plan.amount,
            "currency": price.currency if price else plan.currency,
            "interval": (price.interval if price else plan.interval).value,
            "org_id": sub.org_id,
            "quantity": sub.quantity,
        }


async def _emit(db: AsyncSession, data: EventData, subject: uuid.UUID) -> None:
    await add_event(db, data, source=SOURCE, subject=str(subject))


def _required(moment: datetime | None) -> datetime:
    return moment or utcnow()


async def activated(db: AsyncSession, facts: SubscriptionFacts) -> None:
    sub = facts.subscription
    status: Literal["active", "trialing"] = "trialing" if sub.status == "trialing" else "active"
    data = SubscriptionActivated.model_validate(
        {
            **facts.base(),
            "status": status,
            "current_period_end": _required(sub.current_period_end),
            "trial_end": sub.trial_end if status == "trialing" else None,
            "entitlements": list(facts.plan.features),
        }
    )
    await _emit(db, data, sub.id)


async def renewed(db: AsyncSession, facts: SubscriptionFacts) -> None:
    sub = facts.subscription
    data = SubscriptionRenewed.model_validate(
        {
            **facts.base(),
            "current_period_start": _required(sub.current_period_start),
            "current_period_end": _required(sub.current_period_end),
        }
    )
    await _emit(db, data, sub.id)


async def plan_changed(db: AsyncSession, facts: SubscriptionFacts, previous: Plan) -> None:
    data = SubscriptionPlanChanged.model_validate(
        {
            **facts.base(),
            "previous_plan_code": previous.code,
            "previous_plan_name": previous.name,
            "entitlements": list(facts.plan.features),
            "changed_at": utcnow(),
        }
    )
    await _emit(db, data, facts.subscription.id)


async def cancel_scheduled(db: AsyncSession, facts: SubscriptionFacts) -> None:
    sub = facts.subscription
    data = SubscriptionCancelScheduled.model_validate(
        {
            **facts.base(),
            "cancel_at": _required(sub.cancel_at or sub.current_period_end),
        }
    )
    await _emit(db, data, sub.id)


async def resumed(db: AsyncSession, facts: SubscriptionFacts) -> None:
    sub = facts.subscription
    data = SubscriptionResumed.model_validate(
        {
            **facts.base(),
            "current_period_end": _required(sub.current_period_end),
        }
    )
    await _emit(db, data, sub.id)


async def past_due(db: AsyncSession, facts: SubscriptionFacts, next_payment_attempt: datetime | None) -> None:
    data = SubscriptionPastDue.model_validate({**facts.base(), "next_payment_attempt": next_payment_attempt})
    await _emit(db, data, facts.subscription.id)


async def ended(db: AsyncSession, facts: SubscriptionFacts, reason: EndReason) -> None:
    sub = facts.subscription
    data = SubscriptionEnded.model_validate(
        {
            **facts.base(),
            "reason": reason.value,
            "ended_at": _required(sub.ended_at),
        }
    )
    await _emit(db, data, sub.id)


async def trial_will_end(db: AsyncSession, facts: SubscriptionFacts) -> None:
    sub = facts.subscription
    data = SubscriptionTrialEnding.model_validate({**facts.base(), "trial_end": _required(sub.trial_end)})
    await _emit(db, data, sub.id)


def _payment_base(payment: Payment, email: str, plan_name: str | None) -> dict[str, object]:
    """What every payment event says: whose, which invoice of which subscription."""
    return {
        "user_id": payment.user_id,
        "email": email,
        "payment_id": payment.id,
        "subscription_id": payment.subscription_id,
        "plan_name": plan_name,
        "currency": payment.currency,
        "invoice_id": payment.stripe_invoice_id,
    }


async def payment_succeeded(db: AsyncSession, payment: Payment, *, email: str, plan_name: str | None) -> None:
    data = PaymentSucceeded.model_validate(
        {
            **_payment_base(payment, email, plan_name),
            "amount": payment.amount_paid,
            "amount_discount": payment.amount_discount,
            "period_start": payment.period_start,
            "period_end": payment.period_end,
            "paid_at": _required(payment.paid_at),
        }
    )
    await _emit(db, data, payment.user_id)


async def payment_failed(db: AsyncSession, payment: Payment, *, email: str, plan_name: str | None) -> None:
    data = PaymentFailed.model_validate(
        {
            **_payment_base(payment, email, plan_name),
            "amount": payment.amount_due,
            "failure_reason": payment.failure_reason,
            "attempt_count": max(payment.attempt_count, 1),
            "next_payment_attempt": payment.next_payment_attempt,
            "failed_at": utcnow(),
        }
    )
    await _emit(db, data, payment.user_id)


async def payment_recovered(db: AsyncSession, payment: Payment, *, email: str, plan_name: str | None) -> None:
    data = PaymentRecovered.model_validate(
        {
            **_payment_base(payment, email, plan_name),
            "amount": payment.amount_paid,
            "attempt_count": max(payment.attempt_count, 1),
            "period_start": payment.period_start,
            "period_end": payment.period_end,
            "paid_at": _required(payment.paid_at),
        }
    )
    await _emit(db, data, payment.user_id)


async def payment_refunded(
    db: AsyncSession, payment: Payment, refund: Refund, *, email: str, plan_name: str | None
) -> None:
    data = PaymentRefunded.model_validate(
        {
            **_payment_base(payment, email, plan_name),
            "amount": refund.amount,
            "refund_id": refund.stripe_refund_id,
            "reason": refund.reason,
            "amount_paid": payment.amount_paid,
            "amount_refunded": payment.amount_refunded,
            "fully_refunded": payment.amount_refunded >= payment.amount_paid,
            "refunded_at": refund.stripe_created_at,
        }
    )
    await _emit(db, data, payment.user_id)


async def payment_disputed(
    db: AsyncSession, payment: Payment, *, ends_access: bool, email: str, plan_name: str | None
) -> None:
    assert payment.dispute_status is not None and payment.stripe_dispute_id is not None
    data = PaymentDisputed.model_validate(
        {
            **_payment_base(payment, email, plan_name),
            "amount": payment.disputed_amount or 0,
            "dispute_id": payment.stripe_dispute_id,
            "dispute_status": payment.dispute_status.value,
            "reason": payment.dispute_reason or "general",
            "ends_access": ends_access,
            "changed_at": utcnow(),
        }
    )
    await _emit(db, data, payment.user_id)


async def payment_method_expiring(
    db: AsyncSession, user_id: uuid.UUID, email: str, card: CardOnFile, *, expires_at: datetime
) -> None:
    data = PaymentMethodExpiring(
        user_id=user_id,
        email=email,
        payment_method_id=card.id,
        brand=card.brand,
        last4=card.last4,
        exp_month=card.exp_month,
        exp_year=card.exp_year,
        expires_at=expires_at,
    )
    await _emit(db, data, user_id)


async def seat_limit_changed(
    db: AsyncSession, org_id: uuid.UUID, plan: Plan | None, *, limit_version: int
) -> None:
    """The seats the org's subscription allows now (none once it ended, or on a plan without
    a limit): auth-service refuses invitations and joins past it."""
    data = OrgSeatLimitChanged(
        org_id=org_id,
        plan_code=plan.code if plan else None,
        max_seats=plan.max_seats if plan and plan.per_seat else None,
        limit_version=limit_version,
        changed_at=utcnow(),
    )
    await _emit(db, data, org_id)
