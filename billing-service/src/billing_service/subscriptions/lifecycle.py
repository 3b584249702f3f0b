"""Ends that do not come from the customer's own request: a deactivated account, and the expiry
sweep (access ends at the period end plus `expiry_grace_seconds`).

The sweep re-reads each candidate from Stripe before ending it, so a missed "resumed" or "paid"
webhook cannot end a subscription that is fine; a past-due or unpaid subscription whose grace is
over is canceled at Stripe too (no more charges for a service no longer given).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing_service.customers.service import set_active
from billing_service.errors import PaymentProviderError, PaymentProviderUnavailable
from billing_service.integrations.stripe import StripeGateway, StripeRequestRejected
from billing_service.models import ENDED_STATUSES, EndReason, Subscription, SubscriptionStatus
from billing_service.settings import Settings
from billing_service.subscriptions.checkout import abandon_checkout
from billing_service.subscriptions.repository import SubscriptionRepository
from billing_service.subscriptions.sync import CANCEL_COMMENTS, apply_snapshot, end_locally, sync_from_stripe
from gatehouse_platform.db import session_scope, utcnow

log = logging.getLogger(__name__)

SWEEP_BATCH = 500
UNPAID = (SubscriptionStatus.PAST_DUE, SubscriptionStatus.UNPAID)


async def cancel_now(
    db: AsyncSession, stripe: StripeGateway, row: Subscription, reason: EndReason, *, key: str
) -> None:
    """Cancel a (locked) live subscription at Stripe at once and apply the result."""
    assert row.stripe_subscription_id is not None
    try:
        snapshot = await stripe.cancel_subscription(
            row.stripe_subscription_id, comment=CANCEL_COMMENTS[reason], key=key
        )
    except StripeRequestRejected:
        # Already canceled at Stripe (a webhook we have not processed yet): take Stripe's word.
        snapshot = await stripe.retrieve_subscription(row.stripe_subscription_id)
    await apply_snapshot(db, row, snapshot)
    if row.status not in ENDED_STATUSES:  # Stripe refused for another reason: still end access here
        await end_locally(db, row, reason)


async def end_for_deactivated_account(
    db: AsyncSession, stripe: StripeGateway, user_id: uuid.UUID, *, email: str
) -> None:
    """The account is deactivated: its subscription is canceled at Stripe now (no proration) and the
    customer can start no new one."""
    await set_active(db, user_id, email=email, active=False)
    row = await SubscriptionRepository(db).holding(user_id, for_update=True)
    if row is None:
        return
    if row.status == SubscriptionStatus.CHECKOUT_PENDING:
        await abandon_checkout(stripe, row)
        return
    if row.stripe_subscription_id is None:
        await end_locally(db, row, EndReason.ACCOUNT_DEACTIVATED)
        return
    await cancel_now(db, stripe, row, EndReason.ACCOUNT_DEACTIVATED, key=f"sub-{row.id}-deactivated")


@dataclass(frozen=True)
class SweepResult:
    examined: int
    ended: int
    skipped: int


async def sweep_expired(
    sessions: async_sessionmaker[AsyncSession],
    stripe: StripeGateway,
    settings: Settings,
    *,
    now: datetime | None = None,
) -> SweepResult:
    """End every subscription whose access is over, each in a transaction of its own (one lock at a
    time, and one that cannot reach Stripe is skipped, to be retried by the next sweep)."""
    now = now or utcnow()
    grace = timedelta(seconds=settings.expiry_grace_seconds)
    async with sessions() as db:
        ids = await SubscriptionRepository(db).due_for_expiry(
            period_ended_before=now - grace, limit=SWEEP_BATCH
        )
    ended = skipped = 0
    for subscription_id in ids:
        try:
            async with session_scope(sessions) as db:
                if await _expire_one(db, stripe, subscription_id, now=now, grace=grace):
                    ended += 1
        except (PaymentProviderUnavailable, PaymentProviderError) as exc:
            skipped += 1
            log.warning("sweep skipped subscription %s: %s", subscription_id, type(exc).__name__)
    if ids:
        log.info("expiry sweep", extra={"examined": len(ids), "ended": ended, "skipped": skipped})
    return SweepResult(len(ids), ended, skipped)


async def _expire_one(
    db: AsyncSession, stripe: StripeGateway, subscription_id: uuid.UUID, *, now: datetime, grace: timedelta
) -> bool:
    row = await SubscriptionRepository(db).get(subscription_id, for_update=True)
    if row is None or row.status in ENDED_STATUSES:
        return False
    if row.stripe_subscription_id is not None:
        await sync_from_stripe(db, stripe, row.stripe_subscription_id)
        if row.status in ENDED_STATUSES:
            return True  # Stripe had ended it; we had missed the webhook
    canceling = row.status in (SubscriptionStatus.ACTIVE, SubscriptionStatus.TRIALING) and (
        row.cancel_at_period_end or row.cancel_at is not None
    )
    if not canceling and row.status not in UNPAID:
        return False  # resumed or paid meanwhile (a webhook we had missed)
    period_end = row.cancel_at or row.current_period_end
    if period_end is None or period_end + grace >= now:
        return False  # Stripe knows better: it was renewed, paid or resumed meanwhile
    if row.status in UNPAID and row.stripe_subscription_id is not None:
        await cancel_now(db, stripe, row, EndReason.PAYMENT_FAILED, key=f"sub-{row.id}-expired")
    else:
        await end_locally(db, row, EndReason.CANCELED)
    return True
