"""Changing a live subscription: plan (upgrade/downgrade, with a preview), cancel at period end, resume.

Checkout creates subscriptions; it never changes them. A plan change swaps the price of the existing
Stripe subscription's item, so there is never a second subscription and never a second full charge:
- upgrade (the new plan costs more per day): `proration_behavior=always_invoice` with
  `payment_behavior=error_if_incomplete`: the prorated difference (remaining time on the new price
  minus unused time on the old) is invoiced and charged at once; a declined card refuses the change
  (402) and the old plan stays;
- downgrade (by default, `when: period_end`): nothing changes now; a Stripe subscription schedule
  moves the subscription to the cheaper price when the period ends (its renewal is billed at the new
  price), shown as `scheduled_change` until then and withdrawn by `cancel_scheduled_change` (the
  schedule is released); `subscription.plan_changed` is announced when Stripe makes the switch;
- downgrade `when: now`: `proration_behavior=create_prorations`: the switch happens now, the unused
  time on the dearer plan becomes a credit on the next renewal invoice (no refund, no charge now);
- an upgrade asked for `when: period_end` is scheduled the same way; any change made now, and a
  cancellation, first release a pending schedule (the latest request wins);
- during a trial Stripe prorates nothing: the new price applies at once and is billed when the trial
  ends (nothing is scheduled).
A change of interval (monthly ↔ yearly) restarts the billing cycle at Stripe: the new period is
invoiced at once, with the unused old time credited.

Every change is asked of Stripe while the customer's and subscription's rows are locked, and the
subscription Stripe returns is applied at once (`apply_snapshot`), which emits the events. Keys are
`sub-{id}-r{revision}-…`: the revision is bumped per change (and kept on a card decline), so a
retried request replays Stripe's answer and a later change is a new request.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from billing_service.customers.service import lock_customer
from billing_service.errors import (
    IncompatiblePlan,
    InvalidProrationDate,
    PaymentDeclined,
    SamePlan,
    ScheduledChangeNotFound,
    SubscriptionNotChangeable,
    SubscriptionNotFound,
)
from billing_service.integrations.stripe import InvoicePreview, StripeGateway, SubscriptionSnapshot
from billing_service.models import (
    ENDED_STATUSES,
    Plan,
    PlanInterval,
    PlanPrice,
    Subscription,
    SubscriptionStatus,
)
from billing_service.plans.repository import PlanPriceRepository
from billing_service.plans.service import available_plan
from billing_service.subscriptions.checkout import abandon_checkout
from billing_service.subscriptions.repository import SubscriptionRepository
from billing_service.subscriptions.sync import apply_snapshot
from gatehouse_contracts.tokens import AccessTokenClaims
from gatehouse_platform.db import utcnow

ChangeTiming = Literal["now", "period_end"]
CHANGEABLE = (SubscriptionStatus.ACTIVE, SubscriptionStatus.TRIALING)
CANCELABLE = (SubscriptionStatus.ACTIVE, SubscriptionStatus.TRIALING, SubscriptionStatus.PAST_DUE)
DAYS = {
    PlanInterval.DAY: Fraction(1),
    PlanInterval.WEEK: Fraction(7),
    PlanInterval.MONTH: Fraction(3652425, 120000),  # 365.2425 / 12
    PlanInterval.YEAR: Fraction(3652425, 10000),
}


class UpgradeDeclined(PaymentDeclined):
    """The card was declined for the prorated charge: the change is refused, and the bumped revision
    is kept so the next attempt is a new request at Stripe (not a replay of the decline)."""

    keeps_changes = True


def _per_day(amount: int, interval: PlanInterval, count: int) -> Fraction:
    return Fraction(amount) / (DAYS[interval] * count)


def is_upgrade(current: PlanPrice | Plan, target: Plan) -> bool:
    """Whether `target` costs more per day than what the subscriber pays now."""
    return _per_day(target.amount, target.interval, target.interval_count) > _per_day(
        current.amount, current.interval, current.interval_count
    )


async def _live_subscription(db: AsyncSession, claims: AccessTokenClaims) -> Subscription:
    await lock_customer(db, claims.sub, email=claims.email)  # serializes the user's billing changes
    row = await SubscriptionRepository(db).holding(claims.sub, for_update=True)
    if row is None:
        raise SubscriptionNotFound("You have no subscription.")
    return row


async def _current_state(db: AsyncSession, stripe: StripeGateway, row: Subscription) -> SubscriptionSnapshot:
    """Stripe's view of the (locked) subscription, applied first so we decide on the truth."""
    if row.stripe_subscription_id is None or row.status not in CHANGEABLE:
        raise SubscriptionNotChangeable(f"The subscription is {row.status.value}; it cannot change plan now.")
    snapshot = await stripe.retrieve_subscription(row.stripe_subscription_id)
    await apply_snapshot(db, row, snapshot)
    if row.status not in CHANGEABLE:
        raise SubscriptionNotChangeable(f"The subscription is {row.status.value}; it cannot change plan now.")
    return snapshot


async def _plan_change(
    db: AsyncSession, row: Subscription, snapshot: SubscriptionSnapshot, target: Plan
) -> tuple[bool, str]:
    """(is it an upgrade, proration behaviour) for moving `row` to `target`."""
    if row.plan_id == target.id or snapshot.price_id == target.stripe_price_id:
        raise SamePlan(f"You are on {target.code!r} already.")
    current = await PlanPriceRepository(db).get(snapshot.price_id)
    if current is None:
        raise SubscriptionNotChangeable("The subscription's price is unknown to billing.")
    if current.currency != target.currency:
        raise IncompatiblePlan(
            f"{target.code!r} is billed in {target.currency.upper()}, not {current.currency.upper()}."
        )
    upgrade = is_upgrade(current, target)
    return upgrade, "always_invoice" if upgrade else "create_prorations"


async def change_plan(
    db: AsyncSession,
    stripe: StripeGateway,
    claims: AccessTokenClaims,
    plan_code: str,
    *,
    proration_date: int | None = None,
    when: ChangeTiming | None = None,
) -> Subscription:
    """Upgrades happen now, downgrades at the period end, unless `when` says otherwise."""
    target = await available_plan(db, plan_code)
    row = await _live_subscription(db, claims)
    snapshot = await _current_state(db, stripe, row)
    upgrade, behavior = await _plan_change(db, row, snapshot, target)
    if proration_date is not None:
        # Stripe's rule (and its clock): the date must lie in the current period.
        start, end = snapshot.current_period_start.timestamp(), snapshot.current_period_end.timestamp()
        if not start <= proration_date <= end:
            raise InvalidProrationDate("proration_date must lie in the current billing period.")
    when = when or ("now" if upgrade else "period_end")
    if when == "period_end" and row.status == SubscriptionStatus.ACTIVE:
        return await _schedule_change(db, stripe, row, snapshot, target)
    snapshot = await _release_schedule(db, stripe, row, snapshot)
    assert target.stripe_price_id is not None
    row.revision += 1
    try:
        updated = await stripe.change_price(
            snapshot.id,
            item_id=snapshot.item_id,
            price_id=target.stripe_price_id,
            proration_behavior=behavior,
            payment_behavior="error_if_incomplete" if upgrade else "allow_incomplete",
            proration_date=proration_date,
            key=f"sub-{row.id}-r{row.revision}-price-{target.stripe_price_id}",
        )
    except PaymentDeclined as exc:
        raise UpgradeDeclined(exc.detail or "The card was declined; the plan was not changed.") from exc
    await apply_snapshot(db, row, updated)
    return row


async def _schedule_change(
    db: AsyncSession, stripe: StripeGateway, row: Subscription, snapshot: SubscriptionSnapshot, target: Plan
) -> Subscription:
    assert target.stripe_price_id is not None
    if snapshot.scheduled_change and snapshot.scheduled_change.price_id == target.stripe_price_id:
        return row  # scheduled already: asking twice changes nothing
    row.revision += 1
    updated = await stripe.schedule_price_change(
        snapshot,
        price_id=target.stripe_price_id,
        key=f"sub-{row.id}-r{row.revision}-schedule-{target.stripe_price_id}",
    )
    await apply_snapshot(db, row, updated)
    return row


async def _release_schedule(
    db: AsyncSession, stripe: StripeGateway, row: Subscription, snapshot: SubscriptionSnapshot
) -> SubscriptionSnapshot:
    """Detach the (locked) subscription from its schedule, if it has one; returns Stripe's state."""
    if snapshot.schedule_id is None:
        return snapshot
    row.revision += 1
    released = await stripe.release_schedule(
        snapshot.id, snapshot.schedule_id, key=f"sub-{row.id}-r{row.revision}-release-{snapshot.schedule_id}"
    )
    await apply_snapshot(db, row, released)
    return released


async def cancel_scheduled_change(
    db: AsyncSession, stripe: StripeGateway, claims: AccessTokenClaims
) -> Subscription:
    """Withdraw the plan change waiting for the period end: the subscription renews as it is."""
    row = await _live_subscription(db, claims)
    if row.stripe_subscription_id is None or row.status in ENDED_STATUSES:
        raise ScheduledChangeNotFound("No plan change is scheduled.")
    snapshot = await stripe.retrieve_subscription(row.stripe_subscription_id)
    await apply_snapshot(db, row, snapshot)
    if snapshot.scheduled_change is None:
        raise ScheduledChangeNotFound("No plan change is scheduled.")
    await _release_schedule(db, stripe, row, snapshot)
    return row


@dataclass(frozen=True)
class ChangePreview:
    plan: Plan
    upgrade: bool
    proration_behavior: str
    proration_date: int
    effective_at: datetime | None  # the period end, for a change that waits for it; None: now
    invoice: InvoicePreview


async def preview_plan_change(
    db: AsyncSession,
    stripe: StripeGateway,
    claims: AccessTokenClaims,
    plan_code: str,
    *,
    when: ChangeTiming | None = None,
) -> ChangePreview:
    """What the change would cost: now, the prorated difference; at the period end (a downgrade's
    default), the renewal at the new price, nothing prorated."""
    target = await available_plan(db, plan_code)
    row = await _live_subscription(db, claims)
    snapshot = await _current_state(db, stripe, row)
    upgrade, behavior = await _plan_change(db, row, snapshot, target)
    waits = (when or ("now" if upgrade else "period_end")) == "period_end" and row.status == (
        SubscriptionStatus.ACTIVE
    )
    if waits:
        behavior = "none"
    assert target.stripe_price_id is not None
    preview = await stripe.preview_price_change(
        customer_id=snapshot.customer_id,
        subscription_id=snapshot.id,
        item_id=snapshot.item_id,
        price_id=target.stripe_price_id,
        proration_behavior=behavior,
        # A preview creates nothing, but every POST carries a key: within the same minute the same
        # question gets Stripe's first answer (amounts and proration date that belong together).
        key=f"preview-{row.id}-r{row.revision}-{target.stripe_price_id}-{int(utcnow().timestamp()) // 60}",
    )
    # Stripe prorates as of its own now; the client passes that moment back to be charged the same.
    moment = preview.proration_date or utcnow()
    effective_at = snapshot.current_period_end if waits else None
    return ChangePreview(target, upgrade, behavior, int(moment.timestamp()), effective_at, preview)


async def cancel_at_period_end(
    db: AsyncSession, stripe: StripeGateway, claims: AccessTokenClaims
) -> Subscription:
    """Access runs until the period ends. Idempotent. A pending Checkout is abandoned instead."""
    row = await _live_subscription(db, claims)
    if row.status == SubscriptionStatus.CHECKOUT_PENDING:
        await abandon_checkout(stripe, row)
        return row
    if row.status not in CANCELABLE or row.stripe_subscription_id is None:
        raise SubscriptionNotChangeable(f"The subscription is {row.status.value}; it cannot be canceled now.")
    if row.cancel_at_period_end:
        return row
    if row.stripe_schedule_id is not None:  # a cancellation replaces a scheduled plan change
        current = await stripe.retrieve_subscription(row.stripe_subscription_id)
        await _release_schedule(db, stripe, row, current)
    row.revision += 1
    updated = await stripe.set_cancel_at_period_end(
        row.stripe_subscription_id, True, key=f"sub-{row.id}-r{row.revision}-cancel"
    )
    await apply_snapshot(db, row, updated)
    return row


async def resume(db: AsyncSession, stripe: StripeGateway, claims: AccessTokenClaims) -> Subscription:
    """Withdraw a scheduled cancellation before the period ends."""
    row = await _live_subscription(db, claims)
    if row.stripe_subscription_id is None or not (row.cancel_at_period_end or row.cancel_at is not None):
        raise SubscriptionNotChangeable("The subscription is not scheduled to cancel.")
    row.revision += 1
    updated = await stripe.set_cancel_at_period_end(
        row.stripe_subscription_id, False, key=f"sub-{row.id}-r{row.revision}-resume"
    )
    await apply_snapshot(db, row, updated)
    return row
