"""The outbox and its relay against the real Postgres and RabbitMQ: what reaches a bound queue, when."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aio_pika
import pytest
from aio_pika.abc import AbstractConnection, AbstractIncomingMessage, AbstractQueue
from asgi_correlation_id import correlation_id
from prometheus_client import REGISTRY
from sqlalchemy import delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from gatehouse_contracts.envelope import CloudEvent
from gatehouse_contracts.events import UserVerified, parse_data
from gatehouse_platform.db import session_scope
from gatehouse_platform.models import OutboxMessage
from gatehouse_platform.outbox import OutboxRelay, add_event
from gatehouse_platform.tcp_proxy import TcpProxy
from gatehouse_platform.testing import eventually

pytestmark = pytest.mark.timeout(90)

SOURCE = "/test-service"
Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture(autouse=True)
async def empty_outbox(session_factory: Sessions) -> None:
    """A relay publishes every unpublished row of its database: each test starts from an empty outbox."""
    async with session_scope(session_factory) as session:
        await session.execute(delete(OutboxMessage))


@pytest.fixture
def exchange_name() -> str:
    return f"test.events.{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def broker(amqp_url: str) -> AsyncIterator[AbstractConnection]:
    connection = await aio_pika.connect(amqp_url)
    yield connection
    await connection.close()


@pytest.fixture
async def inbox(broker: AbstractConnection, exchange_name: str) -> AbstractQueue:
    """A queue of this test's own, bound to every `user.*` event on the test's exchange."""
    channel = await broker.channel()
    exchange = await channel.declare_exchange(exchange_name, aio_pika.ExchangeType.TOPIC, durable=True)
    queue = await channel.declare_queue(exclusive=True)
    await queue.bind(exchange, routing_key="user.*")
    return queue


async def receive(queue: AbstractQueue, count: int, within: float = 10) -> list[AbstractIncomingMessage]:
    messages: list[AbstractIncomingMessage] = []
    deadline = asyncio.get_running_loop().time() + within
    while len(messages) < count:
        message = await queue.get(no_ack=True, fail=False)
        if message is not None:
            messages.append(message)
        elif asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"received {len(messages)} of {count} messages")
        else:
            await asyncio.sleep(0.05)
    return messages


async def leftovers(queue: AbstractQueue) -> list[str | None]:
    ids = []
    while (message := await queue.get(no_ack=True, fail=False)) is not None:
        ids.append(message.message_id)
    return ids


def verified() -> UserVerified:
    return UserVerified(user_id=uuid.uuid4(), email="ada@example.com", verified_at=datetime.now(UTC))


async def write_events(session_factory: Sessions, count: int) -> list[str]:
    """`count` events, each committed in its own transaction (so in created_at order)."""
    ids = []
    for _ in range(count):
        async with session_scope(session_factory) as session:
            ids.append(str((await add_event(session, verified(), source=SOURCE)).id))
    return ids


async def unpublished_count(session_factory: Sessions) -> int:
    async with session_factory() as session:
        count = await session.scalar(
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.published_at.is_(None))
        )
    return count or 0


async def all_published(session_factory: Sessions) -> bool:
    return await unpublished_count(session_factory) == 0


def publish_failures() -> float:
    return REGISTRY.get_sample_value("gatehouse_outbox_publish_failures_total") or 0.0


def backlog() -> float | None:
    return REGISTRY.get_sample_value("gatehouse_outbox_backlog")


@contextlib.asynccontextmanager
async def running(*relays: OutboxRelay) -> AsyncIterator[None]:
    for relay in relays:
        await relay.start()
    try:
        yield
    finally:
        for relay in relays:
            await relay.stop()


async def test_committed_event_reaches_a_bound_queue_right_after_commit(
    engine: AsyncEngine, session_factory: Sessions, amqp_url: str, exchange_name: str, inbox: AbstractQueue
) -> None:
    # Polling every 30 s: an arrival within the 10 s wait can only come from LISTEN/NOTIFY.
    relay = OutboxRelay(engine, amqp_url, exchange=exchange_name, poll_interval=30)
    data = verified()
    async with running(relay):
        await eventually(lambda: relay.is_leader, "the only relay to lead")
        async with session_scope(session_factory) as session:
            event = await add_event(
                session, data, source=SOURCE, subject=str(data.user_id), correlation_id="req-123"
            )
        [message] = await receive(inbox, 1)

    assert message.routing_key == "user.verified"
    assert message.message_id == str(event.id)
    assert message.type == "user.verified"
    assert message.content_type == "application/cloudevents+json"
    assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    envelope = CloudEvent.model_validate_json(message.body)
    assert (envelope.id, envelope.source, envelope.subject) == (event.id, SOURCE, str(data.user_id))
    assert envelope.correlationid == "req-123"
    assert parse_data(envelope.type, envelope.data) == data
    async with session_factory() as session:
        row = await session.get(OutboxMessage, event.id)
    assert row is not None
    assert row.published_at is not None
    assert row.attempts == 0


async def test_every_event_of_a_transaction_goes_out_on_its_one_notify_even_after_a_savepoint_rolled_back(
    engine: AsyncEngine, session_factory: Sessions, amqp_url: str, exchange_name: str, inbox: AbstractQueue
) -> None:
    # Polling every 30 s: arrivals within the 10 s wait can only come from LISTEN/NOTIFY. The NOTIFY
    # sent in the rolled-back savepoint is gone with it; the next event must send its own.
    relay = OutboxRelay(engine, amqp_url, exchange=exchange_name, poll_interval=30)
    async with running(relay):
        await eventually(lambda: relay.is_leader, "the only relay to lead")
        async with session_scope(session_factory) as session:
            savepoint = await session.begin_nested()
            await add_event(session, verified(), source=SOURCE)
            await savepoint.rollback()
            events = [await add_event(session, verified(), source=SOURCE) for _ in range(3)]
        messages = await receive(inbox, 3)

    assert sorted(str(m.message_id) for m in messages) == sorted(str(e.id) for e in events)
    assert await leftovers(inbox) == []


async def test_event_takes_the_request_id_as_correlation_id(session_factory: Sessions) -> None:
    token = correlation_id.set("request-7")
    try:
        async with session_scope(session_factory) as session:
            event = await add_event(session, verified(), source=SOURCE)
    finally:
        correlation_id.reset(token)

    async with session_factory() as session:
        row = await session.get(OutboxMessage, event.id)
    assert row is not None
    assert row.payload["correlationid"] == "request-7"
    assert row.event_type == "user.verified"


async def test_rolled_back_change_publishes_nothing(
    engine: AsyncEngine, session_factory: Sessions, amqp_url: str, exchange_name: str, inbox: AbstractQueue
) -> None:
    rolled_back: list[uuid.UUID] = []

    async def change_that_fails() -> None:
        async with session_scope(session_factory) as session:
            rolled_back.append((await add_event(session, verified(), source=SOURCE)).id)
            await session.flush()
            raise RuntimeError("change failed")

    relay = OutboxRelay(engine, amqp_url, exchange=exchange_name, poll_interval=0.2)
    async with running(relay):
        with pytest.raises(RuntimeError, match="change failed"):
            await change_that_fails()
        [committed] = await write_events(session_factory, 1)
        [message] = await receive(inbox, 1)

    assert message.message_id == committed
    assert await leftovers(inbox) == []
    async with session_factory() as session:
        assert await session.get(OutboxMessage, rolled_back[0]) is None


async def test_publish_pending_once_publishes_in_created_at_order(
    engine: AsyncEngine, session_factory: Sessions, amqp_url: str, exchange_name: str, inbox: AbstractQueue
) -> None:
    ids = await write_events(session_factory, 5)
    relay = OutboxRelay(engine, amqp_url, exchange=exchange_name, batch_size=3)
    try:
        assert await relay.publish_pending_once() == 3
        assert await relay.publish_pending_once() == 2
        assert await relay.publish_pending_once() == 0
    finally:
        await relay.stop()

    messages = await receive(inbox, 5)
    assert [message.message_id for message in messages] == ids
    assert await leftovers(inbox) == []


async def test_events_written_while_the_broker_is_down_are_delivered_once_it_returns(
    engine: AsyncEngine, session_factory: Sessions, amqp_url: str, exchange_name: str, inbox: AbstractQueue
) -> None:
    proxy = TcpProxy.before(amqp_url)
    proxied_url = proxy.url(amqp_url)
    relay = OutboxRelay(engine, proxied_url, exchange=exchange_name, poll_interval=0.2, max_backoff=0.5)
    try:
        async with running(relay):
            # Down from the start.
            failures = publish_failures()
            first = await write_events(session_factory, 5)
            await eventually(lambda: publish_failures() > failures + 1, "the relay to fail at least twice")
            assert await unpublished_count(session_factory) == 5
            await eventually(lambda: backlog() == 5, "the backlog gauge to count the waiting events")
            assert (REGISTRY.get_sample_value("gatehouse_outbox_lag_seconds") or 0) > 0
            await proxy.open()
            received = await receive(inbox, 5)
            # Let every confirm reach the relay before cutting the line, or a lost confirm would
            # (rightly) cause a republish.
            await eventually(
                lambda: all_published(session_factory), "the first events to be marked published"
            )
            await eventually(lambda: backlog() == 0, "the backlog gauge to drop to zero")

            # Down again while running.
            await proxy.close()
            failures = publish_failures()
            second = await write_events(session_factory, 5)
            await eventually(lambda: publish_failures() > failures, "the relay to notice the outage")
            await proxy.open()
            received += await receive(inbox, 5)
            await eventually(lambda: all_published(session_factory), "every event marked published")
    finally:
        await proxy.close()

    assert [message.message_id for message in received] == first + second
    assert await leftovers(inbox) == []


async def test_only_one_of_two_relays_publishes_and_the_other_takes_over_when_it_dies(
    engine: AsyncEngine, session_factory: Sessions, amqp_url: str, exchange_name: str, inbox: AbstractQueue
) -> None:
    relays = [
        OutboxRelay(engine, amqp_url, exchange=exchange_name, poll_interval=0.2, max_backoff=0.5)
        for _ in "ab"
    ]
    async with running(*relays):
        await eventually(lambda: [r.is_leader for r in relays].count(True) == 1, "exactly one leader")
        [leader] = [r for r in relays if r.is_leader]
        [standby] = [r for r in relays if not r.is_leader]
        first = await write_events(session_factory, 10)
        received = await receive(inbox, 10)
        await eventually(lambda: all_published(session_factory), "the first events marked published")
        assert leader.is_leader
        assert not standby.is_leader

        # The leader's database connection dies (as when its process is killed): its lock goes with it.
        async with engine.connect() as conn:
            killed = await conn.scalar(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_locks"
                    " WHERE locktype = 'advisory' AND granted"
                    " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
                )
            )
        assert killed == 1
        await eventually(lambda: standby.is_leader and not leader.is_leader, "the standby to take over")
        second = await write_events(session_factory, 10)
        received += await receive(inbox, 10)
        await eventually(lambda: all_published(session_factory), "every event marked published")
        assert [r.is_leader for r in relays].count(True) == 1

    assert sorted(message.message_id or "" for message in received) == sorted(first + second)
    assert await leftovers(inbox) == []
