"""Consuming events: one durable quorum queue per consumer, retries with back-off, a dead-letter queue.

Topology for a consumer named `n` on the topic exchange `x`:

- `n` (quorum) bound to `x` with one routing key per handled event type;
- `n.retry.<ms>ms` (quorum), one per retry delay: a failed message waits there for its TTL and is
  dead-lettered by the broker back to `n` through the default exchange (so only this consumer
  sees the retry), its attempt count in the `x-gatehouse-attempt` header;
- `n.dlq` (quorum): messages that are malformed, still failing after the last retry, or whose
  handler raised `PermanentFailure`. They stay until `replay_dead_letters` moves them back.

Handlers run with the event id recorded in `processed_events` in the same transaction as their
effect, so a redelivered event that was already handled is acknowledged without running again.

A consumer without a database (the gateway, whose only state is in Redis) passes
`session_factory=None`: nothing records processed ids, handlers get `session=None`
(`StatelessHandler`), and a redelivered event runs its handler again, so such handlers must be
idempotent by nature (e.g. Redis writes that converge, as in `denylist.py`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, overload

import aio_pika
from aio_pika.abc import (
    AbstractChannel,
    AbstractConnection,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustChannel,
    AbstractRobustConnection,
    ConsumerTag,
)
from asgi_correlation_id import correlation_id
from prometheus_client import Counter, Gauge
from pydantic import ValidationError
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gatehouse_contracts.envelope import CloudEvent, EventData
from gatehouse_contracts.events import REGISTRY, parse_data
from gatehouse_platform.db import session_scope
from gatehouse_platform.models import ProcessedEvent

logger = logging.getLogger(__name__)

Handler = Callable[[AsyncSession, CloudEvent, EventData], Awaitable[None]]
# For consumers without a database (`session_factory=None`): the session argument is always None.
StatelessHandler = Callable[[None, CloudEvent, EventData], Awaitable[None]]

ATTEMPT_HEADER = "x-gatehouse-attempt"
DEATH_REASON_HEADER = "x-gatehouse-death-reason"
# A message redelivered this often without ever being acked (the process died while handling it)
# is poison: the broker moves it to the DLQ instead of crashing consumers forever.
DELIVERY_LIMIT = 20
BROKER_STOP_SECONDS = 5  # stop(): a broker that is gone gets this long to cancel, and to close

EVENTS_HANDLED = Counter(
    "gatehouse_events_handled_total", "Events whose handler succeeded.", ["consumer", "event_type"]
)
EVENTS_DUPLICATES = Counter(
    "gatehouse_events_duplicates_total",
    "Redelivered events acknowledged without running the handler again.",
    ["consumer", "event_type"],
)
EVENTS_FAILED = Counter(
    "gatehouse_events_failed_total", "Handler runs that raised.", ["consumer", "event_type"]
)
EVENTS_RETRIED = Counter(
    "gatehouse_events_retried_total", "Events scheduled for another attempt.", ["consumer", "event_type"]
)
EVENTS_REDELIVERED = Counter(
    "gatehouse_events_redelivered_total",
    "Messages the broker delivered again because an earlier delivery was never acknowledged.",
    ["consumer"],
)
QUEUE_MESSAGES = Gauge(
    "gatehouse_consumer_queue_messages",
    "Messages waiting in the consumer's queue (queue=main: ready, not yet taken) and its dead-letter "
    "queue (queue=dlq), probed every few seconds.",
    ["consumer", "queue"],
)
EVENTS_DEAD_LETTERED = Counter(
    "gatehouse_events_dead_lettered_total",
    "Messages moved to the dead-letter queue (reason: malformed, exhausted or rejected).",
    ["consumer", "reason"],
)


@dataclass(frozen=True, slots=True)
class QueueStats:
    """A queue as the broker sees it now."""

    name: str
    message_count: int  # ready, not yet taken
    consumer_count: int


class MalformedMessageError(Exception):
    """The message cannot be handled however often it is retried. Its text never holds the payload."""


class PermanentFailure(Exception):
    """Raised by a handler when retrying cannot help (e.g. the SMTP server refused the recipient
    for good): the message goes to the dead-letter queue at once, its text as the reason.

    The handler's transaction is rolled back like for any failure, so the event is not marked
    handled and a replayed dead letter runs the handler again. What must survive the rollback (a
    record of the failure) the handler commits in a transaction of its own before raising. The
    text is logged and stored in a message header: never put a secret or a payload in it.
    """


class EventConsumer:
    """Consumes the handled event types from the topic exchange into this consumer's own queue.

    Up to `prefetch` messages are handled concurrently. The connection is robust: after a broker
    outage it reconnects and resumes consuming by itself; an unacknowledged message is redelivered
    and, if it was handled already, skipped.
    """

    @overload
    def __init__(
        self,
        amqp_url: str,
        *,
        exchange: str,
        name: str,
        handlers: Mapping[str, Handler],
        session_factory: async_sessionmaker[AsyncSession],
        prefetch: int = ...,
        retry_delays: Sequence[float] = ...,
        queue_probe_seconds: float = ...,
    ) -> None: ...

    @overload
    def __init__(
        self,
        amqp_url: str,
        *,
        exchange: str,
        name: str,
        handlers: Mapping[str, StatelessHandler],
        session_factory: None,
        prefetch: int = ...,
        retry_delays: Sequence[float] = ...,
        queue_probe_seconds: float = ...,
    ) -> None: ...

    def __init__(
        self,
        amqp_url: str,
        *,
        exchange: str,
        name: str,
        handlers: Mapping[str, Handler] | Mapping[str, StatelessHandler],
        session_factory: async_sessionmaker[AsyncSession] | None,
        prefetch: int = 16,
        retry_delays: Sequence[float] = (1, 5, 30),
        queue_probe_seconds: float = 15,
    ) -> None:
        unknown = set(handlers) - set(REGISTRY)
        if unknown:
            raise ValueError(f"no contract for event types {sorted(unknown)}")
        self._amqp_url = amqp_url
        self._exchange_name = exchange
        self.name = name
        self._handlers: dict[str, Callable[..., Awaitable[None]]] = dict(handlers)
        self._sessions = session_factory
        self._prefetch = prefetch
        # Queue arguments are immutable, so each delay gets its own queue, named after it.
        delays_ms = [max(round(delay * 1000), 1) for delay in retry_delays]
        self._retry_queues = [(f"{name}.retry.{ms}ms", ms) for ms in delays_ms]
        self.dead_letter_queue = f"{name}.dlq"
        self._connection: AbstractRobustConnection | None = None
        self._publisher: AbstractRobustChannel | None = None
        self._queue: AbstractQueue | None = None
        self._consumer_tag: ConsumerTag | None = None
        self._queue_probe_seconds = queue_probe_seconds
        self._probe: asyncio.Task[None] | None = None
        self._in_flight = 0
        self._settling: set[asyncio.Task[None]] = set()  # strong references while they run
        self._idle = asyncio.Event()
        self._idle.set()

    async def start(self) -> None:
        """Declare the topology and start consuming. Raises if the broker is unreachable right now."""
        self._connection = await aio_pika.connect_robust(self._amqp_url)
        channel = await self._connection.channel()
        await channel.set_qos(prefetch_count=self._prefetch)
        self._queue = await self._declare_topology(channel)
        # A separate channel for retry and DLQ publishes: a failed publish closes its channel, and
        # that must not cancel deliveries in flight on the consuming one.
        self._publisher = await self._connection.channel(publisher_confirms=True)
        self._consumer_tag = await self._queue.consume(self._on_message)
        self._probe = asyncio.create_task(
            self._probe_queues(self._publisher), name=f"{self.name} queue probe"
        )
        logger.info("consumer %s started for %s", self.name, sorted(self._handlers))

    async def stop(self, grace_period: float = 30) -> None:
        """Stop taking messages, let the handlers in flight finish, then close the connection.

        A handler still running after `grace_period` seconds is abandoned; its message,
        unacknowledged, is redelivered later. A broker that is gone (the robust connection waiting
        to reconnect) gets `BROKER_STOP_SECONDS` for each of the cancel and the close, not forever.
        """
        if self._probe is not None:
            self._probe.cancel()
            await asyncio.gather(self._probe, return_exceptions=True)
            self._probe = None
        if self._queue is not None and self._consumer_tag is not None:
            try:
                await asyncio.wait_for(self._queue.cancel(self._consumer_tag), BROKER_STOP_SECONDS)
            except (TimeoutError, aio_pika.exceptions.AMQPError, ConnectionError) as exc:
                logger.warning("consumer %s could not cancel its subscription: %r", self.name, exc)
            self._consumer_tag = None
        try:
            await asyncio.wait_for(self._idle.wait(), timeout=grace_period)
        except TimeoutError:
            logger.warning("consumer %s stopped with %d handlers still running", self.name, self._in_flight)
        if self._connection is not None:
            try:
                await asyncio.wait_for(self._connection.close(), BROKER_STOP_SECONDS)
            except (TimeoutError, aio_pika.exceptions.AMQPError, ConnectionError) as exc:
                logger.warning("consumer %s could not close its connection: %r", self.name, exc)
        self._connection = self._publisher = self._queue = None

    async def replay_dead_letters(self, limit: int = 100) -> int:
        """Move up to `limit` messages from the DLQ back to the main queue, attempts reset.

        Works with or without this consumer running (it uses its own connection). A message that
        fails again comes back to the DLQ after its retries; `limit` bounds one call.
        """
        moved = 0
        connection = await aio_pika.connect(self._amqp_url)
        async with connection:
            channel = await connection.channel(publisher_confirms=True)
            await self._declare_topology(channel)
            dlq = await channel.get_queue(self.dead_letter_queue)
            while moved < limit:
                message = await dlq.get(fail=False)
                if message is None:
                    break
                await channel.default_exchange.publish(_copy(message, attempt=0), routing_key=self.name)
                await message.ack()
                moved += 1
        logger.info("consumer %s replayed %d dead letters", self.name, moved)
        return moved

    async def dead_letter_count(self) -> int:
        """How many messages wait in the DLQ now (see `queue_stats`)."""
        return (await self.queue_stats())["dlq"].message_count

    async def queue_stats(self) -> dict[str, QueueStats]:
        """The main queue and the DLQ now (`main`, `dlq`): messages waiting and consumers attached,
        by passive declares (they only read; a queue not declared yet holds nothing). A running
        consumer asks on a short channel of its own connection; a stopped one (another replica's
        API, a replay tool) opens one connection for both. Also refreshes
        `gatehouse_consumer_queue_messages`. Raises on a broker that is away."""
        if self._connection is not None and not self._connection.is_closed:
            return await self._read_queues(self._connection)
        connection = await asyncio.wait_for(aio_pika.connect(self._amqp_url), BROKER_STOP_SECONDS)
        async with connection:
            return await self._read_queues(connection)

    async def _read_queues(self, connection: AbstractConnection) -> dict[str, QueueStats]:
        stats: dict[str, QueueStats] = {}
        for label, queue_name in (("main", self.name), ("dlq", self.dead_letter_queue)):
            channel = await asyncio.wait_for(connection.channel(), BROKER_STOP_SECONDS)
            try:
                # robust=False: a robust channel answers a passive declare from its cache
                options: dict[str, Any] = (
                    {"robust": False} if isinstance(channel, AbstractRobustChannel) else {}
                )
                declared = await asyncio.wait_for(
                    channel.declare_queue(queue_name, passive=True, **options), BROKER_STOP_SECONDS
                )
                result = declared.declaration_result
                stats[label] = QueueStats(queue_name, result.message_count or 0, result.consumer_count or 0)
            except aio_pika.exceptions.ChannelNotFoundEntity:  # the broker closes the channel
                stats[label] = QueueStats(queue_name, 0, 0)
            finally:
                if not channel.is_closed:
                    await channel.close()
            QUEUE_MESSAGES.labels(self.name, label).set(stats[label].message_count)
        return stats

    async def _probe_queues(self, channel: AbstractRobustChannel) -> None:
        """Keep `gatehouse_consumer_queue_messages` current: the backlog (consumer lag) and the dead
        letters, by a passive declare (it only reads). A broker that is away skips a probe."""
        queues = {"main": self.name, "dlq": self.dead_letter_queue}
        while True:
            for label, queue_name in queues.items():
                try:
                    # robust=False: a robust channel answers a passive declare of a queue it
                    # remembers from its cache, with the count of that first declare.
                    declared = await asyncio.wait_for(
                        channel.declare_queue(queue_name, passive=True, robust=False), BROKER_STOP_SECONDS
                    )
                except (TimeoutError, aio_pika.exceptions.AMQPError, ConnectionError, RuntimeError):
                    logger.debug("consumer %s could not probe %s", self.name, queue_name, exc_info=True)
                    continue
                count = declared.declaration_result.message_count
                if count is not None:
                    QUEUE_MESSAGES.labels(self.name, label).set(count)
            await asyncio.sleep(self._queue_probe_seconds)

    async def _declare_topology(self, channel: AbstractChannel) -> AbstractQueue:
        exchange = await channel.declare_exchange(
            self._exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
        )
        quorum: dict[str, Any] = {"x-queue-type": "quorum"}
        await channel.declare_queue(self.dead_letter_queue, durable=True, arguments=quorum)
        for queue_name, delay_ms in self._retry_queues:
            await channel.declare_queue(
                queue_name,
                durable=True,
                arguments={
                    **quorum,
                    "x-message-ttl": delay_ms,
                    "x-dead-letter-exchange": "",
                    "x-dead-letter-routing-key": self.name,
                    # At-least-once dead-lettering: a retry is never dropped on its way back.
                    "x-dead-letter-strategy": "at-least-once",
                    "x-overflow": "reject-publish",
                },
            )
        queue = await channel.declare_queue(
            self.name,
            durable=True,
            arguments={
                **quorum,
                "x-delivery-limit": DELIVERY_LIMIT,
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": self.dead_letter_queue,
            },
        )
        for event_type in sorted(REGISTRY):
            # Bind exactly the handled types: a type whose handler was removed is unbound again
            # (unbinding a binding that does not exist is a no-op for RabbitMQ).
            if event_type in self._handlers:
                await queue.bind(exchange, routing_key=event_type)
            else:
                await queue.unbind(exchange, routing_key=event_type)
        return queue

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        """aio-pika cancels the tasks of a channel's deliveries when the channel closes (a broker
        outage). A handler cut off there after a side effect outside the database (an email
        accepted by SMTP) but before its commit would run again on redelivery and repeat it. So each
        message is settled to its end in a task of its own that the cancellation does not reach;
        its ack then fails with the channel, and the redelivered event is a recorded duplicate."""
        self._in_flight += 1
        self._idle.clear()
        task = asyncio.create_task(self._settle(message))
        self._settling.add(task)
        task.add_done_callback(self._settled)
        await asyncio.shield(task)

    def _settled(self, task: asyncio.Task[None]) -> None:
        self._settling.discard(task)
        self._in_flight -= 1
        if self._in_flight == 0:
            self._idle.set()

    async def _settle(self, message: AbstractIncomingMessage) -> None:
        try:
            await self._process(message)
        except Exception:
            # The ack, retry or DLQ publish failed (broker trouble): the broker redelivers the message.
            logger.warning(
                "consumer %s could not settle message id=%s; it will be redelivered",
                self.name,
                message.message_id,
                exc_info=True,
            )
            await _nack_quietly(message)

    async def _process(self, message: AbstractIncomingMessage) -> None:
        if message.redelivered:
            EVENTS_REDELIVERED.labels(self.name).inc()
        try:
            event, data = self._parse(message)
        except MalformedMessageError as exc:
            await self._dead_letter(message, reason=f"malformed: {exc}", metric_reason="malformed")
            return
        token = correlation_id.set(event.correlationid)
        try:
            try:
                await self._handle(event, data)
            except PermanentFailure as exc:
                EVENTS_FAILED.labels(self.name, event.type).inc()
                await self._dead_letter(message, reason=f"rejected: {exc}", metric_reason="rejected")
                return
            except Exception as exc:
                EVENTS_FAILED.labels(self.name, event.type).inc()
                await self._retry_or_dead_letter(message, event, exc)
                return
            await message.ack()
        finally:
            correlation_id.reset(token)

    def _parse(self, message: AbstractIncomingMessage) -> tuple[CloudEvent, EventData]:
        try:
            event = CloudEvent.model_validate_json(message.body)
        except ValidationError as exc:
            raise MalformedMessageError(f"invalid envelope ({_describe(exc)})") from None
        if event.type not in self._handlers:
            raise MalformedMessageError(f"no handler for type {event.type[:100]!r}")
        try:
            data = parse_data(event.type, event.data)
        except ValidationError as exc:
            raise MalformedMessageError(f"invalid {event.type} data ({_describe(exc)})") from None
        return event, data

    async def _handle(self, event: CloudEvent, data: EventData) -> None:
        if self._sessions is None:
            # No database, so no record of handled ids: the handler must be idempotent by itself.
            await self._handlers[event.type](None, event, data)
            EVENTS_HANDLED.labels(self.name, event.type).inc()
            return
        async with session_scope(self._sessions) as session:
            # ON CONFLICT waits for a concurrent transaction holding the same key: if it commits,
            # this is a duplicate; if it rolls back, this delivery takes over.
            recorded = await session.scalar(
                insert(ProcessedEvent)
                .values(consumer=self.name, event_id=event.id)
                .on_conflict_do_nothing()
                .returning(ProcessedEvent.event_id)
            )
            if recorded is None:
                EVENTS_DUPLICATES.labels(self.name, event.type).inc()
                logger.info(
                    "consumer %s skipped duplicate event id=%s type=%s", self.name, event.id, event.type
                )
                return
            await self._handlers[event.type](session, event, data)
        EVENTS_HANDLED.labels(self.name, event.type).inc()
        logger.debug("consumer %s handled event id=%s type=%s", self.name, event.id, event.type)

    async def _retry_or_dead_letter(
        self, message: AbstractIncomingMessage, event: CloudEvent, exc: Exception
    ) -> None:
        attempt = _attempt(message)
        if attempt >= len(self._retry_queues):
            await self._dead_letter(
                message,
                reason=f"exhausted after {attempt + 1} attempts: {type(exc).__name__}",
                metric_reason="exhausted",
                exc=exc,
            )
            return
        logger.warning(
            "consumer %s failed on event id=%s type=%s (attempt %d); retrying via %s",
            self.name,
            event.id,
            event.type,
            attempt + 1,
            self._retry_queues[attempt][0],
            exc_info=exc,
        )
        await self._publish(_copy(message, attempt=attempt + 1), routing_key=self._retry_queues[attempt][0])
        await message.ack()
        EVENTS_RETRIED.labels(self.name, event.type).inc()

    async def _dead_letter(
        self,
        message: AbstractIncomingMessage,
        *,
        reason: str,
        metric_reason: str,
        exc: Exception | None = None,
    ) -> None:
        copy = _copy(message, attempt=_attempt(message))
        copy.headers[DEATH_REASON_HEADER] = reason[:500]
        await self._publish(copy, routing_key=self.dead_letter_queue)
        await message.ack()
        EVENTS_DEAD_LETTERED.labels(self.name, metric_reason).inc()
        logger.error(
            "consumer %s dead-lettered message id=%s: %s", self.name, message.message_id, reason, exc_info=exc
        )

    async def _publish(self, message: aio_pika.Message, *, routing_key: str) -> None:
        if self._publisher is None:
            raise RuntimeError("consumer not started")
        await self._publisher.default_exchange.publish(message, routing_key=routing_key, timeout=10)


def _attempt(message: AbstractIncomingMessage) -> int:
    value = (message.headers or {}).get(ATTEMPT_HEADER, 0)
    return value if isinstance(value, int) else 0


def _copy(message: AbstractIncomingMessage, *, attempt: int) -> aio_pika.Message:
    headers = {k: v for k, v in (message.headers or {}).items() if k != DEATH_REASON_HEADER}
    headers[ATTEMPT_HEADER] = attempt
    return aio_pika.Message(
        body=message.body,
        headers=headers,
        content_type=message.content_type,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=message.message_id,
        correlation_id=message.correlation_id,
        timestamp=message.timestamp,
        type=message.type,
    )


def _describe(exc: ValidationError) -> str:
    """Where and how validation failed, without the offending input (it may be a secret)."""
    errors = exc.errors(include_input=False, include_url=False)
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or '<root>'}: {e['type']}" for e in errors[:5])


async def _nack_quietly(message: AbstractIncomingMessage) -> None:
    try:
        await message.nack(requeue=True)
    except Exception:
        # The channel is gone: the broker requeues the unacknowledged message by itself.
        logger.debug("nack failed for message id=%s", message.message_id, exc_info=True)
