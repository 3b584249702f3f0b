"""Queries on the Stripe event log and on the reconciliation's cursor."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Text, cast, func, or_, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.sql.elements import ColumnElement

from billing_service.integrations.stripe import WebhookEvent
from billing_service.models import JobCursor, StripeEvent, StripeEventStatus
from gatehouse_platform.db import Repository, utcnow

DUE = (StripeEventStatus.PENDING, StripeEventStatus.FAILED)


# Built once: compiling a fresh INSERT for every webhook was a visible share of the endpoint's time.
_RECORD = (
    insert(StripeEvent).on_conflict_do_nothing(index_elements=[StripeEvent.id]).returning(StripeEvent.id)
)


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
        if len(events) == 1:
            event, traceparent = events[0]
            return {event.id} if await self.record(event, source=source, traceparent=traceparent) else set()
        stmt = (
            insert(StripeEvent)
            .values([_values(event, source, traceparent) for event, traceparent in events])
            .on_conflict_do_nothing(index_elements=[StripeEvent.id])
            .returning(StripeEvent.id)
        )
        return set((await self.session.execute(stmt)).scalars())

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
