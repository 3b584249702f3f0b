"""Transactional outbox: events are written with the change they announce and published after commit.

`add_event` puts the CloudEvent in the `outbox` table inside the caller's transaction, so a
rolled-back change publishes nothing. `OutboxRelay` runs in each service process; one replica at a
time (the holder of a Postgres advisory lock) publishes unpublished rows, oldest first, with
publisher confirms, and marks them published only once RabbitMQ has confirmed them. While the
broker is unreachable rows simply wait; delivery is at least once (exactly once unless the relay
dies between the broker's confirm and its own commit), so consumers stay idempotent.

The relay's queries are plain SQL on its own leader-lock connection: a batch is one transaction
there (claim the rows, publish them, mark them), with no pool checkout and no ORM on the way.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

import aio_pika
import asyncpg
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractExchange
from asgi_correlation_id import correlation_id as request_correlation_id
from prometheus_client import Counter, Gauge
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from gatehouse_contracts.envelope import CloudEvent, EventData, new_event
from gatehouse_platform.db import utcnow
from gatehouse_platform.models import OutboxMessage
from gatehouse_platform.tracing import continued_from, current_trace_context

logger = logging.getLogger(__name__)

NOTIFY_CHANNEL = "gatehouse_outbox"
# Advisory locks are scoped to one database, and each service has its own: one key serves them all.
RELAY_LOCK_KEY = 0x6761_7465_686F_7573  # "gatehous"
CLOUDEVENTS_CONTENT_TYPE = "application/cloudevents+json"
_DB_ERRORS = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError, DBAPIError)

OUTBOX_PUBLISHED = Counter(
    "gatehouse_outbox_published_total", "Outbox events confirmed by the broker.", ["event_type"]
)
OUTBOX_PUBLISH_FAILURES = Counter(
    "gatehouse_outbox_publish_failures_total", "Failed attempts to reach the broker or publish an event."
)
OUTBOX_LAG = Gauge(
    "gatehouse_outbox_lag_seconds", "Age of the oldest unpublished outbox event, seen by the leading relay."
)
OUTBOX_BACKLOG = Gauge(
    "gatehouse_outbox_backlog", "Outbox events not yet published, seen by the leading relay."
)
OUTBOX_LEADER = Gauge("gatehouse_outbox_relay_leader", "1 while this process's relay holds the leader lock.")

_NOTIFY = select(func.pg_notify(NOTIFY_CHANNEL, ""))
# session.info key: the (sub)transaction in which add_event last sent its NOTIFY.
_NOTIFIED_IN = "gatehouse_outbox_notified_in"
# The relay's statements (the partial index on unpublished rows serves the first and the last).
_CLAIM_BATCH = """
    SELECT id, event_type, payload::text AS payload, created_at FROM outbox
    WHERE published_at IS NULL ORDER BY created_at, id LIMIT $1 FOR UPDATE SKIP LOCKED
"""
_MARK_PUBLISHED = "UPDATE outbox SET published_at = $2 WHERE id = ANY($1::uuid[])"
_MARK_FAILED = "UPDATE outbox SET attempts = attempts + 1, last_error = $2 WHERE id = $1"
_BACKLOG = "SELECT count(*), min(created_at) FROM outbox WHERE published_at IS NULL"
# The backlog and lag gauges are read every few seconds: measured at most this often, not after
# every batch (at a steady trickle of commits, that was one more query per event).
_MEASURE_EVERY_SECONDS = 1.0


async def add_event(
    session: AsyncSession,
    data: EventData,
    *,
    source: str,
    subject: str | None = None,
    correlation_id: str | None = None,
) -> CloudEvent:
    """Stage `data` for publication in the caller's transaction; never commits.

    The correlation id defaults to the current request's id. The NOTIFY rides in the same
    transaction, and Postgres delivers it only on commit: the relay wakes right after commit and
    never for a rolled-back change. One NOTIFY per transaction is enough (the relay publishes every
    waiting row when it wakes), so later events of the same transaction (or savepoint) send none;
    an event in a savepoint that rolled back is gone together with its NOTIFY, and the next
    event, in another (sub)transaction, sends its own.
    """
    event = new_event(
        data,
        source=source,
        subject=subject,
        correlation_id=correlation_id if correlation_id is not None else request_correlation_id.get(),
        trace_context=current_trace_context(),
    )
    session.add(
        OutboxMessage(
            id=event.id,
            event_type=event.type,
            payload=event.model_dump(mode="json"),
            created_at=event.time,
        )
    )
    sync = session.sync_session
    current = sync.get_nested_transaction() or sync.get_transaction()
    if current is None or sync.info.get(_NOTIFIED_IN) is not current:
        await session.execute(_NOTIFY)
        sync.info[_NOTIFIED_IN] = sync.get_nested_transaction() or sync.get_transaction()
    return event


class BrokerUnavailableError(Exception):
    """RabbitMQ could not be reached, or refused or failed to confirm a publish."""


class _Backoff:
    def __init__(self, initial: float, maximum: float) -> None:
        self._initial = initial
        self._maximum = maximum
        self._next = initial

    def next_delay(self) -> float:
        delay = self._next
        self._next = min(self._next * 2, self._maximum)
        return delay

    def reset(self) -> None:
        self._next = self._initial


class OutboxRelay:
    """Publishes outbox rows to the events exchange; run one per service process.

    Each relay keeps a dedicated asyncpg connection that holds the advisory lock while it leads
    and LISTENs for commits. The others wait on `pg_try_advisory_lock` and take over as soon as
    the leader's connection ends (graceful stop, crash, or a killed backend).
    """

    def __init__(
        self,
        engine: AsyncEngine,
        amqp_url: str,
        *,
        exchange: str = "gatehouse.events",
        poll_interval: float = 1.0,
        batch_size: int = 100,
        publish_timeout: float = 10.0,
        max_backoff: float = 30.0,
        lock_key: int = RELAY_LOCK_KEY,
    ) -> None:
        self._dsn = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._amqp_url = amqp_url
        self._exchange_name = exchange
        self._poll_interval = poll_interval
        self._batch_size = batch_size
        self._publish_timeout = publish_timeout
        self._lock_key = lock_key
        self._broker_backoff = _Backoff(min(0.5, max_backoff), max_backoff)
        self._db_backoff = _Backoff(min(0.5, max_backoff), max_backoff)
        self._connection: AbstractConnection | None = None
        self._exchange: AbstractExchange | None = None
        self._wakeup = asyncio.Event()  # set by NOTIFY and by stop()
        self._stop_requested = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._leader = False
        self._measured_at = -_MEASURE_EVERY_SECONDS

    @property
    def is_leader(self) -> bool:
        return self._leader

    async def start(self) -> None:
        if self._task is not None:
            raise RuntimeError("relay already started")
        self._stop_requested.clear()
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        """Finish the batch in flight, give up leadership and close both connections."""
        self._stop_requested.set()
        self._wakeup.set()
        if self._task is not None:
            await self._task
            self._task = None
        await self._close_broker()

    async def publish_pending_once(self) -> int:
        """Publish one batch of unpublished rows (for tests and CLIs); returns how many were published.

        Call it on a relay that is not started, then `stop()` to close the broker connection. It is
        safe beside a running leader elsewhere: rows are claimed with FOR UPDATE SKIP LOCKED, so
        none is published twice. Raises `BrokerUnavailableError` if the broker fails.
        """
        conn = await asyncpg.connect(self._dsn, timeout=10)
        try:
            return await self._publish_batch(conn)
        finally:
            await self._close_pg(conn)

    async def _run(self) -> None:
        while not self._stopping:
            try:
                conn = await asyncpg.connect(
                    self._dsn, timeout=10, server_settings={"application_name": "gatehouse-outbox-relay"}
                )
            except _DB_ERRORS as exc:
                await self._pause_after_db_error(exc)
                continue
            self._db_backoff.reset()
            try:
                if await self._wait_for_leadership(conn):
                    await self._lead(conn)
            except _DB_ERRORS as exc:
                await self._pause_after_db_error(exc)
            except Exception:
                # Never let the task die silently: log, back off, start over.
                logger.exception("outbox relay failed; restarting")
                await self._sleep(self._db_backoff.next_delay())
            finally:
                self._set_leader(False)
                await self._close_pg(conn)

    async def _wait_for_leadership(self, conn: asyncpg.Connection) -> bool:
        announced = False
        while not self._stopping:
            if await conn.fetchval("SELECT pg_try_advisory_lock($1)", self._lock_key):
                self._set_leader(True)
                logger.info("outbox relay is the leader")
                return True
            if not announced:
                logger.info("outbox relay standing by: another replica leads")
                announced = True
            await self._sleep(self._poll_interval)
        return False

    async def _lead(self, conn: asyncpg.Connection) -> None:
        await conn.add_listener(NOTIFY_CHANNEL, self._on_notify)
        while not self._stopping:
            # The batch runs on the lock's connection: if that is gone, so is leadership, and the
            # batch fails with it (and rolls back) before publishing anything.
            try:
                published = await self._publish_batch(conn)
            except BrokerUnavailableError as exc:
                await self._measure_lag(conn)
                delay = self._broker_backoff.next_delay()
                logger.warning("outbox relay cannot publish (%s); retrying in %.1f s", exc, delay)
                # New commits must not cut the back-off short and hammer a broker that is down.
                await self._sleep(delay, wake_on_notify=False)
                continue
            self._broker_backoff.reset()
            since = asyncio.get_running_loop().time() - self._measured_at
            if since >= _MEASURE_EVERY_SECONDS:
                await self._measure_lag(conn)
            if published < self._batch_size:
                # Gauges left stale by this batch are measured once they are due, not a whole poll
                # interval later.
                due = (
                    _MEASURE_EVERY_SECONDS - since if since < _MEASURE_EVERY_SECONDS else self._poll_interval
                )
                await self._sleep(min(self._poll_interval, due))

    def _on_notify(self, _conn: asyncpg.Connection, _pid: int, _channel: str, _payload: str) -> None:
        self._wakeup.set()

    async def _publish_batch(self, conn: asyncpg.Connection) -> int:
        failure: BaseException | None = None
        published: list[uuid.UUID] = []
        async with conn.transaction():
            rows = await conn.fetch(_CLAIM_BATCH, self._batch_size)
            if not rows:
                return 0
            exchange = await self._ensure_exchange()
            for row in rows:
                payload: dict[str, Any] = json.loads(row["payload"])
                try:
                    # In the trace of the request that made the event (aio-pika's instrumentation
                    # makes the publish span there and carries it on in the message's headers).
                    with continued_from(payload):
                        await exchange.publish(
                            _payload_message(payload, row["id"], row["event_type"], row["created_at"]),
                            routing_key=row["event_type"],
                            mandatory=False,
                            timeout=self._publish_timeout,
                        )
                except Exception as exc:
                    # Stop at the first failure so later events never overtake this one.
                    failure = exc
                    await conn.execute(_MARK_FAILED, row["id"], f"{type(exc).__name__}: {exc}"[:1000])
                    OUTBOX_PUBLISH_FAILURES.inc()
                    logger.warning("publishing event id=%s type=%s failed", row["id"], row["event_type"])
                    break
                published.append(row["id"])
                OUTBOX_PUBLISHED.labels(row["event_type"]).inc()
                logger.debug("published event id=%s type=%s", row["id"], row["event_type"])
            if published:
                await conn.execute(_MARK_PUBLISHED, published, utcnow())
        if failure is not None:
            await self._close_broker()
            raise BrokerUnavailableError(type(failure).__name__) from failure
        return len(published)

    async def _ensure_exchange(self) -> AbstractExchange:
        if self._exchange is not None and self._connection is not None and not self._connection.is_closed:
            return self._exchange
        await self._close_broker()
        try:
            self._connection = await aio_pika.connect(self._amqp_url, timeout=self._publish_timeout)
            channel: AbstractChannel = await self._connection.channel(publisher_confirms=True)
            self._exchange = await channel.declare_exchange(
                self._exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
            )
        except Exception as exc:
            OUTBOX_PUBLISH_FAILURES.inc()
            await self._close_broker()
            raise BrokerUnavailableError(f"{type(exc).__name__}: {exc}") from exc
        logger.info("outbox relay connected to the broker")
        return self._exchange

    async def _measure_lag(self, conn: asyncpg.Connection) -> None:
        """The backlog's size and the age of its oldest event, in one query (the partial index on
        unpublished rows keeps it cheap however long the table)."""
        waiting, oldest = await conn.fetchrow(_BACKLOG)
        self._measured_at = asyncio.get_running_loop().time()
        OUTBOX_BACKLOG.set(waiting)
        OUTBOX_LAG.set(0 if oldest is None else max((utcnow() - oldest) / timedelta(seconds=1), 0))

    async def _pause_after_db_error(self, exc: BaseException) -> None:
        delay = self._db_backoff.next_delay()
        logger.warning("outbox relay lost the database (%s); retrying in %.1f s", type(exc).__name__, delay)
        await self._sleep(delay)

    async def _sleep(self, seconds: float, *, wake_on_notify: bool = True) -> None:
        """Wait for `stop()`, a NOTIFY (if `wake_on_notify`) or the timeout, whichever comes first.

        A NOTIFY that arrived while a batch was running is still pending here, so the next batch
        starts at once instead of after the poll interval.
        """
        if self._stopping:
            return
        event = self._wakeup if wake_on_notify else self._stop_requested
        try:
            await asyncio.wait_for(event.wait(), timeout=seconds)
        except TimeoutError:
            return
        if not self._stopping:
            self._wakeup.clear()

    @property
    def _stopping(self) -> bool:
        return self._stop_requested.is_set()

    def _set_leader(self, leader: bool) -> None:
        self._leader = leader
        OUTBOX_LEADER.set(1 if leader else 0)

    async def _close_broker(self) -> None:
        connection, self._connection, self._exchange = self._connection, None, None
        if connection is not None and not connection.is_closed:
            try:
                await connection.close()
            except Exception:
                logger.debug("closing the broker connection failed", exc_info=True)

    @staticmethod
    async def _close_pg(conn: asyncpg.Connection) -> None:
        try:
            await asyncio.wait_for(conn.close(), timeout=5)
        except Exception:
            conn.terminate()


def event_message(event: CloudEvent) -> aio_pika.Message:
    """The AMQP message the relay publishes for `event`. Tests, benchmarks and tools that publish
    as a producer would use it, so consumers see exactly what production sends."""
    return _message(
        event.model_dump_json().encode(),
        event_id=event.id,
        event_type=event.type,
        time=event.time,
        correlation_id=event.correlationid,
    )


def _payload_message(
    payload: dict[str, Any], event_id: uuid.UUID, event_type: str, created_at: datetime
) -> aio_pika.Message:
    return _message(
        json.dumps(payload, separators=(",", ":")).encode(),
        event_id=event_id,
        event_type=event_type,
        time=created_at,
        correlation_id=payload.get("correlationid"),
    )


def _message(
    body: bytes, *, event_id: uuid.UUID, event_type: str, time: datetime, correlation_id: str | None
) -> aio_pika.Message:
    return aio_pika.Message(
        body=body,
        content_type=CLOUDEVENTS_CONTENT_TYPE,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=str(event_id),
        type=event_type,
        timestamp=time,
        correlation_id=correlation_id,
    )
