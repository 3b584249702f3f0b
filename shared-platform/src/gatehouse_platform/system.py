"""`GET /<service>/admin/system`: what the admin console's System page shows of one service, read
now rather than scraped: its readiness checks (those that decide /readyz and those only reported),
its outbox (events not yet published and the age of the oldest), and each consumer's main queue and
dead-letter queue (messages waiting, consumers attached). A service adds what is its own through
`extra` (billing: the Stripe events waiting and the receive-to-apply lag).

One router for every service: each passes its admin dependency, its checks, its engine (None
without an outbox) and its consumers. A broker that is away is part of the answer (`queues_error`),
never a 5xx: this page is read when things go wrong."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from gatehouse_platform.consumer import EventConsumer, QueueStats
from gatehouse_platform.db import utcnow
from gatehouse_platform.errors import Forbidden, Unauthorized, responses
from gatehouse_platform.http import ReadinessCheck, run_checks
from gatehouse_platform.models import OutboxMessage

BROKER_SECONDS = 3.0


class QueueOut(BaseModel):
    name: str
    message_count: int = Field(description="Messages ready, not yet taken")
    consumer_count: int


class ConsumerOut(BaseModel):
    name: str
    main: QueueOut
    dlq: QueueOut


class OutboxOut(BaseModel):
    backlog: int = Field(description="Events written, not yet confirmed by the broker")
    oldest_age_seconds: float | None = Field(description="Age of the oldest of them (null: none)")


class SystemOut(BaseModel):
    service: str
    ready: bool = Field(description="Every check that decides /readyz passed")
    checks: dict[str, str] = Field(description="name → `ok` or `fail: <error type>`")
    reported: dict[str, str] = Field(description="What the service rides out (broker, SMTP)")
    outbox: OutboxOut | None = Field(description="null: the service publishes no events, or see outbox_error")
    outbox_error: str | None = Field(description="Why the outbox could not be read (database away)")
    consumers: list[ConsumerOut]
    queues_error: str | None = Field(description="Why the queues could not be read (broker away)")
    extra: dict[str, Any] = Field(default_factory=dict, description="The service's own figures")


async def outbox_state(engine: AsyncEngine) -> tuple[OutboxOut | None, str | None]:
    """One query on the partial index of unpublished rows (as the relay's own measure)."""
    try:
        return await asyncio.wait_for(_outbox(engine), BROKER_SECONDS), None
    except Exception as exc:  # the database away is an answer here, not an error
        return None, type(exc).__name__


async def _outbox(engine: AsyncEngine) -> OutboxOut:
    async with engine.connect() as connection:
        waiting, oldest = (
            await connection.execute(
                select(func.count(), func.min(OutboxMessage.created_at)).where(
                    OutboxMessage.published_at.is_(None)
                )
            )
        ).one()
    age = None if oldest is None else max((utcnow() - oldest) / timedelta(seconds=1), 0.0)
    return OutboxOut(backlog=int(waiting), oldest_age_seconds=age)


async def consumers_state(consumers: Sequence[EventConsumer]) -> tuple[list[ConsumerOut], str | None]:
    try:
        found = await asyncio.wait_for(
            asyncio.gather(*(consumer.queue_stats() for consumer in consumers)), BROKER_SECONDS * 2
        )
    except Exception as exc:  # the broker away is an answer here, not an error
        return [], type(exc).__name__
    return [
        ConsumerOut(
            name=consumer.name,
            main=QueueOut(**_queue(stats["main"])),
            dlq=QueueOut(**_queue(stats["dlq"])),
        )
        for consumer, stats in zip(consumers, found, strict=True)
    ], None


def _queue(stats: QueueStats) -> dict[str, Any]:
    return {"name": stats.name, "message_count": stats.message_count, "consumer_count": stats.consumer_count}


def system_router(
    path: str,
    *,
    service: str,
    admin: Callable[..., Any],
    checks: Mapping[str, ReadinessCheck],
    reported: Mapping[str, ReadinessCheck] | None = None,
    engine: AsyncEngine | None = None,
    consumers: Sequence[EventConsumer] = (),
    extra: Callable[[], Awaitable[dict[str, Any]]] | None = None,
    tags: Sequence[str] = ("admin",),
) -> APIRouter:
    """The route at `path` (e.g. `/billing/admin/system`), for callers `admin` lets through."""
    router = APIRouter(tags=list(tags))

    @router.get(
        path,
        summary="This service's readiness, outbox and queues, read now (admins)",
        responses=responses(Unauthorized, Forbidden),
        dependencies=[Depends(admin)],
    )
    async def system() -> SystemOut:
        required, others, (outbox, outbox_error), (queues, queues_error), own = await asyncio.gather(
            run_checks(checks),
            run_checks(reported or {}),
            outbox_state(engine) if engine is not None else _no_outbox(),
            consumers_state(consumers),
            extra() if extra is not None else _empty(),
        )
        return SystemOut(
            service=service,
            ready=all(result == "ok" for result in required.values()),
            checks=required,
            reported=others,
            outbox=outbox,
            outbox_error=outbox_error,
            consumers=queues,
            queues_error=queues_error,
            extra=own,
        )

    return router


async def _no_outbox() -> tuple[None, None]:
    return None, None


async def _empty() -> dict[str, Any]:
    return {}
