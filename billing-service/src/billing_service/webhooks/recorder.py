"""Storing verified webhooks with group commit: concurrent requests share one INSERT and one commit.

A request hands its event to the recorder and waits until it is committed (so a 2xx always means
"stored durably"). When no write is in flight, the recorder writes at once, adding no latency; while
one is, the events arriving meanwhile gather and go together in the next write. Under load a commit
(and its WAL flush) is paid once per group instead of once per webhook.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing_service.integrations.stripe import WebhookEvent
from billing_service.webhooks.repository import StripeEventRepository
from gatehouse_platform.tracing import current_trace_context


@dataclass
class _Waiting:
    event: WebhookEvent
    traceparent: str | None  # the receiving request's, kept with the event (the writer runs apart)
    stored: asyncio.Future[bool]


class EventRecorder:
    def __init__(self, session_factory: async_sessionmaker[AsyncSession], *, max_group: int = 500) -> None:
        self._sessions = session_factory
        self._max_group = max_group
        self._waiting: list[_Waiting] = []
        self._writer: asyncio.Task[None] | None = None

    async def record(self, event: WebhookEvent) -> bool:
        """Store the event once; True if it was new. Returns after the commit."""
        trace = current_trace_context().get("traceparent")
        waiting = _Waiting(event, trace, asyncio.get_running_loop().create_future())
        self._waiting.append(waiting)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write(), name="stripe-event-recorder")
        return await waiting.stored

    async def _write(self) -> None:
        # One session, so one pooled connection, through the whole burst: a checkout (and the
        # pool's pre-ping round trip) per group was a visible share of the endpoint's CPU. The outer
        # loop looks again once the session is closed: an event that came while it was closing
        # found this writer still running, so no other writer will store it.
        while self._waiting:
            async with self._sessions() as db:
                while self._waiting:
                    await self._write_group(db)

    async def _write_group(self, db: AsyncSession) -> None:
        group, self._waiting = self._waiting[: self._max_group], self._waiting[self._max_group :]
        try:
            async with db.begin():  # committed before any request of the group is answered
                new = await StripeEventRepository(db).record_many(
                    [(w.event, w.traceparent) for w in group], source="webhook"
                )
        except Exception as exc:
            for waiting in group:
                if not waiting.stored.done():
                    waiting.stored.set_exception(exc)
            return
        for waiting in group:
            if not waiting.stored.done():
                # A second copy of one event in the same group is a duplicate of the first.
                waiting.stored.set_result(waiting.event.id in new)
                new.discard(waiting.event.id)
