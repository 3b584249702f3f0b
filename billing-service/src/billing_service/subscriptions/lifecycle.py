"""Ends and restrictions that do not come from the customer's own request: a deactivated account,
the dunning's final action, and the expiry sweep (access ends at the period end plus
`expiry_grace_seconds`; a past-due subscription is restricted once `dunning_grace_seconds` from its
first failed attempt are over).

The sweep re-reads each candidate from Stripe before ending or restricting it, so a missed "resumed"
or "paid" webhook cannot end a subscription that is fine; with `dunning_final_action = cancel` a
past-due or unpaid subscription whose period is over is canceled at Stripe too (no more charges for a
service no longer given), with `unpaid` it is left restricted until paid.
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
from billing_service.subscriptions.dunning import DUNNING_STATUSES, grace_until
from billing_service.subscriptions.repository import SubscriptionRepository
from billing_service.subscriptions.sync import CANCEL_COMMENTS, apply_snapshot, end_locally, sync_from_stripe
from gatehouse_platform.db import session_scope, utcnow

log = logging.getLogger(__name__)

SWEEP_BATCH = 500
UNPAID = DUNNING_STATUSES


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


async def settle_exhausted_retries(
    db: AsyncSession, stripe: StripeGateway, settings: Settings, row: Subscription
) -> list[str]:
    """Stripe's last retry of a (locked, just converged) subscription failed: with
    `dunning_final_action = cancel`, one Stripe left past due (its own setting says so) is canceled at
    Stripe now; with `unpaid` it stays, restricted, until paid. Returns the emitted event types."""
    if (
        settings.dunning_final_action != "cancel"
        or row.retries_exhausted_at is None
        or row.status not in UNPAID
        or row.stripe_subscription_id is None
    ):
        return []
    await cancel_now(db, stripe, row, EndReason.PAYMENT_FAILED, key=f"sub-{row.id}-dunning-exhausted")
    return ["subscription.ended"] if row.activated_at is not None else []


@dataclass(frozen=True)
class SweepResult:
    examined: int
    ended: int
    skipped: int
    restricted: int = 0


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
    restricted, restrict_skipped = await restrict_after_grace(sessions, stripe, settings, now=now)
    async with sessions() as db:
        ids = await SubscriptionRepository(db).due_for_expiry(
            period_ended_before=now - grace,
            limit=SWEEP_BATCH,
            unpaid=settings.dunning_final_action == "cancel",
        )
    ended, skipped = 0, restrict_skipped
    for subscription_id in ids:
        try:
            async with session_scope(sessions) as db:
                if await _expire_one(db, stripe, subscription_id, now=now, grace=grace):
                    ended += 1
        except (PaymentProviderUnavailable, PaymentProviderError) as exc:
            skipped += 1
            log.warning("sweep skipped subscription %s: %s", subscription_id, type(exc).__name__)
    if ids or restricted:
        log.info(
            "expiry sweep",
            extra={"examined": len(ids), "ended": ended, "skipped": skipped, "restricted": restricted},
        )
    return SweepResult(len(ids), ended, skipped, restricted)


async def restrict_after_grace(
    sessions: async_sessionmaker[AsyncSession], stripe: StripeGateway, settings: Settings, *, now: datetime
) -> tuple[int, int]:
    """Restrict every past-due subscription whose dunning grace is over, each re-read from Stripe
    first (a missed "paid" webhook must not restrict it). Returns (restricted, skipped)."""
    grace = timedelta(seconds=settings.dunning_grace_seconds)
    async with sessions() as db:
        ids = await SubscriptionRepository(db).due_for_restriction(
            failed_before=now - grace, limit=SWEEP_BATCH
        )
    restricted = skipped = 0
    for subscription_id in ids:
        try:
            async with session_scope(sessions) as db:
                row = await SubscriptionRepository(db).get(subscription_id, for_update=True)
                if row is None or row.stripe_subscription_id is None:
                    continue
                await sync_from_stripe(db, stripe, row.stripe_subscription_id)
                until = grace_until(row, grace)
                if row.restricted_at is None and until is not None and until <= now:
                    row.restricted_at = now
                    restricted += 1
        except (PaymentProviderUnavailable, PaymentProviderError) as exc:
            skipped += 1
            log.warning("sweep skipped subscription %s: %s", subscription_id, type(exc).__name__)
    return restricted, skipped


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
