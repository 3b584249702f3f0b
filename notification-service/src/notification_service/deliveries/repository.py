"""Queries on deliveries (no commits here)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Table, func, or_, select, text, tuple_, update
from sqlalchemy.dialects.postgresql import insert

from gatehouse_platform.db import Repository, utcnow
from notification_service.models import Delivery, DeliveryStatus

# Built once at import: creating a delivery unless (event, template, recipient) already has one.
# RETURNING says which happened, in the one round trip.
# On the table, not the entity: a plain Core INSERT, without the ORM's bulk-insert machinery.
_DELIVERIES = cast(Table, Delivery.__table__)
_INSERT_NEW = (
    insert(_DELIVERIES)
    .on_conflict_do_nothing(
        index_elements=[_DELIVERIES.c.event_id, _DELIVERIES.c.template, _DELIVERIES.c.recipient],
        index_where=text("resend_of IS NULL"),
    )
    .returning(_DELIVERIES.c.id)
)
_COLUMNS = tuple(column.key for column in _DELIVERIES.columns)


@dataclass(frozen=True)
class DeliveryFilters:
    recipient: str | None = None
    event_type: str | None = None
    template: str | None = None
    status: DeliveryStatus | None = None
    event_id: uuid.UUID | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None


class DeliveryRepository(Repository[Delivery]):
    model = Delivery

    async def by_key(
        self, event_id: uuid.UUID, template: str, recipient: str, *, for_update: bool = False
    ) -> Delivery | None:
        """The delivery an event caused (not a resend) for this template and recipient."""
        stmt = select(Delivery).where(
            Delivery.event_id == event_id,
            Delivery.template == template,
            Delivery.recipient == recipient,
            Delivery.resend_of.is_(None),
        )
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def insert_new(self, delivery: Delivery) -> bool:
        """Insert `delivery` (a transient row an event caused) unless the event already has one for
        its template and recipient; whether it was inserted. Not added to the session."""
        values = {key: value for key in _COLUMNS if (value := getattr(delivery, key)) is not None}
        return (await self.session.execute(_INSERT_NEW, values)).first() is not None

    async def search(
        self, filters: DeliveryFilters, *, limit: int, before: tuple[datetime, uuid.UUID] | None
    ) -> list[Delivery]:
        """Newest first; `before` is the (created_at, id) of the last row of the previous page."""
        criteria = []
        if filters.recipient is not None:
            criteria.append(func.lower(Delivery.recipient) == filters.recipient.lower())
        if filters.event_type is not None:
            criteria.append(Delivery.event_type == filters.event_type)
        if filters.template is not None:
            criteria.append(Delivery.template == filters.template)
        if filters.status is not None:
            criteria.append(Delivery.status == filters.status.value)
        if filters.event_id is not None:
            criteria.append(Delivery.event_id == filters.event_id)
        if filters.created_after is not None:
            criteria.append(Delivery.created_at >= filters.created_after)
        if filters.created_before is not None:
            criteria.append(Delivery.created_at < filters.created_before)
        if before is not None:
            criteria.append(tuple_(Delivery.created_at, Delivery.id) < tuple_(*before))
        return await self.list_where(
            *criteria, order_by=(Delivery.created_at.desc(), Delivery.id.desc()), limit=limit
        )

    async def mark_sent(self, ids: Sequence[uuid.UUID]) -> None:
        if not ids:
            return
        now = utcnow()
        await self.session.execute(
            update(_DELIVERIES)  # Core: no delivery this marks is loaded in the session
            .where(_DELIVERIES.c.id.in_(ids))
            .values(status=DeliveryStatus.SENT.value, sent_at=now, error=None, smtp_code=None, updated_at=now)
        )

    async def forget_user(self, user_id: uuid.UUID) -> set[str]:
        """Delete every delivery to the addresses the user's own events named (their emails, old
        and new), and every delivery caused by an event about the user (an admin's notice names
        them too); the addresses, lower case."""
        about = str(user_id)
        data = Delivery.event_data
        own = select(Delivery.event_data).where(data["user_id"].astext == about)
        addresses: set[str] = set()
        for event_data in (await self.session.execute(own)).scalars():
            for key in ("email", "old_email", "new_email"):
                if isinstance(value := (event_data or {}).get(key), str):
                    addresses.add(value.lower())
        await self.delete_where(
            or_(func.lower(Delivery.recipient).in_(addresses), data["user_id"].astext == about)
        )
        return addresses
