"""One trace follows a sign-up and a payment across processes (the system runs with tracing on,
exporting over OTLP/HTTP into the in-test receiver, conftest.py):

- sign-up: the client's span → the gateway → auth-service → the relay's publish of its outbox row
  → notification-service's consume → the SMTP send (and billing's consume beside it);
- payment: Stripe's webhook → billing's receipt → its processor applying the event → the relay's
  publish → notification-service's consume → the receipt's SMTP send.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

import httpx
from otlp import Received, ReceivedSpan

from conftest import ADMIN_EMAIL, ADMIN_PASSWORD, PASSWORD, System, bearer, new_email, verified_user
from gatehouse_platform.testing import eventually


class Tree:
    """The spans of one trace, walked by parent ids."""

    def __init__(self, spans: list[ReceivedSpan]) -> None:
        self.spans = spans
        self.by_id = {span.span_id: span for span in spans}

    def find(self, predicate: Callable[[ReceivedSpan], bool]) -> list[ReceivedSpan]:
        return [span for span in self.spans if predicate(span)]

    def one(self, what: str, predicate: Callable[[ReceivedSpan], bool]) -> ReceivedSpan:
        found = self.find(predicate)
        assert found, f"no {what} in the trace:\n{self.describe()}"
        return found[0]

    def ancestors(self, span: ReceivedSpan) -> list[ReceivedSpan]:
        chain = []
        while span.parent_id and span.parent_id in self.by_id:
            span = self.by_id[span.parent_id]
            chain.append(span)
        return chain

    def under(self, descendant: ReceivedSpan, ancestor: ReceivedSpan) -> bool:
        return ancestor in self.ancestors(descendant)

    def describe(self) -> str:
        return "\n".join(
            f"  {s.service:22} {s.kind:9} {s.name}  ({s.span_id} ← {s.parent_id})" for s in self.spans
        )


def service(name: str, kind: str, text: str = "") -> Callable[[ReceivedSpan], bool]:
    return lambda span: span.service == name and span.kind == kind and text in span.name


async def a_trace(traces: Received, trace_id: str, complete: Callable[[Tree], bool], what: str) -> Tree:
    """The trace, once `complete` says every process has exported its spans."""

    async def ready() -> Tree | None:
        tree = Tree(traces.trace(trace_id))
        return tree if complete(tree) else None

    return await eventually(ready, what, within=30)


async def test_a_sign_up_is_one_trace_from_the_gateway_to_the_smtp_send(
    system: System, client: httpx.AsyncClient, traces: Received
) -> None:
    trace_id, client_span = secrets.token_hex(16), secrets.token_hex(8)
    email = new_email()
    response = await client.post(
        "/auth/register",
        json={"email": email, "username": f"t{secrets.token_hex(6)}", "password": PASSWORD},
        headers={"traceparent": f"00-{trace_id}-{client_span}-01"},
    )
    assert response.status_code == 202, response.text
    await system.wait_for_mail(email, "confirm your email")

    tree = await a_trace(
        traces,
        trace_id,
        lambda t: all(
            t.find(service(*wanted))
            for wanted in (
                ("notification-service", "client", "smtp send"),
                ("notification-service", "consumer"),
                ("billing-service", "consumer"),
            )
        ),
        "the sign-up's spans from every process",
    )
    gateway = tree.one("gateway server span", service("gateway", "server", "POST"))
    assert gateway.parent_id == client_span, "the gateway continues the client's trace"
    auth = tree.one("auth-service server span", service("auth-service", "server", "/auth/register"))
    assert auth.parent_id == gateway.span_id
    # The outbox rows carried the request's trace to the relay, which published each inside it.
    registered = tree.one("user.registered's publish", service("auth-service", "producer", "user.registered"))
    verification = tree.one(
        "the verification request's publish",
        service("auth-service", "producer", "user.email_verification_requested"),
    )
    assert registered.parent_id == verification.parent_id == auth.span_id
    consumed = tree.one("notification-service's consume", service("notification-service", "consumer"))
    assert consumed.parent_id == verification.span_id, tree.describe()
    sent = tree.one("the SMTP send", service("notification-service", "client", "smtp send"))
    assert tree.under(sent, consumed)
    billing = tree.one("billing-service's consume", service("billing-service", "consumer"))
    assert billing.parent_id == registered.span_id
    assert tree.find(service("auth-service", "client")), "auth's database work is in the trace"


async def test_a_payment_is_one_trace_from_the_webhook_to_the_receipt(
    system: System, client: httpx.AsyncClient, traces: Received
) -> None:
    email, headers = await verified_user(system, client)
    admin = await client.post("/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    code = f"traced-{secrets.token_hex(3)}"
    plan = await client.post(
        "/billing/plans",
        json={"code": code, "name": "Traced", "tier": "starter", "amount": 700},
        headers=bearer(admin.json()),
    )
    assert plan.status_code == 201, plan.text

    checkout = await client.post(
        "/billing/subscriptions/subscribe", json={"plan_code": code}, headers=headers
    )
    assert checkout.status_code == 201, checkout.text
    async with httpx.AsyncClient(base_url=system.urls["stripe"], timeout=30) as stripe:
        paid = await stripe.post(
            f"/_emulator/checkout/sessions/{checkout.json()['session_id']}/complete", json={"outcome": "paid"}
        )
        assert paid.status_code == 200, paid.text
    await system.wait_for_mail(email, "receipt")

    def receipt_trace() -> Tree | None:
        for span in traces.all():
            if span.service == "notification-service" and span.kind == "consumer":
                tree = Tree(traces.trace(span.trace_id))
                if tree.find(
                    service("billing-service", "internal", "stripe apply invoice.paid")
                ) and tree.find(service("notification-service", "client", "smtp send")):
                    return tree
        return None

    async def found() -> Tree | None:
        return receipt_trace()

    tree = await eventually(found, "the payment's trace with its receipt", within=30)
    received = tree.one(
        "billing's webhook receipt", service("billing-service", "server", "/billing/stripe/webhook")
    )
    applied = tree.one(
        "the processor applying invoice.paid", service("billing-service", "internal", "invoice.paid")
    )
    assert tree.under(applied, received), "processing continued the receiving request's trace"
    published = tree.one("the relay's publish", service("billing-service", "producer"))
    assert tree.under(published, applied)
    consumed = tree.one("notification-service's consume", service("notification-service", "consumer"))
    assert consumed.parent_id == published.span_id, tree.describe()
    assert tree.under(
        tree.one("the SMTP send", service("notification-service", "client", "smtp send")), consumed
    )
