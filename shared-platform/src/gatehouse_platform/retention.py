"""Housekeeping of the platform's own tables, for each service's periodic purge.

Published outbox rows are only an audit trail once the relay has sent them. `processed_events`
rows are the idempotency memory of consumers: keep them well beyond any redelivery window (broker
retries take minutes; a replayed dead letter may come days later), so the default is generous.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from gatehouse_platform.db import utcnow
from gatehouse_platform.models import OutboxMessage, ProcessedEvent

OUTBOX_RETENTION = timedelta(days=7)
PROCESSED_EVENTS_RETENTION = timedelta(days=30)


async def prune_outbox(session: AsyncSession, older_than: timedelta = OUTBOX_RETENTION) -> int:
    """Delete published events older than `older_than`; unpublished ones are never touched."""
    result = await session.execute(
        delete(OutboxMessage).where(OutboxMessage.published_at < utcnow() - older_than)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def prune_processed_events(
    session: AsyncSession, older_than: timedelta = PROCESSED_EVENTS_RETENTION
) -> int:
    result = await session.execute(
        delete(ProcessedEvent).where(ProcessedEvent.processed_at < utcnow() - older_than)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
