"""Converging a local subscription on Stripe's truth, and announcing what changed.

Webhook payloads are only hints: whoever learns that a subscription may have changed (a webhook, the
reconciliation, our own API after it asked Stripe for a change) locks the local row, reads the
subscription from Stripe *after* taking the lock (so a later reader always applies a later state)
and applies it with `apply_snapshot`. Events are emitted from local transitions, each guarded by a
marker stored on the row in the same transaction, so however often or in whatever order Stripe's
events arrive, each of ours is emitted once:

| transition                                         | event                      | marker            |
|----------------------------------------------------|----------------------------|-------------------|
| first time active or trialing                      | subscription.activated     | `activated_at`    |
| price of another plan (after activation)           | subscription.plan_changed  | `plan_id`         |
| period end past the last announced one, paid       | subscription.renewed       | `renewed_through` |
| cancel scheduled / unscheduled                     | cancel_scheduled / resumed | `cancel_*`        |
| into past_due                                      | subscription.past_due      | `status`          |
| into an ended status (after activation)            | subscription.ended         | `status`          |

An organization's subscription (`org_id`) also announces `org.seat_limit_changed` when it is
activated, changes plan and ends (the org row's `limit_version` counts them), and its activation
marks the org's seats pending, so the quantity catches up with members who joined during Checkout.

The dunning markers (first failure, next retry, retries exhausted, restricted) follow Stripe's
status and latest invoice (dunning.py); a plan change waiting for the period end follows the
subscription's schedule (`stripe_schedule_id`, `scheduled_*`: its next phase's price and start). When
that phase begins, Stripe's new price makes the `subscription.plan_changed` transition above.

Ended statuses are terminal: nothing moves a row out of them.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from billing_service import publishing
from billing_service.customers.repository import CustomerRepository
from billing_service.integrations.stripe import StripeGateway, SubscriptionSnapshot
from billing_service.models import (
    ENDED_STATUSES,
    EndReason,
    Plan,
    PlanPrice,
    Subscription,
    SubscriptionStatus,
)
from billing_service.orgs.repository import BillingOrgRepository
from billing_service.orgs.service import announce_seat_limit
from billing_service.plans.repository import PlanPriceRepository, PlanRepository
from billing_service.publishing import SubscriptionFacts
from billing_service.subscriptions import dunning
from billing_service.subscriptions.repository import SubscriptionRepository
from gatehouse_platform.db import utcnow

log = logging.getLogger(__name__)

ACTIVATING = (SubscriptionStatus.ACTIVE, SubscriptionStatus.TRIALING)
STRIPE_ENDED = (SubscriptionStatus.CANCELED, SubscriptionStatus.INCOMPLETE_EXPIRED)
# Written into `cancellation_details[comment]` when we cancel, so whoever applies the cancellation
# (our request, or a webhook if our transaction was lost) names the same reason.
CANCEL_COMMENTS = {
    EndReason.ACCOUNT_DEACTIVATED: "gatehouse:account_deactivated",
    EndReason.PAYMENT_FAILED: "gatehouse:payment_failed",
    EndReason.DISPUTE_LOST: "gatehouse:dispute_lost",
}


class OrphanSubscription(Exception):
    """A Stripe subscription carrying our metadata whose local row cannot be found or adopted."""


def _status(value: str) -> SubscriptionStatus:
    if value == "paused":  # we never pause; if someone does it in the dashboard, it holds no access
        return SubscriptionStatus.UNPAID
    return SubscriptionStatus(value)


async def facts_for(db: AsyncSession, subscription: Subscription) -> SubscriptionFacts:
    # By primary key: rows this unit of work has loaded already (the plan, the locked customer)
    # come from the session, not from another query.
    plan = await PlanRepository(db).get(subscription.plan_id)
    assert plan is not None
    price = (
        await PlanPriceRepository(db).get(subscription.stripe_price_id)
        if subscription.stripe_price_id
        else None
    )
    customer = await CustomerRepository(db).get(subscription.user_id)
    return SubscriptionFacts(subscription, plan, price, customer.email if customer else "")


def _end_reason(snapshot: SubscriptionSnapshot) -> EndReason:
    for reason, text in CANCEL_COMMENTS.items():
        if snapshot.cancellation_comment == text:
            return reason
    if snapshot.cancellation_reason == "payment_failed":
        return EndReason.PAYMENT_FAILED
    return EndReason.CANCELED


def _apply_discount(row: Subscription, snapshot: SubscriptionSnapshot) -> None:
    discount = snapshot.discount
    row.stripe_discount_id = discount.id if discount else None
    row.discount_stripe_coupon_id = discount.coupon_id if discount else None
    row.discount_stripe_promotion_code_id = discount.promotion_code_id if discount else None
    row.discount_start = discount.start if discount else None
    row.discount_end = discount.end if discount else None


async def _apply_scheduled_change(
    db: AsyncSession, row: Subscription, snapshot: SubscriptionSnapshot
) -> None:
    """The plan change waiting for the period end, as the subscription's schedule has it."""
    change = snapshot.scheduled_change
    price = await PlanPriceRepository(db).get(change.price_id) if change else None
    row.stripe_schedule_id = snapshot.schedule_id
    row.scheduled_price_id = change.price_id if change else None
    row.scheduled_plan_id = price.plan_id if price else None
    row.scheduled_change_at = change.effective_at if change else None


async def apply_snapshot(db: AsyncSession, row: Subscription, snapshot: SubscriptionSnapshot) -> list[str]:
    """Make the (locked) row say what Stripe says, and emit the events its transitions call for.
    Returns the emitted event types."""
    if row.status in ENDED_STATUSES:
        return []
    now = utcnow()
    price: PlanPrice | None = await PlanPriceRepository(db).get(snapshot.price_id)
    if price is None:
        log.warning("subscription %s has a price no plan knows: %s", snapshot.id, snapshot.price_id)
    old_status = row.status
    old_plan_id = row.plan_id
    old_period_start, old_period_end = row.current_period_start, row.current_period_end
    was_scheduled = row.cancel_at_period_end or row.cancel_at is not None
    was_activated = row.activated_at is not None

    new_status = _status(snapshot.status)
    row.stripe_subscription_id = snapshot.id
    row.stripe_price_id = snapshot.price_id
    if price is not None:
        row.plan_id = price.plan_id
    row.current_period_start = snapshot.current_period_start
    row.current_period_end = snapshot.current_period_end
    row.cancel_at_period_end = snapshot.cancel_at_period_end
    row.cancel_at = snapshot.cancel_at
    row.canceled_at = snapshot.canceled_at
    row.trial_end = snapshot.trial_end
    row.quantity = snapshot.quantity
    _apply_discount(row, snapshot)
    await _apply_scheduled_change(db, row, snapshot)
    row.status = new_status
    dunning.follow(row, snapshot, now=now)
    row.checkout_url = None
    row.synced_at = now
    if (
        old_period_start is not None
        and old_period_end is not None
        and old_period_start < snapshot.current_period_start < old_period_end
        and row.renewed_through is not None
    ):
        # A period that starts inside the old one: the cycle was reset (e.g. monthly → yearly),
        # a new period but not a renewal.
        row.renewed_through = max(row.renewed_through, snapshot.current_period_end)

    facts: SubscriptionFacts | None = None

    async def about() -> SubscriptionFacts:
        # Read once, and only when an event is due: most convergences announce nothing.
        nonlocal facts
        if facts is None:
            facts = await facts_for(db, row)
        return facts

    emitted: list[str] = []

    if new_status in ACTIVATING and not was_activated:
        row.activated_at = now
        row.renewed_through = row.current_period_end
        await publishing.activated(db, await about())
        emitted.append("subscription.activated")
        if row.org_id is not None and new_status not in STRIPE_ENDED:
            await announce_seat_limit(db, row, (await about()).plan)
    elif was_activated and old_plan_id != row.plan_id:
        previous = await PlanRepository(db).get(old_plan_id)
        assert previous is not None
        await publishing.plan_changed(db, await about(), previous)
        emitted.append("subscription.plan_changed")
        if row.org_id is not None and new_status not in STRIPE_ENDED:
            await announce_seat_limit(db, row, (await about()).plan)

    if (
        new_status in ACTIVATING
        and row.renewed_through is not None
        and row.current_period_end is not None
        and row.current_period_end > row.renewed_through
    ):
        row.renewed_through = row.current_period_end
        await publishing.renewed(db, await about())
        emitted.append("subscription.renewed")

    if new_status in STRIPE_ENDED:
        row.ended_at = snapshot.ended_at or now
        row.end_reason = row.end_reason or _end_reason(snapshot)
        if was_activated or row.activated_at is not None:
            await publishing.ended(db, await about(), row.end_reason)
            emitted.append("subscription.ended")
            if row.org_id is not None:
                await announce_seat_limit(db, row, None)
        return emitted

    scheduled = snapshot.cancel_at_period_end or snapshot.cancel_at is not None
    if row.activated_at is not None and scheduled and not was_scheduled:
        await publishing.cancel_scheduled(db, await about())
        emitted.append("subscription.cancel_scheduled")
    elif row.activated_at is not None and was_scheduled and not scheduled:
        await publishing.resumed(db, await about())
        emitted.append("subscription.resumed")

    if (
        row.activated_at is not None
        and new_status == SubscriptionStatus.PAST_DUE
        and old_status != SubscriptionStatus.PAST_DUE
    ):
        latest = snapshot.latest_invoice
        await publishing.past_due(db, await about(), latest.next_payment_attempt if latest else None)
        emitted.append("subscription.past_due")
    return emitted


async def end_locally(db: AsyncSession, row: Subscription, reason: EndReason) -> bool:
    """End a (locked) subscription on our side (the expiry sweep, a deactivated account): access is
    over whatever Stripe says later. Returns whether it was live."""
    if row.status in ENDED_STATUSES:
        return False
    now = utcnow()
    was_activated = row.activated_at is not None
    bought = row.stripe_subscription_id is not None or was_activated
    row.status = SubscriptionStatus.CANCELED if bought else SubscriptionStatus.CHECKOUT_EXPIRED
    row.ended_at = now
    row.end_reason = reason
    row.checkout_url = None
    if was_activated:
        await publishing.ended(db, await facts_for(db, row), reason)
        if row.org_id is not None:
            await announce_seat_limit(db, row, None)
    return True


@dataclass
class SyncResult:
    subscription: Subscription | None
    emitted: list[str]


async def sync_from_stripe(
    db: AsyncSession, stripe: StripeGateway, stripe_subscription_id: str
) -> SyncResult:
    """Lock the local copy of a Stripe subscription, re-read it from Stripe and apply it.

    A subscription we have not linked yet is found by the `subscription_id` we put in its metadata;
    one whose row is missing although it carries our metadata (the request that created the Checkout
    session was rolled back after Stripe answered) is adopted. Subscriptions without our metadata are
    not ours: ignored.
    """
    subscriptions = SubscriptionRepository(db)
    row = await subscriptions.by_stripe_id(stripe_subscription_id, for_update=True)
    snapshot = await stripe.retrieve_subscription(stripe_subscription_id)
    if row is None:
        ours = snapshot.metadata.get("subscription_id")
        if not ours:
            log.info("ignoring subscription %s: not created by billing", stripe_subscription_id)
            return SyncResult(None, [])
        try:
            our_id = uuid.UUID(ours)
        except ValueError:
            return SyncResult(None, [])
        row = await subscriptions.get(our_id, for_update=True)
        if row is None:
            row = await _adopt(db, stripe, snapshot, our_id)
        # We read before holding the lock: read again so no older state can overwrite a newer one.
        snapshot = await stripe.retrieve_subscription(stripe_subscription_id)
    emitted = await apply_snapshot(db, row, snapshot)
    return SyncResult(row, emitted)


async def _adopt(
    db: AsyncSession, stripe: StripeGateway, snapshot: SubscriptionSnapshot, our_id: uuid.UUID
) -> Subscription:
    try:
        user_id = uuid.UUID(snapshot.metadata["user_id"])
    except (KeyError, ValueError) as exc:
        raise OrphanSubscription(f"subscription {snapshot.id} has no usable user_id") from exc
    price = await PlanPriceRepository(db).get(snapshot.price_id)
    plan: Plan | None = None
    if price is not None:
        plan = await PlanRepository(db).get(price.plan_id)
    elif snapshot.metadata.get("plan_code"):
        plan = await PlanRepository(db).by_code(snapshot.metadata["plan_code"])
    if plan is None:
        raise OrphanSubscription(f"subscription {snapshot.id} names no known plan")
    customers = CustomerRepository(db)
    if await customers.get(user_id) is None:
        customer = await stripe.retrieve_customer(snapshot.customer_id)
        await customers.insert_if_missing(user_id, customer.email or "")
    # If the request that made this row is still running, this insert waits for it; if that request
    # commits, nothing is inserted and its row is used.
    subscriptions = SubscriptionRepository(db)
    org_id = _org_of(snapshot)
    if org_id is not None:
        await BillingOrgRepository(db).insert_if_missing(org_id)
    await subscriptions.insert_pending_if_missing(
        our_id, user_id=user_id, plan_id=plan.id, stripe_price_id=snapshot.price_id, org_id=org_id
    )
    row = await subscriptions.get(our_id, for_update=True)
    if row is None:
        raise OrphanSubscription(f"subscription {snapshot.id}: the user has another live subscription")
    log.warning("adopted Stripe subscription %s as %s", snapshot.id, our_id)
    return row


def _org_of(snapshot: SubscriptionSnapshot) -> uuid.UUID | None:
    try:
        return uuid.UUID(snapshot.metadata["org_id"]) if snapshot.metadata.get("org_id") else None
    except ValueError:
        return None
