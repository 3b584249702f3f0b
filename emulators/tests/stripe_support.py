"""Helpers for the Stripe emulator tests: a webhook receiver, the /_emulator controls, an SDK client,
plan and subscription shortcuts. The fixtures serving them live in stripe_fixtures.py."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import stripe
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

API_KEY = "sk_test_gatehouse_emulator"
WEBHOOK_SECRET = "whsec_gatehouse_test"
DAY = 86400
# What collecting a subscription invoice with a good card raises, in order.
PAID_INVOICE_EVENTS = [
    "invoice.created",
    "invoice.finalized",
    "payment_intent.created",
    "payment_intent.succeeded",
    "invoice.paid",
    "invoice.payment_succeeded",
    "customer.subscription.updated",
]


@contextmanager
def sdk_client(base_url: str, api_key: str = API_KEY) -> Iterator[stripe.StripeClient]:
    """The official SDK aimed at an emulator, without retries (so failures show)."""
    http_client = stripe.RequestsClient()
    try:
        yield stripe.StripeClient(
            api_key, base_addresses={"api": base_url}, max_network_retries=0, http_client=http_client
        )
    finally:
        http_client.close()


@dataclass
class Received:
    path: str
    body: bytes
    headers: dict[str, str]

    def event(self, secret: str = WEBHOOK_SECRET) -> stripe.Event:
        return stripe.Webhook.construct_event(self.body, self.headers.get("stripe-signature"), secret)


@dataclass
class Receiver:
    """A tiny webhook endpoint that records what it is sent; it can answer 500 for a while."""

    url: str = ""
    received: list[Received] = field(default_factory=list)
    refused: list[Received] = field(default_factory=list)
    fail_next: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def app(self) -> Starlette:
        async def hook(request: Request) -> Response:
            entry = Received(request.url.path, await request.body(), dict(request.headers))
            with self.lock:
                if self.fail_next > 0:
                    self.fail_next -= 1
                    self.refused.append(entry)
                    return Response("boom", status_code=500)
                self.received.append(entry)
            return Response(status_code=200)

        return Starlette(routes=[Route("/{path:path}", hook, methods=["POST"])])

    def clear(self) -> None:
        with self.lock:
            self.received.clear()
            self.refused.clear()
            self.fail_next = 0

    def events(self, path: str = "/webhook", secret: str = WEBHOOK_SECRET) -> list[stripe.Event]:
        with self.lock:
            entries = [r for r in self.received if r.path == path]
        return [r.event(secret) for r in entries]

    def types(self, path: str = "/webhook") -> list[str]:
        return [e.type for e in self.events(path)]


class Control:
    """The emulator's /_emulator endpoints."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.http = httpx.Client(base_url=base_url, timeout=15)

    def post(self, path: str, **body: Any) -> dict[str, Any]:
        response = self.http.post(path, json=body)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    def reset(self) -> None:
        self.post("/_emulator/reset")

    def now(self) -> int:
        return int(self.http.get("/_emulator/clock").json()["now"])

    def advance(self, seconds: int) -> dict[str, Any]:
        return self.post("/_emulator/clock/advance", seconds=seconds)

    def complete(self, session_id: str, outcome: str = "paid", **extra: Any) -> dict[str, Any]:
        return self.post(f"/_emulator/checkout/sessions/{session_id}/complete", outcome=outcome, **extra)

    def payment_behavior(self, customer_id: str, outcome: str) -> None:
        self.post(f"/_emulator/customers/{customer_id}/payment_behavior", outcome=outcome)

    def chaos(self, **settings: Any) -> None:
        self.post("/_emulator/webhooks/chaos", **settings)

    def flush(self) -> None:
        self.post("/_emulator/webhooks/flush", timeout=10)

    def deliveries(self, **filters: Any) -> list[dict[str, Any]]:
        params = {k: v for k, v in filters.items() if v is not None}
        rows: list[dict[str, Any]] = self.http.get("/_emulator/webhooks/deliveries", params=params).json()[
            "data"
        ]
        return rows


def make_price(
    client: stripe.StripeClient,
    amount: int = 3000,
    *,
    interval: str = "day",
    count: int = 30,
    name: str = "Pro",
) -> stripe.Price:
    """A recurring price; 30-day periods by default so proration arithmetic is exact."""
    return client.v1.prices.create(
        params={
            "currency": "usd",
            "unit_amount": amount,
            "recurring": {"interval": interval, "interval_count": count},
            "product_data": {"name": name},
        }
    )


def subscribe(
    client: stripe.StripeClient,
    emulator: Control,
    price_id: str,
    *,
    email: str = "ada@example.com",
    **data: Any,
) -> stripe.Subscription:
    session = client.v1.checkout.sessions.create(
        params={
            "mode": "subscription",
            "line_items": [{"price": price_id, "quantity": 1}],
            "customer_email": email,
            "success_url": "https://app.example.com/billing/success?session={CHECKOUT_SESSION_ID}",
            "cancel_url": "https://app.example.com/billing/cancel",
            "subscription_data": data,
        }
    )
    emulator.complete(session.id, "paid")
    done = client.v1.checkout.sessions.retrieve(session.id)
    assert isinstance(done.subscription, str)
    return client.v1.subscriptions.retrieve(done.subscription)
