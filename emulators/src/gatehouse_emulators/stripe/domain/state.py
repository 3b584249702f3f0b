"""The emulator's whole state: objects, clock, the events a change raised, and the request that caused it.

Every API call and every piece of due work runs under `lock`; the events it emits collect in
`outbox`, and the HTTP layer hands them to the webhook dispatcher once the change is complete."""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gatehouse_emulators.stripe.config import StripeEmulatorConfig
from gatehouse_emulators.stripe.domain.clock import Clock
from gatehouse_emulators.stripe.domain.render import render
from gatehouse_emulators.stripe.domain.store import Obj, Store, new_id
from gatehouse_emulators.stripe.wire.conformance import Conformance

PAYMENT_OUTCOMES = ("paid", "declined", "requires_action")
MAX_LOGGED_REQUESTS = 1000


@dataclass
class RequestContext:
    request_id: str | None = None
    idempotency_key: str | None = None
    base_url: str = "http://127.0.0.1:12111"


@dataclass
class Endpoint:
    """Where events go: the configured URL or one registered through /v1/webhook_endpoints."""

    url: str
    secret: str
    enabled_events: tuple[str, ...] = ("*",)
    endpoint_id: str | None = None

    def wants(self, event_type: str) -> bool:
        return "*" in self.enabled_events or event_type in self.enabled_events


class Emulator:
    def __init__(self, config: StripeEmulatorConfig) -> None:
        self.config = config
        self.clock = Clock(config.clock, config.start_time)
        self.store = Store()
        self.outbox: list[Obj] = []
        self.context = RequestContext(base_url=config.public_url or "http://127.0.0.1:12111")
        self.lock = asyncio.Lock()
        self.idempotency: dict[tuple[str, str], Any] = {}
        # the last API calls, for /_emulator/requests
        self.requests: deque[dict[str, Any]] = deque(maxlen=MAX_LOGGED_REQUESTS)
        self.conformance = Conformance() if config.check_schemas else None

    def now(self) -> int:
        return self.clock.now()

    def save(self, path: Path) -> None:
        """The objects and the clock as JSON (idempotency records and the request log are not kept)."""
        snapshot = {"version": 1, "store": self.store.snapshot(), "clock": self.clock.snapshot()}
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(snapshot))
        temporary.replace(path)

    def load(self, path: Path) -> None:
        snapshot = json.loads(path.read_text())
        self.store.restore(snapshot["store"])
        self.clock.restore(snapshot["clock"])

    def reset(self) -> None:
        self.store.clear()
        self.outbox.clear()
        self.idempotency.clear()
        self.requests.clear()
        self.clock.reset(self.config.start_time)

    def render(self, obj: Obj, expand: Sequence[str] = ()) -> Obj:
        return render(self.store, obj, expand)

    def endpoints(self) -> list[Endpoint]:
        targets = []
        if self.config.webhook_url:
            targets.append(Endpoint(self.config.webhook_url, self.config.webhook_secret))
        for we in reversed(self.store.all("webhook_endpoint")):
            if we["status"] == "enabled":
                targets.append(Endpoint(we["url"], we["_secret"], tuple(we["enabled_events"]), we["id"]))
        return targets

    def emit(self, event_type: str, obj: Obj, previous_attributes: dict[str, Any] | None = None) -> Obj:
        """Record an event whose `data.object` is a snapshot of `obj` now."""
        data: dict[str, Any] = {"object": self.render(obj)}
        if previous_attributes:
            data["previous_attributes"] = previous_attributes
        event: Obj = {
            "id": new_id("evt_"),
            "object": "event",
            "api_version": self.config.api_version,
            "created": self.now(),
            "data": data,
            "livemode": False,
            "pending_webhooks": sum(1 for e in self.endpoints() if e.wants(event_type)),
            "request": {"id": self.context.request_id, "idempotency_key": self.context.idempotency_key},
            "type": event_type,
        }
        self.store.add(event)
        self.outbox.append(event)
        return event

    def check(self, body: Any, source: str) -> None:
        """Validate a body about to leave against Stripe's schemas, when the check is on."""
        if self.conformance is not None:
            self.conformance.check(body, source)

    def take_outbox(self) -> list[Obj]:
        events, self.outbox = self.outbox, []
        return events


def changed(before: Obj, after: Obj, keys: Sequence[str]) -> dict[str, Any]:
    """`previous_attributes` for an update: the old value of each key whose value changed."""
    return {k: before.get(k) for k in keys if before.get(k) != after.get(k)}
