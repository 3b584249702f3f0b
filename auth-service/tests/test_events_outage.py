"""Events written while RabbitMQ is unreachable reach the bus exactly once when it returns.

auth-service runs here on a database of its own (so its relay is the only one publishing) and
talks to the broker through a TCP proxy; closing the proxy is the outage.
"""

from __future__ import annotations

import asyncio

import httpx
from asgi_lifespan import LifespanManager
from sqlalchemy import func, select

from auth_service.main import create_app
from conftest import EventTap, make_settings, new_email, sign_up
from gatehouse_platform.db import make_engine, make_session_factory
from gatehouse_platform.models import OutboxMessage
from gatehouse_platform.tcp_proxy import TcpProxy


async def unpublished(database_url: str) -> int:
    engine = make_engine(database_url, pool_size=1)
    try:
        async with make_session_factory(engine)() as session:
            count = await session.scalar(
                select(func.count()).select_from(OutboxMessage).where(OutboxMessage.published_at.is_(None))
            )
            return int(count or 0)
    finally:
        await engine.dispose()


async def test_events_written_during_a_broker_outage_arrive_once_after_it(
    own_database: str, amqp_url: str, events: EventTap
) -> None:
    proxy = TcpProxy.before(amqp_url)
    await proxy.open()
    settings = make_settings(own_database, proxy.url(amqp_url))
    app = create_app(settings)
    emails = [new_email() for _ in range(3)]
    try:
        async with (
            LifespanManager(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://auth.test") as client,
        ):
            await proxy.close()  # the broker is gone
            for email in emails:
                await sign_up(client, email)  # sign-up still works: the events wait in the outbox
            await asyncio.sleep(1.5)  # several relay polls fail meanwhile
            assert await unpublished(own_database) >= len(emails)

            await proxy.open()  # the broker is back
            for email in emails:
                await events.wait_for("user.registered", lambda e, email=email: e["data"]["email"] == email)
            delivered = await events.all_of("user.registered", lambda e: e["data"]["email"] in emails)
            assert sorted(e["data"]["email"] for e in delivered) == sorted(emails)  # each exactly once
            assert await unpublished(own_database) == 0
    finally:
        await proxy.close()
