"""Reconciliation: heal missed webhooks from Stripe's Events API.

Stripe keeps events for 30 days. Each run lists the events of the types we handle created since the
previous run (minus an overlap; the first run reaches back `reconcile_lookback_seconds`), stores the
ones we never received (same table, same once-only insert, `source = reconcile`) and processes them
like webhooks: each names a subscription, which is re-read from Stripe and converged on, and
invoices are applied forward only. Events we already had change nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing_service.integrations.stripe import StripeGateway
from billing_service.models import JobCursor
from billing_service.settings import Settings
from billing_service.webhooks.handlers import HANDLERS
from billing_service.webhooks.processor import WebhookProcessor
from billing_service.webhooks.repository import JobCursorRepository, StripeEventRepository
from gatehouse_platform.db import session_scope, utcnow

log = logging.getLogger(__name__)

CURSOR = "reconcile-events"


@dataclass(frozen=True)
class ReconcileResult:
    since: datetime
    listed: int
    missed: int
    processed: int


async def reconcile(
    session_factory: async_sessionmaker[AsyncSession],
    stripe: StripeGateway,
    settings: Settings,
    *,
    now: datetime | None = None,
) -> ReconcileResult:
    started = now or utcnow()
    async with session_scope(session_factory) as db:
        cursor = await JobCursorRepository(db).get(CURSOR)
        if cursor is None:
            since = started - timedelta(seconds=settings.reconcile_lookback_seconds)
        else:
            since = cursor.position - timedelta(seconds=settings.reconcile_overlap_seconds)
    listed = missed = 0
    async with session_scope(session_factory) as db:
        stripe_events, cursors = StripeEventRepository(db), JobCursorRepository(db)
        async for event in stripe.events_since(since, sorted(HANDLERS)):
            listed += 1
            if await stripe_events.record(event, source="reconcile"):
                missed += 1
        cursor = await cursors.get(CURSOR, for_update=True)
        if cursor is None:
            cursors.add(JobCursor(name=CURSOR, position=started))
        elif cursor.position < started:
            cursor.position = started
    processed = await WebhookProcessor(session_factory, stripe, settings).drain()
    result = ReconcileResult(since, listed, missed, processed)
    log.info("reconciled with Stripe", extra={"listed": listed, "missed": missed, "processed": processed})
    return result
