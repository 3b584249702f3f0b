"""EventConsumer against the real Postgres and RabbitMQ: effects, idempotency, retries, dead letters."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

import aio_pika
import pytest
from aio_pika.abc import AbstractChannel, AbstractConnection
from asgi_correlation_id import correlation_id
from prometheus_client import REGISTRY
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

# The proxy that plays the broker outage; it belongs in gatehouse_platform.testing once shared.
from gatehouse_contracts.envelope import CloudEvent, EventData, new_event
from gatehouse_contracts.events import UserVerified
from gatehouse_platform.consumer import DEATH_REASON_HEADER, EventConsumer, Handler, PermanentFailure
from gatehouse_platform.models import ProcessedEvent
from gatehouse_platform.tcp_proxy import TcpProxy
from gatehouse_platform.testing import eventually

pytestmark = pytest.mark.timeout(90)

Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture(scope="module", autouse=True)
async def effects_table(engine: AsyncEngine) -> None:
    """What handlers in these tests do: one row per run, no uniqueness, so a double effect shows."""
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "CREATE TABLE IF NOT EXISTS consumer_test_effects"
                " (id bigserial PRIMARY KEY, consumer text NOT NULL, event_id uuid NOT NULL, request_id text)"
            )
        )


@pytest.fixture
def consumer_name() -> str:
    return f"test-consumer-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def exchange_name() -> str:
    return f"test.events.{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def broker(amqp_url: str) -> AsyncIterator[AbstractConnection]:
    connection = await aio_pika.connect(amqp_url)
    yield connection
    await connection.close()


@pytest.fixture
async def channel(broker: AbstractConnection, exchange_name: str) -> AbstractChannel:
    channel = await broker.channel(publisher_confirms=True)
    await channel.declare_exchange(exchange_name, aio_pika.ExchangeType.TOPIC, durable=True)
    return channel


@pytest.fixture
async def make_consumer(
    amqp_url: str, exchange_name: str, consumer_name: str, session_factory: Sessions
) -> AsyncIterator[Callable[..., Awaitable[EventConsumer]]]:
    started: list[EventConsumer] = []

    async def make(
        handlers: Mapping[str, Handler], *, retry_delays: Sequence[float] = (0.05, 0.1), prefetch: int = 16
    ) -> EventConsumer:
        consumer = EventConsumer(
            amqp_url,
            exchange=exchange_name,
            name=consumer_name,
            handlers=handlers,
            session_factory=session_factory,
            prefetch=prefetch,
            retry_delays=retry_delays,
            queue_probe_seconds=0.1,
        )
        await consumer.start()
        started.append(consumer)
        return consumer

    yield make
    for consumer in started:
        await consumer.stop()


@pytest.fixture
async def consumer_behind_a_proxy(
    amqp_url: str, exchange_name: str, consumer_name: str, session_factory: Sessions
) -> AsyncIterator[Callable[[Handler], Awaitable[TcpProxy]]]:
    """A consumer of user.verified reaching the broker through a proxy (open): close the proxy to
    cut the link; the consumer reconnects every half second once it opens again."""
    started: list[tuple[EventConsumer, TcpProxy]] = []

    async def start(handler: Handler) -> TcpProxy:
        proxy = TcpProxy.before(amqp_url)
        proxied = urlsplit(proxy.url(amqp_url))._replace(query="reconnect_interval=0.5")
        consumer = EventConsumer(
            urlunsplit(proxied),
            exchange=exchange_name,
            name=consumer_name,
            handlers={"user.verified": handler},
            session_factory=session_factory,
        )
        await proxy.open()
        await consumer.start()
        started.append((consumer, proxy))
        return proxy

    yield start
    for consumer, proxy in started:
        await consumer.stop()
        await proxy.close()


def verified_event(correlation: str | None = None) -> CloudEvent:
    data = UserVerified(user_id=uuid.uuid4(), email="ada@example.com", verified_at=datetime.now(UTC))
    return new_event(data, source="/auth-service", subject=str(data.user_id), correlation_id=correlation)


async def publish(channel: AbstractChannel, exchange_name: str, body: bytes, routing_key: str) -> None:
    exchange = await channel.get_exchange(exchange_name, ensure=False)
    await exchange.publish(
        aio_pika.Message(body, message_id=str(uuid.uuid4()), delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
        routing_key=routing_key,
    )


async def publish_event(channel: AbstractChannel, exchange_name: str, event: CloudEvent) -> None:
    await publish(channel, exchange_name, event.model_dump_json().encode(), event.type)


async def record_effect(session: AsyncSession, event: CloudEvent, consumer: str) -> None:
    await session.execute(
        text(
            "INSERT INTO consumer_test_effects (consumer, event_id, request_id)"
            " VALUES (:consumer, :event_id, :rid)"
        ),
        {"consumer": consumer, "event_id": event.id, "rid": correlation_id.get()},
    )


async def effects(session_factory: Sessions, consumer: str) -> list[tuple[uuid.UUID, str | None]]:
    async with session_factory() as session:
        rows = await session.execute(
            text("SELECT event_id, request_id FROM consumer_test_effects WHERE consumer = :c ORDER BY id"),
            {"c": consumer},
        )
        return [(row.event_id, row.request_id) for row in rows]


async def ready_messages(channel: AbstractChannel, queue_name: str) -> int:
    queue = await channel.declare_queue(queue_name, passive=True)
    count = queue.declaration_result.message_count
    assert count is not None
    return count


async def ready_count_is(channel: AbstractChannel, queue_name: str, expected: int) -> bool:
    return await ready_messages(channel, queue_name) == expected


async def has_effects(session_factory: Sessions, consumer: str, count: int) -> bool:
    return len(await effects(session_factory, consumer)) == count


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_a_redelivered_event_has_its_effect_once(
    make_consumer: Callable[..., Awaitable[EventConsumer]],
    channel: AbstractChannel,
    exchange_name: str,
    consumer_name: str,
    session_factory: Sessions,
) -> None:
    runs = 0

    async def handler(session: AsyncSession, event: CloudEvent, data: EventData) -> None:
        nonlocal runs
        runs += 1
        assert isinstance(data, UserVerified)
        await record_effect(session, event, consumer_name)
        # Keep the transaction open so the duplicates, delivered concurrently, race this one.
        await asyncio.sleep(0.3)

    await make_consumer({"user.verified": handler})
    event = verified_event(correlation="req-42")
    for _ in range(3):
        await publish_event(channel, exchange_name, event)

    await eventually(
        lambda: (
            metric("gatehouse_events_duplicates_total", consumer=consumer_name, event_type="user.verified")
            == 2
        ),
        "both duplicates to be skipped",
    )
    assert runs == 1
    assert await effects(session_factory, consumer_name) == [(event.id, "req-42")]
    async with session_factory() as session:
        recorded = await session.scalar(
            select(func.count()).select_from(ProcessedEvent).where(ProcessedEvent.consumer == consumer_name)
        )
    assert recorded == 1
    await eventually(lambda: ready_count_is(channel, consumer_name, 0), "the queue to be empty")


async def test_a_failing_handler_is_retried_until_it_succeeds(
    make_consumer: Callable[..., Awaitable[EventConsumer]],
    channel: AbstractChannel,
    exchange_name: str,
    consumer_name: str,
    session_factory: Sessions,
) -> None:
    runs = 0

    async def flaky(session: AsyncSession, event: CloudEvent, data: EventData) -> None:
        nonlocal runs
        runs += 1
        await record_effect(session, event, consumer_name)
        if runs <= 2:
            raise RuntimeError("downstream hiccup")  # rolls the effect above back

    consumer = await make_consumer({"user.verified": flaky}, retry_delays=(0.1, 0.2, 0.3))
    event = verified_event()
    await publish_event(channel, exchange_name, event)

    await eventually(lambda: has_effects(session_factory, consumer_name, 1), "the third run to succeed")
    assert runs == 3
    assert await effects(session_factory, consumer_name) == [(event.id, None)]
    assert await ready_messages(channel, consumer.dead_letter_queue) == 0
    assert metric("gatehouse_events_retried_total", consumer=consumer_name, event_type="user.verified") == 2


async def test_an_event_failing_every_retry_is_dead_lettered_and_can_be_replayed(
    make_consumer: Callable[..., Awaitable[EventConsumer]],
    channel: AbstractChannel,
    exchange_name: str,
    consumer_name: str,
    session_factory: Sessions,
) -> None:
    runs = 0
    healthy = False

    async def handler(session: AsyncSession, event: CloudEvent, data: EventData) -> None:
        nonlocal runs
        runs += 1
        if not healthy:
            raise RuntimeError("downstream down")
        await record_effect(session, event, consumer_name)

    consumer = await make_consumer({"user.verified": handler}, retry_delays=(0.05, 0.1))
    event = verified_event()
    await publish_event(channel, exchange_name, event)

    await eventually(lambda: ready_count_is(channel, consumer.dead_letter_queue, 1), "a dead letter")
    assert runs == 3  # the first delivery and two retries
    assert await effects(session_factory, consumer_name) == []

    healthy = True
    assert await consumer.replay_dead_letters(limit=10) == 1
    await eventually(
        lambda: has_effects(session_factory, consumer_name, 1), "the replayed event to be handled"
    )
    assert runs == 4
    assert await ready_messages(channel, consumer.dead_letter_queue) == 0
    assert await consumer.replay_dead_letters(limit=10) == 0


async def test_a_permanent_failure_is_dead_lettered_at_once_and_replays_like_any_dead_letter(
    make_consumer: Callable[..., Awaitable[EventConsumer]],
    channel: AbstractChannel,
    exchange_name: str,
    consumer_name: str,
    session_factory: Sessions,
) -> None:
    runs = 0
    refusing = True

    async def handler(session: AsyncSession, event: CloudEvent, data: EventData) -> None:
        nonlocal runs
        runs += 1
        await record_effect(session, event, consumer_name)  # rolled back with the failure
        if refusing:
            raise PermanentFailure("recipient refused (550)")

    consumer = await make_consumer({"user.verified": handler}, retry_delays=(0.05, 0.1, 0.2))
    event = verified_event()
    await publish_event(channel, exchange_name, event)

    await eventually(lambda: ready_count_is(channel, consumer.dead_letter_queue, 1), "a dead letter")
    assert runs == 1  # no retries
    assert await effects(session_factory, consumer_name) == []
    assert metric("gatehouse_events_dead_lettered_total", consumer=consumer_name, reason="rejected") == 1
    assert metric("gatehouse_events_retried_total", consumer=consumer_name, event_type="user.verified") == 0
    dlq = await channel.get_queue(consumer.dead_letter_queue)
    dead = await dlq.get(fail=False)
    assert dead is not None
    assert dead.headers[DEATH_REASON_HEADER] == "rejected: recipient refused (550)"
    await dead.nack(requeue=True)

    refusing = False
    assert await consumer.replay_dead_letters(limit=10) == 1
    await eventually(lambda: has_effects(session_factory, consumer_name, 1), "the replayed event handled")
    assert runs == 2
    assert await effects(session_factory, consumer_name) == [(event.id, None)]


async def test_malformed_messages_go_straight_to_the_dead_letter_queue(
    make_consumer: Callable[..., Awaitable[EventConsumer]],
    channel: AbstractChannel,
    exchange_name: str,
    consumer_name: str,
    session_factory: Sessions,
) -> None:
    runs = 0

    async def handler(session: AsyncSession, event: CloudEvent, data: EventData) -> None:
        nonlocal runs
        runs += 1
        await record_effect(session, event, consumer_name)

    consumer = await make_consumer({"user.verified": handler})
    bad_data = verified_event().model_dump(mode="json")
    bad_data["data"] = {"user_id": "not-a-uuid", "email": "s3cret-input", "verified_at": "yesterday"}
    unknown_type = verified_event().model_dump(mode="json") | {"type": "user.teleported"}
    await publish(channel, exchange_name, b"{not json", "user.verified")
    await publish(channel, exchange_name, b'{"specversion": "1.0", "type": "user.verified"}', "user.verified")
    await publish(channel, exchange_name, json.dumps(bad_data).encode(), "user.verified")
    # Not routable through the exchange (no binding), so straight into the consumer's queue.
    await channel.default_exchange.publish(aio_pika.Message(json.dumps(unknown_type).encode()), consumer_name)
    good = verified_event()
    await publish_event(channel, exchange_name, good)

    await eventually(lambda: ready_count_is(channel, consumer.dead_letter_queue, 4), "four dead letters")
    await eventually(lambda: has_effects(session_factory, consumer_name, 1), "the good event to be handled")
    assert runs == 1
    assert await effects(session_factory, consumer_name) == [(good.id, None)]

    dlq = await channel.get_queue(consumer.dead_letter_queue)
    reasons = []
    while (message := await dlq.get(no_ack=True, fail=False)) is not None:
        reasons.append(str(message.headers[DEATH_REASON_HEADER]))
    assert len(reasons) == 4
    assert all(reason.startswith("malformed: ") for reason in reasons)
    assert any("no handler" in reason for reason in reasons)
    assert not any("s3cret" in reason for reason in reasons)


async def test_the_queue_gauge_shows_the_backlog_and_the_dead_letters(
    make_consumer: Callable[..., Awaitable[EventConsumer]],
    channel: AbstractChannel,
    exchange_name: str,
    consumer_name: str,
    session_factory: Sessions,
) -> None:
    release = asyncio.Event()

    async def handler(session: AsyncSession, event: CloudEvent, data: EventData) -> None:
        await release.wait()
        await record_effect(session, event, consumer_name)

    def waiting(queue: str) -> float | None:
        return REGISTRY.get_sample_value(
            "gatehouse_consumer_queue_messages", {"consumer": consumer_name, "queue": queue}
        )

    await make_consumer({"user.verified": handler}, prefetch=1)
    for _ in range(3):
        await publish_event(channel, exchange_name, verified_event())
    await publish(channel, exchange_name, b"not json", "user.verified")
    # One event in the handler, two behind it, the malformed message behind them.
    await eventually(lambda: waiting("main") == 3, "the backlog of three")
    release.set()
    await eventually(lambda: has_effects(session_factory, consumer_name, 3), "every event handled")
    await eventually(lambda: waiting("main") == 0 and waiting("dlq") == 1, "an empty queue, one dead letter")


async def test_stop_waits_for_the_handler_in_flight(
    make_consumer: Callable[..., Awaitable[EventConsumer]],
    channel: AbstractChannel,
    exchange_name: str,
    consumer_name: str,
    session_factory: Sessions,
) -> None:
    started = asyncio.Event()

    async def slow(session: AsyncSession, event: CloudEvent, data: EventData) -> None:
        started.set()
        await asyncio.sleep(1)
        await record_effect(session, event, consumer_name)

    consumer = await make_consumer({"user.verified": slow})
    event = verified_event()
    await publish_event(channel, exchange_name, event)
    await asyncio.wait_for(started.wait(), timeout=10)

    await consumer.stop()

    assert await effects(session_factory, consumer_name) == [(event.id, None)]
    # Acknowledged before the connection closed, so not handed back for redelivery.
    await eventually(lambda: ready_count_is(channel, consumer_name, 0), "the queue to stay empty")


def test_a_handler_for_an_event_without_contract_is_refused(session_factory: Sessions) -> None:
    async def handler(session: AsyncSession, event: CloudEvent, data: EventData) -> None:
        raise AssertionError("never called")

    with pytest.raises(ValueError, match="no contract"):
        EventConsumer(
            "amqp://unused/",
            exchange="x",
            name="n",
            handlers={"user.teleported": handler},
            session_factory=session_factory,
        )


async def test_consuming_resumes_after_a_broker_outage(
    consumer_behind_a_proxy: Callable[[Handler], Awaitable[TcpProxy]],
    channel: AbstractChannel,
    exchange_name: str,
    consumer_name: str,
    session_factory: Sessions,
) -> None:
    async def handler(session: AsyncSession, event: CloudEvent, data: EventData) -> None:
        await record_effect(session, event, consumer_name)

    proxy = await consumer_behind_a_proxy(handler)
    await publish_event(channel, exchange_name, verified_event())
    await eventually(lambda: has_effects(session_factory, consumer_name, 1), "the first event handled")
    await proxy.close()
    await publish_event(channel, exchange_name, verified_event())
    await proxy.open()
    await eventually(lambda: has_effects(session_factory, consumer_name, 2), "the second event handled")


async def test_a_handler_in_flight_when_the_broker_link_drops_runs_to_its_end_and_has_its_effect_once(
    consumer_behind_a_proxy: Callable[[Handler], Awaitable[TcpProxy]],
    channel: AbstractChannel,
    exchange_name: str,
    consumer_name: str,
    session_factory: Sessions,
) -> None:
    """aio-pika cancels the tasks of a channel's deliveries when the channel closes. A handler
    cancelled after its side effect outside the database (an email accepted by SMTP) but before
    its commit would run again on redelivery and send the email twice: the handler must finish."""
    sent: list[uuid.UUID] = []
    in_flight, release = asyncio.Event(), asyncio.Event()

    async def handler(session: AsyncSession, event: CloudEvent, data: EventData) -> None:
        sent.append(event.id)  # outside the transaction: what a redelivery must not repeat
        in_flight.set()
        await release.wait()
        await record_effect(session, event, consumer_name)

    proxy = await consumer_behind_a_proxy(handler)
    event = verified_event()
    await publish_event(channel, exchange_name, event)
    await asyncio.wait_for(in_flight.wait(), timeout=10)
    await proxy.close()
    await asyncio.sleep(0.5)  # the client sees the link gone while the handler is mid-way
    release.set()
    await proxy.open()
    # Its ack was lost with the link, so the broker hands the event back: a duplicate to skip.
    labels = {"consumer": consumer_name, "event_type": "user.verified"}
    await eventually(
        lambda: metric("gatehouse_events_duplicates_total", **labels) >= 1 or len(sent) > 1,
        "the redelivered event settled",
    )
    assert sent == [event.id]
    assert await effects(session_factory, consumer_name) == [(event.id, None)]
    assert metric("gatehouse_events_redelivered_total", consumer=consumer_name) >= 1


async def test_a_consumer_without_a_database_runs_handlers_with_no_session(
    amqp_url: str,
    channel: AbstractChannel,
    exchange_name: str,
    consumer_name: str,
    session_factory: Sessions,
) -> None:
    """The gateway's shape (its only state is in Redis): nothing records handled ids, so a
    redelivered event runs its handler again, which must therefore be idempotent by itself;
    failures still retry."""
    sessions: list[None] = []
    runs: list[uuid.UUID] = []

    async def handler(session: None, event: CloudEvent, data: EventData) -> None:
        sessions.append(session)
        runs.append(event.id)
        if len(runs) == 1:
            raise RuntimeError("Redis hiccup")

    consumer = EventConsumer(
        amqp_url,
        exchange=exchange_name,
        name=consumer_name,
        handlers={"user.verified": handler},
        session_factory=None,
        retry_delays=(0.05,),
    )
    await consumer.start()
    try:
        event = verified_event()
        await publish_event(channel, exchange_name, event)  # fails once, then the retry succeeds
        await publish_event(channel, exchange_name, event)  # a duplicate: handled again
        await eventually(
            lambda: (
                metric("gatehouse_events_handled_total", consumer=consumer_name, event_type="user.verified")
                == 2
            ),
            "both deliveries handled",
        )
        assert runs == [event.id] * 3
        assert sessions == [None] * 3
        async with session_factory() as session:
            recorded = await session.scalar(
                select(func.count())
                .select_from(ProcessedEvent)
                .where(ProcessedEvent.consumer == consumer_name)
            )
        assert recorded == 0
        await eventually(lambda: ready_count_is(channel, consumer_name, 0), "the queue to be empty")
    finally:
        await consumer.stop()
