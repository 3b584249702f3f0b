"""Queries on billing's audit trail."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select, tuple_

from billing_service.models import AuditEvent
from gatehouse_platform.db import Repository


class AuditEventRepository(Repository[AuditEvent]):
    model = AuditEvent

    async def page(
        self,
        *,
        limit: int,
        after: tuple[datetime, uuid.UUID] | None,
        actor_id: uuid.UUID | None = None,
        user_id: uuid.UUID | None = None,
        action: str | None = None,
        subject_id: str | None = None,
        since: datetime | None = None,
    ) -> list[AuditEvent]:
        """Newest first, keyset-paginated on (occurred_at, id)."""
        stmt = select(AuditEvent)
        for column, value in (
            (AuditEvent.actor_id, actor_id),
            (AuditEvent.user_id, user_id),
            (AuditEvent.action, action),
            (AuditEvent.subject_id, subject_id),
        ):
            if value is not None:
                stmt = stmt.where(column == value)
        if since is not None:
            stmt = stmt.where(AuditEvent.occurred_at >= since)
        if after is not None:
            stmt = stmt.where(tuple_(AuditEvent.occurred_at, AuditEvent.id) < tuple_(*after))
        stmt = stmt.order_by(AuditEvent.occurred_at.desc(), AuditEvent.id.desc()).limit(limit)
        return list((await self.session.execute(stmt)).scalars())
