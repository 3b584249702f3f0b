"""Queries on the Stripe event log."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from billing_service.integrations.stripe import WebhookEvent
from billing_service.models import StripeEvent, StripeEventStatus
from gatehouse_platform.db import utcnow

DUE = (StripeEventStatus.PENDING, StripeEventStatus.FAILED)


# Built once: compiling a fresh INSERT for every webhook was a visible share of the endpoint's time.
_RECORD = (
    insert(StripeEvent).on_conflict_do_nothing(index_elements=[StripeEvent.id]).returning(StripeEvent.id)
)


def _values(event: WebhookEvent, source: str) -> dict[str, object]:
    return {
        "id": event.id,
        "type": event.type,
        "object_id": event.object_id,
        "api_version": event.api_version,
        "stripe_created_at": event.created,
        "payload": event.payload,
        "source": source,
    }


async def record_event(db: AsyncSession, event: WebhookEvent, *, source: str) -> bool:
    """Store the event once (by its `evt_…` id); True if it was new."""
    return await db.scalar(_RECORD, _values(event, source)) is not None


async def record_events(db: AsyncSession, events: Sequence[WebhookEvent], *, source: str) -> set[str]:
    """Store each event once, in one statement; returns the ids that were new."""
    if not events:
        return set()
    if len(events) == 1:
        return {events[0].id} if await record_event(db, events[0], source=source) else set()
    stmt = (
        insert(StripeEvent)
        .values([_values(event, source) for event in events])
        .on_conflict_do_nothing(index_elements=[StripeEvent.id])
        .returning(StripeEvent.id)
    )
    return set((await db.execute(stmt)).scalars())


async def claim_due(db: AsyncSession, limit: int) -> list[StripeEvent]:
    """Lock a batch of events due for processing, oldest (by Stripe's clock) first. Rows another
    worker holds are skipped, so concurrent workers never process the same event."""
    stmt = (
        select(StripeEvent)
        .where(StripeEvent.status.in_(DUE), StripeEvent.next_attempt_at <= func.now())
        .order_by(StripeEvent.stripe_created_at, StripeEvent.received_at, StripeEvent.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list((await db.execute(stmt)).scalars())


async def mark_done(db: AsyncSession, ids: Sequence[str], status: StripeEventStatus) -> None:
    if ids:
        await db.execute(
            update(StripeEvent)
            .where(StripeEvent.id.in_(ids))
            .values(
                status=status,
                processed_at=utcnow(),
                attempts=StripeEvent.attempts + 1,
                last_error=None,
            )
        )


async def oldest_due(db: AsyncSession) -> datetime | None:
    return await db.scalar(select(func.min(StripeEvent.received_at)).where(StripeEvent.status.in_(DUE)))
