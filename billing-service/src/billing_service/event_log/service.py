"""The Stripe event log as support reads it: what was received, what processing made of it (applied,
ignored, failed with the error), and a failed event retried now instead of at its next attempt."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing_service.errors import StripeEventNotFailed, StripeEventNotFound
from billing_service.models import StripeEvent, StripeEventStatus
from billing_service.pagination import decode_time_key_cursor, page_of
from billing_service.webhooks.repository import StripeEventRepository
from gatehouse_platform.db import utcnow


async def page(
    db: AsyncSession,
    *,
    limit: int,
    cursor: str | None,
    status: StripeEventStatus | None = None,
    type_: str | None = None,
    object_id: str | None = None,
) -> tuple[list[StripeEvent], str | None]:
    rows = await StripeEventRepository(db).page(
        limit=limit + 1,
        after=decode_time_key_cursor(cursor) if cursor else None,
        status=status,
        type_=type_,
        object_id=object_id,
    )
    return page_of(rows, limit, lambda event: (event.received_at, event.id))


async def get(db: AsyncSession, event_id: str, *, for_update: bool = False) -> StripeEvent:
    event = await StripeEventRepository(db).get(event_id, for_update=for_update)
    if event is None:
        raise StripeEventNotFound(f"No Stripe event {event_id} was received.")
    return event


async def retry(db: AsyncSession, event_id: str) -> StripeEvent:
    """Make a failed event due now; the caller wakes the processor once this is committed. Its
    attempts and last error stay until the retry's outcome replaces them."""
    event = await get(db, event_id, for_update=True)
    if event.status != StripeEventStatus.FAILED:
        raise StripeEventNotFailed(f"The event is {event.status.value}: only a failed event is retried.")
    event.next_attempt_at = utcnow()
    return event


LAG_WINDOW = timedelta(hours=1)


async def processing_state(sessions: async_sessionmaker[AsyncSession]) -> dict[str, Any]:
    """For the System page: events waiting (pending or failed, and the oldest's age) and the
    receive-to-apply lag of the events applied in the last hour (the median and the worst; the
    histogram `billing_stripe_event_apply_lag_seconds` has the same from this replica only)."""
    now = utcnow()
    async with sessions() as db:
        events = StripeEventRepository(db)
        pending, failed, oldest = await events.waiting()
        median, worst, applied = await events.apply_lag(since=now - LAG_WINDOW)
    return {
        "stripe_events_pending": pending,
        "stripe_events_failed": failed,
        "stripe_oldest_waiting_seconds": None if oldest is None else max((now - oldest).total_seconds(), 0.0),
        "stripe_applied_last_hour": applied,
        "stripe_apply_lag_median_seconds": median,
        "stripe_apply_lag_max_seconds": worst,
    }
