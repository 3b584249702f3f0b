"""Queries on the Stripe event log and on the reconciliation's cursor."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Table, Text, bindparam, cast, func, or_, select, tuple_, update
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, insert
from sqlalchemy.sql.dml import ReturningInsert
from sqlalchemy.sql.elements import ColumnElement

from billing_service.integrations.stripe import WebhookEvent
from billing_service.models import JobCursor, StripeEvent, StripeEventStatus
from gatehouse_platform.db import Repository, utcnow

DUE = (StripeEventStatus.PENDING, StripeEventStatus.FAILED)


# Built once: compiling a fresh INSERT for every webhook was a visible share of the endpoint's time.
_RECORD = (
    insert(StripeEvent).on_conflict_do_nothing(index_elements=[StripeEvent.id]).returning(StripeEvent.id)
)


_RECORDED = ("id", "type", "object_id", "api_version", "stripe_created_at", "payload", "traceparent")


def _record_many_statement() -> ReturningInsert[str]:
    """Any number of events in one INSERT whose text never changes: the columns arrive as arrays
    (`unnest`), so SQLAlchemy compiles it once and asyncpg prepares it once per connection, where a
    multi-row VALUES was compiled and prepared anew for every group size. The payloads travel as
    JSON text, cast to JSONB in the statement."""
    table = StripeEvent.__table__
    assert isinstance(table, Table)
    arrays = [
        bindparam(name, type_=ARRAY(Text() if name == "payload" else table.c[name].type))
        for name in _RECORDED
    ]
    rows = func.unnest(*arrays).table_valued(*_RECORDED).render_derived()
    columns = [cast(rows.c.payload, JSONB) if name == "payload" else rows.c[name] for name in _RECORDED]
    source = bindparam("source", type_=table.c.source.type)
    # on the table, not the mapped class: the ORM would take the arrays for one row's values
    return (
        insert(table)
        .from_select([*_RECORDED, "source"], select(*columns, source))
        .on_conflict_do_nothing(index_elements=[table.c.id])
        .returning(table.c.id)
    )


_RECORD_MANY = _record_many_statement()


def _values(event: WebhookEvent, source: str, traceparent: str | None = None) -> dict[str, object]:
    return {
        "id": event.id,
        "type": event.type,
        "object_id": event.object_id,
        "api_version": event.api_version,
        "stripe_created_at": event.created,
        "payload": event.payload,
        "source": source,
        "traceparent": traceparent,
    }


class StripeEventRepository(Repository[StripeEvent]):
    model = StripeEvent

    async def record(self, event: WebhookEvent, *, source: str, traceparent: str | None = None) -> bool:
        """Store the event once (by its `evt_…` id); True if it was new. `traceparent` is the
        receiving request's trace, which processing the event continues."""
        return await self.session.scalar(_RECORD, _values(event, source, traceparent)) is not None

    async def record_many(
        self, events: Sequence[tuple[WebhookEvent, str | None]], *, source: str
    ) -> set[str]:
        """Store each (event, traceparent) once, in one statement; returns the ids that were new."""
        if not events:
            return set()
        columns: dict[str, list[object]] = {name: [] for name in _RECORDED}
        for event, traceparent in events:
            for name, value in _values(event, source, traceparent).items():
                if name in columns:
                    columns[name].append(json.dumps(value) if name == "payload" else value)
        result = await self.session.execute(_RECORD_MANY, {**columns, "source": source})
        return set(result.scalars())

    async def claim_due(self, limit: int) -> list[StripeEvent]:
        """Lock a batch of events due for processing, oldest (by Stripe's clock) first. Rows another
        worker holds are skipped, so concurrent workers never process the same event."""
        stmt = (
            select(StripeEvent)
            .where(StripeEvent.status.in_(DUE), StripeEvent.next_attempt_at <= func.now())
            .order_by(StripeEvent.stripe_created_at, StripeEvent.received_at, StripeEvent.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def mark_done(self, ids: Sequence[str], status: StripeEventStatus) -> None:
        if ids:
            await self.session.execute(
                update(StripeEvent)
                .where(StripeEvent.id.in_(ids))
                .values(
                    status=status,
                    processed_at=utcnow(),
                    attempts=StripeEvent.attempts + 1,
                    last_error=None,
                )
            )

    async def page(
        self,
        *,
        limit: int,
        after: tuple[datetime, str] | None,
        status: StripeEventStatus | None = None,
        type_: str | None = None,
        object_id: str | None = None,
    ) -> list[StripeEvent]:
        """The log, newest received first, keyset-paginated on (received_at, id)."""
        stmt = select(StripeEvent)
        if status is not None:
            stmt = stmt.where(StripeEvent.status == status)
        if type_ is not None:
            stmt = stmt.where(StripeEvent.type == type_)
        if object_id is not None:
            stmt = stmt.where(StripeEvent.object_id == object_id)
        if after is not None:
            stmt = stmt.where(tuple_(StripeEvent.received_at, StripeEvent.id) < tuple_(*after))
        stmt = stmt.order_by(StripeEvent.received_at.desc(), StripeEvent.id.desc()).limit(limit)
        return list((await self.session.execute(stmt)).scalars())

    async def oldest_due(self) -> datetime | None:
        return await self.session.scalar(
            select(func.min(StripeEvent.received_at)).where(StripeEvent.status.in_(DUE))
        )

    async def forget_customer(self, customer_id: str, *, including: str | None = None) -> int:
        """Delete the handled events that name the Stripe customer (their payloads carry the
        person's email and name), and the event `including` (the one being handled)."""
        mentions = cast(StripeEvent.payload, Text).contains(f'"{customer_id}"')
        handled: ColumnElement[bool] = StripeEvent.status.not_in(DUE)
        if including is not None:
            handled = or_(handled, StripeEvent.id == including)
        return await self.delete_where(mentions, handled)

    async def waiting(self) -> tuple[int, int, datetime | None]:
        """Events pending, events failed, and when the oldest of them was received."""
        waiting = StripeEvent.status.in_([StripeEventStatus.PENDING, StripeEventStatus.FAILED])
        pending, failed, oldest = (
            await self.session.execute(
                select(
                    func.count().filter(StripeEvent.status == StripeEventStatus.PENDING),
                    func.count().filter(StripeEvent.status == StripeEventStatus.FAILED),
                    func.min(StripeEvent.received_at).filter(waiting),
                )
            )
        ).one()
        return int(pending), int(failed), oldest

    async def apply_lag(self, *, since: datetime) -> tuple[float | None, float | None, int]:
        """The median and the worst receive-to-apply lag in seconds of the events applied since
        `since`, and how many they are."""
        lag = func.extract("epoch", StripeEvent.processed_at - StripeEvent.received_at)
        median, worst, applied = (
            await self.session.execute(
                select(func.percentile_cont(0.5).within_group(lag), func.max(lag), func.count()).where(
                    StripeEvent.status == StripeEventStatus.PROCESSED, StripeEvent.processed_at >= since
                )
            )
        ).one()
        return (
            None if median is None else float(median),
            None if worst is None else float(worst),
            int(applied),
        )


class JobCursorRepository(Repository[JobCursor]):
    """Where a periodic job got to, by the job's name (the primary key)."""

    model = JobCursor
