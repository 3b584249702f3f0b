"""Webhook delivery: Stripe's signature scheme, a background queue with retries, and test chaos.

Each event goes to every endpoint that wants its type. A delivery is a POST of the event JSON with
`Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, made by one worker task so the
API never waits for it. A non-2xx answer or a connection error is retried after 0.5 s, 1 s, 2 s, …
(`webhook_retry_delay` doubled per attempt) up to `webhook_max_attempts`. Chaos (tests) sends each
event `duplicates` times and shuffles each batch (the events one API call or clock step raised),
optionally holding each delivery back up to `max_delay` s so later batches overtake earlier ones."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

from gatehouse_emulators.stripe.config import StripeEmulatorConfig
from gatehouse_emulators.stripe.domain.state import Endpoint
from gatehouse_emulators.stripe.domain.store import Obj

log = logging.getLogger(__name__)


def sign(payload: str, secret: str, timestamp: int | None = None) -> str:
    moment = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{moment}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={moment},v1={digest}"


def encode_event(event: Obj) -> str:
    return json.dumps(event, indent=2)


@dataclass
class Chaos:
    duplicates: int = 1
    shuffle: bool = False
    max_delay: float = 0.0
    seed: int | None = None


@dataclass
class Job:
    event_id: str
    event_type: str
    payload: str
    endpoint: Endpoint
    generation: int
    attempt: int = 1
    copy: int = 1


@dataclass
class Delivery:
    id: int
    event_id: str
    event_type: str
    url: str
    endpoint: str | None
    attempt: int
    copy: int
    status: int | None
    error: str | None
    succeeded: bool
    final: bool
    at: float = field(default_factory=time.time)


class Dispatcher:
    def __init__(
        self,
        config: StripeEmulatorConfig,
        on_delivered: Callable[[str], None] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.config = config
        self.chaos = Chaos()
        self.deliveries: list[Delivery] = []
        self._on_delivered = on_delivered
        self._transport = transport
        self._queue: asyncio.Queue[Job] | None = None
        self._client: httpx.AsyncClient | None = None
        self._worker: asyncio.Task[None] | None = None
        self._timers: set[asyncio.TimerHandle] = set()
        self._outstanding = 0
        self._idle: asyncio.Event | None = None
        self._generation = 0
        self._random = random.Random()  # noqa: S311 - shuffling test deliveries, not security

    async def start(self) -> None:
        self._ensure_started()

    def _ensure_started(self) -> None:
        """Start the worker on the running loop (also lazily, for apps served without lifespan)."""
        if self._worker is not None:
            return
        self._queue = asyncio.Queue()
        self._idle = asyncio.Event()
        self._idle.set()
        self._client = httpx.AsyncClient(timeout=self.config.webhook_timeout, transport=self._transport)
        self._worker = asyncio.create_task(self._run(), name="stripe-emulator-webhooks")

    async def stop(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        if self._client is not None:
            await self._client.aclose()

    def set_chaos(self, chaos: Chaos) -> None:
        self.chaos = chaos
        self._random.seed(chaos.seed)

    def reset(self) -> None:
        """Forget queued and scheduled deliveries and the log; in-flight ones are dropped on return."""
        self._generation += 1
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        if self._queue is not None:
            while not self._queue.empty():
                self._queue.get_nowait()
        self._outstanding = 0
        if self._idle is not None:
            self._idle.set()
        self.deliveries.clear()
        self.chaos = Chaos()

    def dispatch(self, events: list[Obj], endpoints: list[Endpoint]) -> None:
        self._ensure_started()
        jobs = []
        payloads = [(event, encode_event(event)) for event in events]
        for copy in range(1, max(1, self.chaos.duplicates) + 1):
            for event, payload in payloads:
                for endpoint in endpoints:
                    if endpoint.wants(event["type"]):
                        jobs.append(
                            Job(event["id"], event["type"], payload, endpoint, self._generation, copy=copy)
                        )
        if self.chaos.shuffle:
            self._random.shuffle(jobs)
        for job in jobs:
            self._track(+1)
            delay = self._random.uniform(0, self.chaos.max_delay) if self.chaos.max_delay > 0 else 0.0
            self._enqueue(job, delay)

    def _enqueue(self, job: Job, delay: float) -> None:
        assert self._queue is not None, "dispatcher not started"
        if delay <= 0:
            self._queue.put_nowait(job)
            return
        loop = asyncio.get_running_loop()
        holder: list[asyncio.TimerHandle] = []

        def fire() -> None:
            self._timers.discard(holder[0])
            if job.generation == self._generation and self._queue is not None:
                self._queue.put_nowait(job)

        holder.append(loop.call_later(delay, fire))
        self._timers.add(holder[0])

    def _track(self, change: int) -> None:
        self._outstanding = max(0, self._outstanding + change)
        if self._idle is not None:
            if self._outstanding == 0:
                self._idle.set()
            else:
                self._idle.clear()

    async def flush(self, within: float = 10.0) -> bool:
        """Wait until nothing is queued, in flight or waiting for a retry; False on timeout."""
        if self._idle is None:
            return True
        try:
            await asyncio.wait_for(self._idle.wait(), within)
        except TimeoutError:
            return False
        return True

    @property
    def outstanding(self) -> int:
        return self._outstanding

    async def _run(self) -> None:
        assert self._queue is not None
        while True:
            job = await self._queue.get()
            if job.generation != self._generation:
                continue
            try:
                await self._deliver(job)
            except Exception:  # the worker must survive anything one delivery does
                log.exception("webhook delivery crashed")
                if job.generation == self._generation:
                    self._track(-1)

    async def _deliver(self, job: Job) -> None:
        assert self._client is not None
        status: int | None = None
        error: str | None = None
        try:
            response = await self._client.post(
                job.endpoint.url,
                content=job.payload.encode(),
                headers={
                    "Content-Type": "application/json; charset=utf-8",
                    "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
                    "Stripe-Signature": sign(job.payload, job.endpoint.secret),
                },
            )
            status = response.status_code
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        if job.generation != self._generation:
            return
        succeeded = status is not None and 200 <= status < 300
        final = succeeded or job.attempt >= self.config.webhook_max_attempts
        self.deliveries.append(
            Delivery(
                id=len(self.deliveries) + 1,
                event_id=job.event_id,
                event_type=job.event_type,
                url=job.endpoint.url,
                endpoint=job.endpoint.endpoint_id,
                attempt=job.attempt,
                copy=job.copy,
                status=status,
                error=error,
                succeeded=succeeded,
                final=final,
            )
        )
        if succeeded and self._on_delivered is not None and job.copy == 1:
            self._on_delivered(job.event_id)
        if final:
            self._track(-1)
            return
        delay = self.config.webhook_retry_delay * 2 ** (job.attempt - 1)
        job.attempt += 1
        self._enqueue(job, delay)

    def log(self, **filters: Any) -> list[dict[str, Any]]:
        rows = [asdict(d) for d in self.deliveries]
        for key, value in filters.items():
            if value is not None:
                rows = [r for r in rows if r[key] == value]
        return rows
