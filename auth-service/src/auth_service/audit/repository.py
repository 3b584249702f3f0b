"""Queries on the audit trail."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Exists, String, Text, and_, bindparam, exists, or_, select, update
from sqlalchemy.dialects.postgresql import array

from auth_service.models import AuditEvent
from gatehouse_platform.db import Repository


def _signed_in(*recent: ColumnElement[bool]) -> Exists:
    return exists().where(
        AuditEvent.user_id == bindparam("user_id"), AuditEvent.type == bindparam("type"), *recent
    )


_RECENT = AuditEvent.occurred_at >= bindparam("since")
# Built once, at import (a login runs it). Three EXISTS, each stopping at its first row: a user's
# thousandth sign-in costs what their second does. A None device or network matches nothing.
_SIGN_IN_MEMORY = select(
    _signed_in(),
    _signed_in(_RECENT, AuditEvent.device == bindparam("device", type_=String)),
    _signed_in(_RECENT, AuditEvent.network == bindparam("network", type_=String)),
)


@dataclass(frozen=True)
class SignInMemory:
    """What the trail remembers of a user's successful sign-ins."""

    any_before: bool  # any at all (within retention): none means this is the first
    device_seen: bool  # this device since the horizon
    network_seen: bool  # this network since the horizon


class AuditEventRepository(Repository[AuditEvent]):
    model = AuditEvent

    async def page(
        self,
        *,
        limit: int,
        after: tuple[datetime, uuid.UUID] | None,
        user_id: uuid.UUID | None = None,
        type_: str | None = None,
        since: datetime | None = None,
    ) -> list[AuditEvent]:
        """Newest first, keyset-paginated on (occurred_at, id)."""
        stmt = select(AuditEvent)
        if user_id is not None:
            stmt = stmt.where(AuditEvent.user_id == user_id)
        if type_ is not None:
            stmt = stmt.where(AuditEvent.type == type_)
        if since is not None:
            stmt = stmt.where(AuditEvent.occurred_at >= since)
        if after is not None:
            at, last_id = after
            stmt = stmt.where(
                or_(AuditEvent.occurred_at < at, and_(AuditEvent.occurred_at == at, AuditEvent.id < last_id))
            )
        stmt = stmt.order_by(AuditEvent.occurred_at.desc(), AuditEvent.id.desc()).limit(limit)
        return list((await self.session.execute(stmt)).scalars())

    async def sign_in_memory(
        self, user_id: uuid.UUID, type_: str, *, since: datetime, device: str | None, network: str | None
    ) -> SignInMemory:
        params = {"user_id": user_id, "type": type_, "since": since, "device": device, "network": network}
        any_before, device_seen, network_seen = (await self.session.execute(_SIGN_IN_MEMORY, params)).one()
        return SignInMemory(any_before=any_before, device_seen=device_seen, network_seen=network_seen)

    async def purge(self, horizon: datetime) -> int:
        """The retention purge: the only delete the trail knows."""
        return await self.delete_where(AuditEvent.occurred_at < horizon)

    async def strip_personal(self, user_id: uuid.UUID, detail_keys: tuple[str, ...]) -> int:
        """The user's trail without what identifies the person: address, its place, user agent,
        device, network and the `detail_keys` of the details (emails, names). What happened, and
        when, stays."""
        stmt = (
            update(AuditEvent)
            .where(AuditEvent.user_id == user_id)
            .values(
                ip=None,
                place=None,
                user_agent=None,
                device=None,
                network=None,
                details=AuditEvent.details.op("-")(array(list(detail_keys), type_=Text)),
            )
        )
        result = await self.session.execute(stmt)
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
