"""Housekeeping of the platform's own tables, for each service's periodic purge and for erasing a
deleted person's data.

Published outbox rows are only an audit trail once the relay has sent them.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import delete, or_
from sqlalchemy.ext.asyncio import AsyncSession

from gatehouse_platform.db import utcnow
from gatehouse_platform.models import OutboxMessage

OUTBOX_RETENTION = timedelta(days=7)


async def prune_outbox(session: AsyncSession, older_than: timedelta = OUTBOX_RETENTION) -> int:
    """Delete published events older than `older_than`; unpublished ones are never touched."""
    result = await session.execute(
        delete(OutboxMessage).where(OutboxMessage.published_at < utcnow() - older_than)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def forget_user_events(session: AsyncSession, user_id: uuid.UUID) -> int:
    """Delete the published events about a user (their subject, or the `user_id` of their data)
    when that person's data is erased; unpublished ones are left to the relay."""
    about = str(user_id)
    result = await session.execute(
        delete(OutboxMessage).where(
            OutboxMessage.published_at.is_not(None),
            or_(
                OutboxMessage.payload["subject"].astext == about,
                OutboxMessage.payload["data"]["user_id"].astext == about,
            ),
        )
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
