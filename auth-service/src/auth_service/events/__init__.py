"""The events auth-service publishes go through the platform outbox, in the caller's transaction."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from gatehouse_contracts.envelope import EventData
from gatehouse_platform.outbox import add_event

SOURCE = "/auth-service"


async def emit(db: AsyncSession, data: EventData, *, user_id: uuid.UUID) -> None:
    await add_event(db, data, source=SOURCE, subject=str(user_id))
