"""`system_router` (the console's System page, per service) against the real Postgres and RabbitMQ:
readiness checks, the outbox backlog and its oldest age, each consumer's queue and dead-letter queue
with their messages and consumers (passive declares, one connection per read), a broker that is
away as part of the answer; only callers the admin dependency lets through; and
`EventConsumer.queue_stats` serving `dead_letter_count`."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Annotated

import aio_pika
import httpx
import pytest
from fastapi import FastAPI, Header
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from gatehouse_contracts.envelope import new_event
from gatehouse_contracts.events import UserVerified
from gatehouse_platform.app import Lifespan, service_app
from gatehouse_platform.consumer import EventConsumer
from gatehouse_platform.db import session_scope, utcnow
from gatehouse_platform.errors import Forbidden
from gatehouse_platform.models import OutboxMessage
from gatehouse_platform.outbox import add_event, event_message
from gatehouse_platform.system import system_router

pytestmark = pytest.mark.timeout(60)


async def ok() -> None:
    return None


async def down() -> None:
    raise ConnectionRefusedError("nothing listens")


async def only_admins(x_role: Annotated[str, Header()] = "") -> None:
    if x_role != "admin":
        raise Forbidden("admins only")


def consumer_for(amqp_url: str) -> EventConsumer:
    return EventConsumer(
        amqp_url,
        exchange=f"test.events.{uuid.uuid4().hex[:8]}",
        name=f"test-system-{uuid.uuid4().hex[:8]}",
        handlers={},
        session_factory=None,
        retry_delays=(0.05,),
    )


def app_with(engine: AsyncEngine | None, consumers: list[EventConsumer]) -> FastAPI:
    async def extra() -> dict[str, object]:
        return {"own": 1}

    checks = {"database": ok}
    reported = {"broker": down}
    router = system_router(
        "/probe/admin/system",
        service="probe",
        admin=only_admins,
        checks=checks,
        reported=reported,
        engine=engine,
        consumers=consumers,
        extra=extra,
    )
    return service_app(
        title="probe",
        description="",
        services=None,
        lifespan=Lifespan(),
        checks=checks,
        reported_checks=reported,
        routers=[router],
    )


@pytest.fixture
async def client_for() -> AsyncIterator[object]:
    clients: list[httpx.AsyncClient] = []

    def make(app: FastAPI) -> httpx.AsyncClient:
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://probe", headers={"X-Role": "admin"}
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


async def dead_letters(amqp_url: str, consumer: EventConsumer, count: int) -> None:
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        await channel.declare_queue(
            consumer.dead_letter_queue, durable=True, arguments={"x-queue-type": "quorum"}
        )
        for _ in range(count):
            event = new_event(
                UserVerified(user_id=uuid.uuid4(), email="a@example.com", verified_at=utcnow()),
                source="/test",
            )
            await channel.default_exchange.publish(
                event_message(event), routing_key=consumer.dead_letter_queue
            )


async def test_the_system_state_has_checks_outbox_and_queues(
    amqp_url: str, engine: AsyncEngine, session_factory: async_sessionmaker[AsyncSession], client_for: object
) -> None:
    async with session_scope(session_factory) as session:
        await session.execute(delete(OutboxMessage))
        for _ in range(2):
            await add_event(
                session,
                UserVerified(user_id=uuid.uuid4(), email="a@example.com", verified_at=utcnow()),
                source="/test",
            )
    async with session_scope(session_factory) as session:  # as if written five minutes ago
        for row in (await session.execute(OutboxMessage.__table__.select())).all():
            await session.execute(
                OutboxMessage.__table__.update()
                .where(OutboxMessage.id == row.id)
                .values(created_at=utcnow() - timedelta(minutes=5))
            )
    running, idle = consumer_for(amqp_url), consumer_for(amqp_url)
    await running.start()
    try:
        await dead_letters(amqp_url, running, 3)
        client = client_for(app_with(engine, [running, idle]))  # type: ignore[operator]
        answer = await client.get("/probe/admin/system")
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["service"] == "probe" and body["ready"] is True
        assert body["checks"] == {"database": "ok"} and body["reported"] == {
            "broker": "fail: ConnectionRefusedError"
        }
        assert body["outbox"]["backlog"] == 2 and 290 < body["outbox"]["oldest_age_seconds"] < 600
        assert body["queues_error"] is None and body["extra"] == {"own": 1}
        first, second = body["consumers"]
        assert first["name"] == running.name
        assert first["main"] == {"name": running.name, "message_count": 0, "consumer_count": 1}
        assert first["dlq"] == {"name": running.dead_letter_queue, "message_count": 3, "consumer_count": 0}
        # a consumer never started: its queues are not declared yet and hold nothing
        assert second["main"]["message_count"] == 0 and second["dlq"]["message_count"] == 0
        assert await running.dead_letter_count() == 3
        assert await idle.dead_letter_count() == 0
        await running.stop()
        assert await running.dead_letter_count() == 3  # stopped: its own connection
        stopped = (await client.get("/probe/admin/system")).json()
        assert stopped["consumers"][0]["main"]["consumer_count"] == 0
    finally:
        await running.stop()


async def test_a_broker_away_is_part_of_the_answer_and_no_outbox_is_null(client_for: object) -> None:
    away = consumer_for("amqp://guest:guest@127.0.0.1:9/")
    client = client_for(app_with(None, [away]))  # type: ignore[operator]
    answer = await client.get("/probe/admin/system")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["outbox"] is None and body["outbox_error"] is None
    assert body["consumers"] == [] and body["queues_error"]


async def test_only_callers_the_admin_dependency_lets_through(client_for: object) -> None:
    client = client_for(app_with(None, []))  # type: ignore[operator]
    refused = await client.get("/probe/admin/system", headers={"X-Role": "user"})
    assert refused.status_code == 403 and refused.headers["content-type"] == "application/problem+json"
