"""billing-service tests: the real app served over real HTTP (so the Stripe emulator can post its
webhooks to it), a real Postgres database migrated with Alembic, a RabbitMQ vhost and a Redis key
prefix of this run's own, the Stripe emulator (emulators/stripe) driven through the official SDK,
and access tokens from a test issuer whose JWKS is served over HTTP."""

from __future__ import annotations

import contextlib
import functools
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import pytest
import stripe
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from billing_service.integrations.stripe import StripeGateway, stripe_gateway
from billing_service.main import create_app
from billing_service.models import Payment, StripeEvent, StripeEventStatus, Subscription, SubscriptionStatus
from billing_service.settings import Settings
from gatehouse_contracts.envelope import EventData, new_event
from gatehouse_emulators.stripe import StripeEmulatorConfig
from gatehouse_emulators.stripe import create_app as create_stripe_emulator
from gatehouse_platform import testing
from gatehouse_platform.outbox import event_message
from gatehouse_platform.pytest_plugin import EventTap, open_event_tap
from gatehouse_platform.testing import free_port, serve_in_thread

SERVICE_ROOT = Path(__file__).resolve().parents[1]
RUN = testing.unique_name(f"gh_billing_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}")
STRIPE_KEY = "sk_test_gatehouse_tests"
PREVIOUS_WEBHOOK_SECRET = "whsec_previous_secret_being_rotated_out"
# The platform's polling helper, with more time by default: a change here often waits for the
# emulator to send a webhook and for billing to apply it.
eventually = functools.partial(testing.eventually, within=15.0)


def pytest_configure(config: pytest.Config) -> None:
    # stripe-python's httpx client posts form bodies with `data=` (its code, not ours).
    config.addinivalue_line("filterwarnings", "ignore:Use 'content=<...>':DeprecationWarning")


# --- infrastructure ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def run_name() -> str:
    return RUN


@pytest.fixture(scope="session")
def service_root() -> Path:
    return SERVICE_ROOT


# --- tokens --------------------------------------------------------------------------------------


@dataclass
class User:
    id: uuid.UUID
    email: str
    headers: dict[str, str]


@pytest.fixture
def new_user(issuer: testing.TestIssuer) -> Callable[..., User]:
    def make(*, email_verified: bool = True, roles: tuple[str, ...] = ()) -> User:
        user_id = uuid.uuid4()
        email = f"user-{user_id.hex[:10]}@example.com"
        return User(
            user_id, email, issuer.bearer(user_id, email=email, email_verified=email_verified, roles=roles)
        )

    return make


@pytest.fixture(scope="session")
def admin(issuer: testing.TestIssuer) -> dict[str, str]:
    return issuer.bearer(uuid.uuid4(), email="admin@example.com", roles=["admin"])


# --- Stripe (the emulator) ------------------------------------------------------------------------


@pytest.fixture(scope="session")
def billing_port() -> int:
    return free_port()


@pytest.fixture(scope="session")
def stripe_url() -> Iterator[str]:
    """The Stripe emulator over real HTTP. It sends webhooks only to endpoints registered through
    its API (below), so tests can switch delivery off like a dashboard would."""
    config = StripeEmulatorConfig(
        webhook_url=None, webhook_retry_delay=0.2, webhook_max_attempts=4, check_schemas=True
    )
    with serve_in_thread(create_stripe_emulator(config)) as base:
        yield base


@pytest.fixture(scope="session")
def sdk(stripe_url: str) -> stripe.StripeClient:
    """The official SDK aimed at the emulator, for tests to look at (and act on) Stripe's side."""
    return stripe.StripeClient(STRIPE_KEY, base_addresses={"api": stripe_url}, max_network_retries=0)


@dataclass(frozen=True)
class WebhookEndpoint:
    id: str
    secret: str


@pytest.fixture(scope="session")
def webhook_endpoint(sdk: stripe.StripeClient, billing_port: int) -> WebhookEndpoint:
    endpoint = sdk.v1.webhook_endpoints.create(
        params={"url": f"http://127.0.0.1:{billing_port}/billing/stripe/webhook", "enabled_events": ["*"]}
    )
    return WebhookEndpoint(endpoint.id, str(endpoint.secret))


@pytest.fixture(scope="session")
async def emulator(stripe_url: str) -> AsyncIterator[Emulator]:
    async with httpx.AsyncClient(base_url=stripe_url, timeout=30) as http:
        yield Emulator(http)


class Emulator:
    """The emulator's /_emulator control endpoints."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def complete_checkout(self, session_id: str, outcome: str = "paid") -> dict[str, Any]:
        response = await self.http.post(
            f"/_emulator/checkout/sessions/{session_id}/complete", json={"outcome": outcome}
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def advance(self, seconds: int) -> dict[str, Any]:
        response = await self.http.post("/_emulator/clock/advance", json={"seconds": seconds})
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def now(self) -> int:
        return int((await self.http.get("/_emulator/clock")).json()["now"])

    async def payment_behavior(self, customer_id: str, outcome: str) -> None:
        response = await self.http.post(
            f"/_emulator/customers/{customer_id}/payment_behavior", json={"outcome": outcome}
        )
        assert response.status_code == 200, response.text

    async def flush(self) -> None:
        response = await self.http.post("/_emulator/webhooks/flush", json={"timeout": 20})
        assert response.status_code == 200, response.text


# --- billing-service -----------------------------------------------------------------------------


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "environment": "test",
        "log_json": False,
        "stripe_api_key": STRIPE_KEY,
        "stripe_max_network_retries": 0,
        "stripe_webhook_secret_previous": PREVIOUS_WEBHOOK_SECRET,
        "webhook_poll_interval_seconds": 0.2,
        "webhook_retry_initial_seconds": 0.2,
        "webhook_retry_max_seconds": 2.0,
        "consumer_retry_delays": [0.2, 0.5, 1.0],
        "checkout_success_url": "https://app.example.com/billing/success",
        "checkout_cancel_url": "https://app.example.com/billing/cancel",
        "portal_return_url": "https://app.example.com/billing",
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture(scope="session")
def settings(
    database_url: str, amqp_url: str, jwks_url: str, stripe_url: str, webhook_endpoint: WebhookEndpoint
) -> Settings:
    return make_settings(
        database_url=database_url,
        amqp_url=amqp_url,
        celery_broker_url=amqp_url,
        jwks_url=jwks_url,
        redis_key_prefix=RUN,
        stripe_api_base=stripe_url,
        stripe_webhook_secret=webhook_endpoint.secret,
    )


@pytest.fixture(scope="session")
def billing_url(settings: Settings, billing_port: int) -> Iterator[str]:
    with serve_in_thread(create_app(settings), port=billing_port) as base:
        yield base


@pytest.fixture(scope="session")
async def client(billing_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=billing_url, timeout=30) as client:
        yield client


@pytest.fixture
async def gateway(settings: Settings) -> AsyncIterator[StripeGateway]:
    """billing's own Stripe client, for tests that call its jobs and rules directly."""
    gateway = stripe_gateway(settings)
    yield gateway
    await gateway.aclose()


# --- events --------------------------------------------------------------------------------------


def of_subscription(subscription_id: uuid.UUID | str) -> Callable[[dict[str, Any]], bool]:
    return lambda e: e["data"].get("subscription_id") == str(subscription_id)


@pytest.fixture(scope="session")
async def events(amqp_url: str, settings: Settings) -> AsyncIterator[EventTap]:
    bindings = ("subscription.#", "payment.#", "payment_method.#")
    async with open_event_tap(amqp_url, f"{RUN}.tap", bindings, settings.events_exchange) as tap:
        yield tap


@pytest.fixture(scope="session")
async def publish(
    amqp_url: str, settings: Settings, billing_url: str
) -> AsyncIterator[Callable[[EventData], Awaitable[None]]]:
    """Publish an event as its producer (auth-service) would, to the running billing-service."""
    connection = await aio_pika.connect_robust(amqp_url)
    channel = await connection.channel(publisher_confirms=True)
    exchange = await channel.declare_exchange(
        settings.events_exchange, aio_pika.ExchangeType.TOPIC, durable=True
    )

    async def send(data: EventData) -> None:
        event = new_event(data, source="/auth-service", subject=str(getattr(data, "user_id", "")))
        await exchange.publish(event_message(event), routing_key=event.type)

    yield send
    await connection.close()


# --- helpers -------------------------------------------------------------------------------------


async def subscription_row(
    db: async_sessionmaker[AsyncSession], subscription_id: uuid.UUID | str
) -> Subscription:
    async with db() as session:
        row = await session.get(Subscription, uuid.UUID(str(subscription_id)))
        assert row is not None
        return row


async def wait_for_status(
    db: async_sessionmaker[AsyncSession],
    subscription_id: uuid.UUID | str,
    status: SubscriptionStatus,
    timeout: float = 15.0,
) -> Subscription:
    async def check() -> Subscription | None:
        row = await subscription_row(db, subscription_id)
        return row if row.status == status else None

    return await eventually(check, f"subscription {subscription_id} to be {status.value}", within=timeout)


async def payments_of(db: async_sessionmaker[AsyncSession], user_id: uuid.UUID) -> list[Payment]:
    async with db() as session:
        rows = await session.execute(
            select(Payment).where(Payment.user_id == user_id).order_by(Payment.invoice_created_at, Payment.id)
        )
        return list(rows.scalars())


def new_code() -> str:
    return f"plan-{uuid.uuid4().hex[:10]}"


NewPlan = Callable[..., Awaitable[dict[str, Any]]]


@pytest.fixture
def new_plan(client: httpx.AsyncClient, admin: dict[str, str]) -> NewPlan:
    """`await new_plan(**fields)`: a plan an admin created, with its Stripe product and price;
    `fields` override the defaults."""

    async def create(**fields: Any) -> dict[str, Any]:
        body = {
            "code": new_code(),
            "name": "Pro",
            "tier": "pro",
            "amount": 3000,
            "currency": "usd",
            "interval": "month",
            "features": ["api", "projects:unlimited"],
            **fields,
        }
        response = await client.post("/billing/plans", json=body, headers=admin)
        assert response.status_code == 201, response.text
        return dict(response.json())

    return create


@dataclass
class Subscribed:
    user: User
    plan: dict[str, Any]
    subscription_id: uuid.UUID
    session_id: str
    stripe_subscription_id: str
    stripe_customer_id: str


async def subscribe(client: httpx.AsyncClient, user: User, plan_code: str) -> dict[str, Any]:
    response = await client.post(
        "/billing/subscriptions/subscribe", json={"plan_code": plan_code}, headers=user.headers
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


PaidSubscription = Callable[..., Awaitable[Subscribed]]


@pytest.fixture
def paid_subscription(
    client: httpx.AsyncClient,
    emulator: Emulator,
    db: async_sessionmaker[AsyncSession],
    new_user: Callable[..., User],
    new_plan: NewPlan,
) -> PaidSubscription:
    """`await paid_subscription(plan)`, or `(**plan_fields)` for a new plan: a new user with an
    active (or trialing) subscription to it, paid through Checkout."""

    async def start(plan: dict[str, Any] | None = None, **plan_fields: Any) -> Subscribed:
        plan = plan or await new_plan(**plan_fields)
        user = new_user()
        checkout = await subscribe(client, user, plan["code"])
        result = await emulator.complete_checkout(checkout["session_id"], "paid")
        expected = SubscriptionStatus.TRIALING if plan.get("trial_days") else SubscriptionStatus.ACTIVE
        await wait_for_status(db, checkout["subscription_id"], expected)
        return Subscribed(
            user=user,
            plan=plan,
            subscription_id=uuid.UUID(checkout["subscription_id"]),
            session_id=checkout["session_id"],
            stripe_subscription_id=result["subscription"]["id"],
            stripe_customer_id=result["subscription"]["customer"],
        )

    return start


def assert_problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    """A problem+json answer with this status and problem type (its `type` ends in `/slug`)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["type"].endswith(f"/{slug}") and body["detail"]
    return body


def signed(payload: str, secret: str, timestamp: int | None = None) -> dict[str, str]:
    """Headers of a webhook as Stripe signs it."""
    header = stripe.WebhookSignature.generate_signature_header(payload, secret, timestamp=timestamp)
    return {"Stripe-Signature": header, "Content-Type": "application/json"}


def fake_event(event_type: str, obj: dict[str, Any], *, created: int | None = None) -> dict[str, Any]:
    return {
        "id": f"evt_test_{uuid.uuid4().hex}",
        "object": "event",
        "api_version": stripe.api_version,
        "created": created or int(time.time()),
        "data": {"object": obj},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
    }


async def settled(emulator: Emulator, db: async_sessionmaker[AsyncSession]) -> None:
    """Every webhook Stripe has sent is delivered and applied."""
    await emulator.flush()

    async def nothing_pending() -> bool:
        async with db() as session:
            pending = await session.scalar(
                select(func.count()).where(StripeEvent.status == StripeEventStatus.PENDING)
            )
        return pending == 0

    await eventually(nothing_pending, "the stored Stripe events to be applied")


@contextlib.asynccontextmanager
async def webhooks_off(
    sdk: stripe.StripeClient,
    endpoint: WebhookEndpoint,
    emulator: Emulator,
    db: async_sessionmaker[AsyncSession],
) -> AsyncIterator[None]:
    """Stripe stops delivering to billing (as if the endpoint were disabled in the dashboard, or
    billing unreachable for longer than Stripe retries): changes made meanwhile are missed."""
    await settled(emulator, db)
    sdk.v1.webhook_endpoints.update(endpoint.id, params={"disabled": True})
    try:
        yield
        await emulator.flush()
    finally:
        sdk.v1.webhook_endpoints.update(endpoint.id, params={"disabled": False})
