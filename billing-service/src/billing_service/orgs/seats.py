"""The seat worker and the org's end.

`SeatWorker` runs beside the API (like the Stripe event processor): every
`BILLING_SEAT_SYNC_INTERVAL_SECONDS` it takes the orgs whose seats are pending and, one transaction
each, sets their Stripe subscription item's quantity from the latest member count (`apply_seats`).
Waiting that long is the coalescing: twenty joins arriving within it cost one update. An org whose
update failed (Stripe unreachable) stays pending and is tried again after a back-off that doubles up
to `MAX_BACKOFF_SECONDS`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing_service.integrations.stripe import StripeGateway, StripeRequestRejected
from billing_service.models import ACCESS_STATUSES, EndReason, SubscriptionStatus
from billing_service.orgs.repository import BillingOrgRepository
from billing_service.orgs.service import seats_billed
from billing_service.plans.repository import PlanRepository
from billing_service.subscriptions.checkout import abandon_checkout
from billing_service.subscriptions.repository import SubscriptionRepository
from billing_service.subscriptions.sync import apply_snapshot, end_locally

log = logging.getLogger(__name__)

ORG_DELETED_COMMENT = "gatehouse:org_deleted"
MAX_BACKOFF_SECONDS = 300.0


async def apply_seats(db: AsyncSession, stripe: StripeGateway, org_id: uuid.UUID) -> bool:
    """Set the org's Stripe quantity from its latest member count, if it is pending. Returns
    whether Stripe was asked for a change."""
    row = await SubscriptionRepository(db).holding_of_org(org_id, for_update=True)
    org = await BillingOrgRepository(db).get(org_id, for_update=True)
    if org is None or not org.seats_pending:
        return False
    org.seats_pending = False
    if (
        row is None
        or row.stripe_subscription_id is None
        or row.status not in ACCESS_STATUSES
        or org.deleted_at is not None
    ):
        return False  # nothing billed now; its activation marks the seats pending again
    plan = await PlanRepository(db).get(row.plan_id)
    assert plan is not None
    quantity = seats_billed(plan, org.member_count)
    org.seats_applied_version = org.membership_version
    if quantity == row.quantity:
        return False
    snapshot = await stripe.retrieve_subscription(row.stripe_subscription_id)
    if snapshot.quantity != quantity:
        snapshot = await stripe.set_quantity(
            row.stripe_subscription_id,
            item_id=snapshot.item_id,
            quantity=quantity,
            key=f"org-{org_id}-seats-v{org.membership_version}-{row.id}-q{quantity}",
        )
    await apply_snapshot(db, row, snapshot)
    return True


async def end_for_deleted_org(
    db: AsyncSession, stripe: StripeGateway, org_id: uuid.UUID, *, at: datetime
) -> None:
    """The org is gone: its subscription is canceled at Stripe at once (no proration) and it can
    start no new one."""
    row = await SubscriptionRepository(db).holding_of_org(org_id, for_update=True)
    orgs = BillingOrgRepository(db)
    await orgs.insert_if_missing(org_id)
    org = await orgs.get(org_id, for_update=True)
    assert org is not None
    org.deleted_at = org.deleted_at or at
    org.seats_pending = False
    if row is None:
        return
    if row.status == SubscriptionStatus.CHECKOUT_PENDING:
        await abandon_checkout(stripe, row)
        return
    if row.stripe_subscription_id is not None:
        try:
            snapshot = await stripe.cancel_subscription(
                row.stripe_subscription_id, comment=ORG_DELETED_COMMENT, key=f"sub-{row.id}-org-deleted"
            )
        except StripeRequestRejected:
            snapshot = await stripe.retrieve_subscription(row.stripe_subscription_id)
        await apply_snapshot(db, row, snapshot)
    if row.status not in (SubscriptionStatus.CANCELED, SubscriptionStatus.INCOMPLETE_EXPIRED):
        await end_locally(db, row, EndReason.CANCELED)


class SeatWorker:
    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        stripe: StripeGateway,
        *,
        interval_seconds: float,
        batch_size: int = 100,
    ) -> None:
        self._sessions = session_factory
        self._stripe = stripe
        self._interval = interval_seconds
        self._batch = batch_size
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._failed: dict[uuid.UUID, tuple[float, float]] = {}  # org → (retry at, back-off)

    async def start(self) -> None:
        self._stopping.clear()
        self._task = asyncio.create_task(self._run(), name="org-seat-worker")

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def run_once(self) -> int:
        """Apply every pending org once; returns how many Stripe updates were made."""
        async with self._sessions() as db:
            pending = await BillingOrgRepository(db).pending_seats(limit=self._batch)
        updated, now = 0, time.monotonic()
        for org_id in pending:
            retry_at, backoff = self._failed.get(org_id, (0.0, 0.0))
            if retry_at > now:
                continue
            try:
                async with self._sessions() as db, db.begin():
                    updated += await apply_seats(db, self._stripe, org_id)
                self._failed.pop(org_id, None)
            except Exception:  # left pending: tried again after the back-off
                backoff = min(max(backoff * 2, self._interval), MAX_BACKOFF_SECONDS)
                self._failed[org_id] = (now + backoff, backoff)
                log.exception("could not apply the seats of org %s; again in %.0f s", org_id, backoff)
        return updated

    async def _run(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=self._interval)
            if self._stopping.is_set():
                break
            try:
                await self.run_once()
            except Exception:
                log.exception("seat worker round failed; retrying")
