"""The background worker that applies stored Stripe events (one per API process; any number of
processes may run it).

A batch is claimed with `FOR UPDATE SKIP LOCKED` (concurrent workers take disjoint batches) and
processed in one transaction: first every subscription the batch names is re-read from Stripe once
and converged on (coalescing: a hundred invoices of one subscription cost one read), then each
event's handler runs, then the events are marked processed or ignored. Effects, outbox rows and the
marks commit together, so an event is applied exactly once even if the process dies mid-batch (the
batch is simply done again).

If anything in a batch fails, the whole batch is rolled back and done again carefully: each
subscription read and each handler in a savepoint of its own. Then a failing event is marked
`failed` with its error and retried after a back-off (doubling up to `webhook_retry_max_seconds`),
together with the events that name a subscription that could not be read; the rest commit.
Nothing is dropped: a failed event is retried until it succeeds.

The worker wakes as soon as the webhook endpoint stores an event, and polls as a fallback (events
recorded by another process or by the reconciliation job, retries falling due).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from datetime import datetime, timedelta

from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing_service.errors import WebhookPayloadInvalid
from billing_service.integrations.stripe import StripeGateway, WebhookEvent, parse_event
from billing_service.models import StripeEvent, StripeEventStatus, Subscription
from billing_service.payments.repository import PaymentRepository
from billing_service.settings import Settings
from billing_service.subscriptions.lifecycle import settle_exhausted_retries
from billing_service.subscriptions.sync import SyncResult, sync_from_stripe
from billing_service.webhooks.handlers import (
    HANDLERS,
    BatchContext,
    Outcome,
    invoice_named,
    subscriptions_named,
)
from billing_service.webhooks.repository import StripeEventRepository
from gatehouse_platform.db import utcnow
from gatehouse_platform.tracing import span

log = logging.getLogger(__name__)

EVENTS_APPLIED = Counter(
    "billing_stripe_events_applied_total",
    "Stripe events processed, by type and outcome.",
    ["type", "outcome"],
)
EVENT_FAILURES = Counter("billing_stripe_event_failures_total", "Stripe event processing failures.", ["type"])
BATCH_SECONDS = Histogram("billing_stripe_event_batch_seconds", "Time to process one batch of Stripe events.")
APPLY_LAG = Histogram(
    "billing_stripe_event_apply_lag_seconds",
    "From a Stripe event's receipt to its effect committed (applied or ignored).",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600),
)
BACKLOG_AGE = Gauge("billing_stripe_event_backlog_seconds", "Age of the oldest unprocessed Stripe event.")


def _trace_of(row: StripeEvent) -> dict[str, str]:
    """Processing an event continues the trace of the request that received it."""
    return {"traceparent": row.traceparent} if row.traceparent else {}


class _RedoCarefully(Exception):
    """Raised in the fast path to roll the batch back and process it event by event."""


class WebhookProcessor:
    def __init__(
        self, session_factory: async_sessionmaker[AsyncSession], stripe: StripeGateway, settings: Settings
    ) -> None:
        self._sessions = session_factory
        self._stripe = stripe
        self._settings = settings
        self._wakeup = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        self._wakeup.set()

    async def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="stripe-event-processor")

    async def stop(self) -> None:
        self._stopping = True
        self._wakeup.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def drain(self, *, max_batches: int = 1000) -> int:
        """Process until nothing is due (for CLIs, tasks and tests); returns how many were handled."""
        total = 0
        for _ in range(max_batches):
            done = await self.process_batch()
            total += done
            if done == 0:
                break
        return total

    async def _run(self) -> None:
        settings = self._settings
        while not self._stopping:
            try:
                done = await self.process_batch()
            except Exception:
                log.exception("stripe event batch failed; retrying")
                done = 0
                await self._sleep(settings.webhook_poll_interval_seconds)
            if done < settings.webhook_batch_size:
                await self._sleep(settings.webhook_poll_interval_seconds)
                if settings.webhook_batch_linger_seconds and not self._stopping:
                    await asyncio.sleep(settings.webhook_batch_linger_seconds)  # let a burst gather

    async def _sleep(self, seconds: float) -> None:
        if self._stopping:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wakeup.wait(), timeout=seconds)
        self._wakeup.clear()

    async def process_batch(self) -> int:
        """Claim and process one batch; returns how many events it held."""
        started = time.perf_counter()
        try:
            count, oldest = await self._batch(careful=False)
        except _RedoCarefully:
            count, oldest = await self._batch(careful=True)
        if count:
            BATCH_SECONDS.observe(time.perf_counter() - started)
            BACKLOG_AGE.set(0 if oldest is None else max((utcnow() - oldest).total_seconds(), 0))
        return count

    async def _batch(self, *, careful: bool) -> tuple[int, datetime | None]:
        """How many events the batch held, and when the oldest event still due was received (read
        in the batch's own transaction, after its marks: no second transaction for the gauge)."""
        received: list[datetime] = []  # of the events settled, for the lag once committed
        async with self._sessions() as db, db.begin():
            stripe_events = StripeEventRepository(db)
            rows = await stripe_events.claim_due(self._settings.webhook_batch_size)
            if not rows:
                return 0, None
            events = []
            for row in rows:
                try:
                    events.append((row, parse_event(row.payload)))
                except WebhookPayloadInvalid:  # cannot happen for verified events; never retry it
                    row.status, row.last_error, row.processed_at = (
                        StripeEventStatus.IGNORED,
                        "unreadable",
                        utcnow(),
                    )
            ctx = BatchContext(db=db, stripe=self._stripe, settings=self._settings)
            unreadable = await self._converge(ctx, events, careful=careful)
            if not careful:
                invoices = {
                    i for _, event in events if event.type in HANDLERS and (i := invoice_named(event))
                }
                ctx.payments = await PaymentRepository(db).lock_invoices(invoices)
            outcomes: dict[StripeEventStatus, list[str]] = {
                StripeEventStatus.PROCESSED: [],
                StripeEventStatus.IGNORED: [],
            }
            for row, event in events:
                blocked = next((unreadable[s] for s in self._named(event) if s in unreadable), None)
                if blocked is not None:
                    self._fail(row, event, blocked)
                    continue
                try:
                    with span(
                        f"stripe apply {event.type}",
                        parent=_trace_of(row),
                        attributes={"stripe.event": row.id},
                    ):
                        outcome = await self._handle(ctx, event, careful=careful)
                except _RedoCarefully:
                    raise
                except Exception as exc:
                    self._fail(row, event, exc)
                    continue
                status = StripeEventStatus.PROCESSED if outcome == "processed" else StripeEventStatus.IGNORED
                outcomes[status].append(row.id)
                received.append(row.received_at)
                EVENTS_APPLIED.labels(event.type, outcome).inc()
            if not careful:
                try:
                    await db.flush()  # the batch's new payment rows, in one statement
                except IntegrityError as exc:  # another worker inserted one of these invoices meanwhile
                    raise _RedoCarefully from exc
            for status, ids in outcomes.items():
                await stripe_events.mark_done(ids, status)
            await db.flush()  # the failed marks too, before the oldest still due is read
            oldest = await stripe_events.oldest_due()
        committed = utcnow()
        for at in received:
            APPLY_LAG.observe(max((committed - at).total_seconds(), 0))
        if ctx.emitted:
            log.debug("stripe events emitted %s", ctx.emitted)
        return len(rows), oldest

    @staticmethod
    def _named(event: WebhookEvent) -> list[str]:
        return subscriptions_named(event) if event.type in HANDLERS else []

    async def _converge(
        self, ctx: BatchContext, events: Sequence[tuple[StripeEvent, WebhookEvent]], *, careful: bool
    ) -> dict[str, Exception]:
        """Re-read each named subscription once (sorted, so workers lock rows in one order)."""
        unreadable: dict[str, Exception] = {}
        first: dict[str, StripeEvent] = {}  # the event that named each subscription first
        for stored, event in events:
            for named in self._named(event):
                first.setdefault(named, stored)
        for subscription_id in sorted(first):
            try:
                with span("stripe converge subscription", parent=_trace_of(first[subscription_id])):
                    if careful:
                        async with ctx.db.begin_nested():
                            result = await self._converge_one(ctx, subscription_id)
                    else:
                        result = await self._converge_one(ctx, subscription_id)
            except Exception as exc:
                if not careful:
                    raise _RedoCarefully from exc
                log.warning("could not converge subscription %s: %s", subscription_id, type(exc).__name__)
                unreadable[subscription_id] = exc
                continue
            row: Subscription | None = result.subscription
            ctx.subscriptions[subscription_id] = row
            ctx.emitted += result.emitted
        return unreadable

    async def _converge_one(self, ctx: BatchContext, subscription_id: str) -> SyncResult:
        """Apply Stripe's state, then the dunning's final action if its last retry just failed."""
        result = await sync_from_stripe(ctx.db, self._stripe, subscription_id)
        if result.subscription is not None:
            result.emitted += await settle_exhausted_retries(
                ctx.db, self._stripe, self._settings, result.subscription
            )
        return result

    async def _handle(self, ctx: BatchContext, event: WebhookEvent, *, careful: bool) -> Outcome:
        handler = HANDLERS.get(event.type)
        if handler is None:
            return "ignored"
        if not careful:
            try:
                return await handler(ctx, event)
            except Exception as exc:
                raise _RedoCarefully from exc
        async with ctx.db.begin_nested():
            return await handler(ctx, event)

    def _fail(self, row: StripeEvent, event: WebhookEvent, exc: Exception) -> None:
        settings = self._settings
        row.attempts += 1
        delay = min(
            settings.webhook_retry_initial_seconds * 2 ** (row.attempts - 1),
            settings.webhook_retry_max_seconds,
        )
        row.status = StripeEventStatus.FAILED
        row.last_error = f"{type(exc).__name__}: {exc}"[:2000]
        row.next_attempt_at = utcnow() + timedelta(seconds=delay)
        EVENT_FAILURES.labels(event.type).inc()
        log.warning(
            "stripe event %s (%s) failed (attempt %d); retrying in %.0f s: %s",
            row.id,
            row.type,
            row.attempts,
            delay,
            type(exc).__name__,
        )
