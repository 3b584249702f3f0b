"""The webhook recorder's group commit (webhooks/recorder.py): every event handed to it is stored
and answered, whenever it comes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import cast

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing_service.integrations.stripe import WebhookEvent
from billing_service.models import StripeEvent
from billing_service.webhooks.recorder import EventRecorder

HANG_GUARD_SECONDS = 30  # not a timing assertion: only so that a lost event fails instead of hanging


class SlowToClose:
    """Sessions that, once their block is done, wait to be let go before they close: the moment a
    writer has stored its last group and is giving its connection back."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions
        self.closing = asyncio.Event()
        self.let_go = asyncio.Event()

    @asynccontextmanager
    async def __call__(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session:
            yield session
            self.closing.set()
            await self.let_go.wait()


def webhook_event() -> WebhookEvent:
    event_id = f"evt_recorder_{uuid.uuid4().hex}"
    invoice = {"id": "in_recorder"}
    payload = {"id": event_id, "type": "invoice.paid", "data": {"object": invoice}}
    return WebhookEvent(
        id=event_id,
        type="invoice.paid",
        created=datetime.now(UTC),
        api_version=None,
        object_id="in_recorder",
        object=invoice,
        payload=payload,
    )


async def test_an_event_that_comes_while_the_writer_gives_its_connection_back_is_stored(
    db: async_sessionmaker[AsyncSession],
) -> None:
    sessions = SlowToClose(db)
    recorder = EventRecorder(cast(async_sessionmaker[AsyncSession], sessions))
    first, second = webhook_event(), webhook_event()
    stored_first = asyncio.create_task(recorder.record(first))
    await asyncio.wait_for(sessions.closing.wait(), HANG_GUARD_SECONDS)
    stored_second = asyncio.create_task(recorder.record(second))
    await asyncio.sleep(0)  # handed over while the writer is still running
    sessions.let_go.set()

    assert await asyncio.wait_for(stored_first, HANG_GUARD_SECONDS) is True
    assert await asyncio.wait_for(stored_second, HANG_GUARD_SECONDS) is True
    async with db() as session:
        assert await session.get(StripeEvent, second.id) is not None
