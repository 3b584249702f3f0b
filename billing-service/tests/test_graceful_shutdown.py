"""SIGTERM mid-load: billing-service answers the webhooks it took and refuses the rest (Stripe
retries those), finishes applying what it stored, stops consuming user events with the ones in hand
done and the rest left on the queue; started again, every stored Stripe event is applied and every
user has exactly one customer row.

billing-service runs as a real process (`billing-service serve`) on a database and vhost of its own.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from datetime import UTC, datetime

import aio_pika
import httpx
from sqlalchemy import func, select

from billing_service.models import Customer, StripeEvent, StripeEventStatus
from conftest import STRIPE_KEY, fake_event, signed
from gatehouse_contracts.envelope import new_event
from gatehouse_contracts.events import UserRegistered
from gatehouse_platform import testing
from gatehouse_platform.db import make_engine, make_session_factory
from gatehouse_platform.outbox import event_message
from gatehouse_platform.tcp_proxy import TcpProxy
from gatehouse_platform.testing import free_port

WEBHOOKS = 40
USERS = 1500  # more than the consumer applies between SIGTERM and its stop, even on a quiet machine
SECRET = "whsec_graceful_shutdown_test"


async def publish_registrations(amqp_url: str, users: list[uuid.UUID]) -> None:
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.declare_exchange(
            "gatehouse.events", aio_pika.ExchangeType.TOPIC, durable=True
        )

        async def publish(user_id: uuid.UUID) -> None:
            data = UserRegistered(
                user_id=user_id,
                email=f"{user_id.hex[:12]}@example.com",
                username=user_id.hex,
                provider="password",
                email_verified=False,
                registered_at=datetime.now(UTC),
            )
            event = new_event(data, source="/auth-service", subject=str(user_id))
            await exchange.publish(event_message(event), routing_key=event.type)

        for start in range(0, len(users), 100):  # confirmed a hundred at a time
            await asyncio.gather(*(publish(user_id) for user_id in users[start : start + 100]))


async def test_sigterm_mid_load_loses_no_webhook_and_no_user_event(
    own_database: str, own_vhost: str, jwks_url: str, stripe_url: str
) -> None:
    env = {
        **os.environ,
        "BILLING_ENVIRONMENT": "test",
        "BILLING_LOG_JSON": "false",
        "BILLING_DATABASE_URL": own_database,
        "BILLING_AMQP_URL": own_vhost,
        "BILLING_CELERY_BROKER_URL": own_vhost,
        "BILLING_REDIS_KEY_PREFIX": testing.unique_name("gh_billing_sigterm"),
        "BILLING_JWKS_URL": jwks_url,
        "BILLING_STRIPE_API_BASE": stripe_url,
        "BILLING_STRIPE_API_KEY": STRIPE_KEY,
        "BILLING_STRIPE_MAX_NETWORK_RETRIES": "0",
        "BILLING_STRIPE_WEBHOOK_SECRET": SECRET,
        "BILLING_WEBHOOK_POLL_INTERVAL_SECONDS": "0.2",
        "BILLING_CONSUMER_PREFETCH": "4",
    }
    service = testing.ServiceProcess("billing_service.cli", env, free_port())
    engine = make_engine(own_database, pool_size=2)
    db = make_session_factory(engine)
    users = [uuid.uuid4() for _ in range(USERS)]
    # Expired Checkouts billing never started: each is stored, then applied as "ignored".
    webhooks = [
        json.dumps(
            fake_event("checkout.session.expired", {"id": f"cs_{uuid.uuid4().hex}", "status": "expired"})
        )
        for _ in range(WEBHOOKS)
    ]
    try:
        await service.start()  # declares its queues and bindings
        await publish_registrations(own_vhost, users)

        async def some_customers() -> bool:
            async with db() as session:
                return (await session.scalar(select(func.count()).select_from(Customer)) or 0) >= 10

        await testing.eventually(some_customers, "the consumer to be under way", within=30, every=0.01)
        # A connection per request, so a refused request is refused before it is sent.
        no_reuse = httpx.Limits(max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=service.url, limits=no_reuse, timeout=30) as http:

            async def deliver(nth: int, payload: str) -> int | str:
                await asyncio.sleep(nth * 0.02)  # a steady stream of deliveries over most of a second
                try:
                    response = await http.post(
                        "/billing/stripe/webhook", content=payload, headers=signed(payload, SECRET)
                    )
                    return response.status_code
                except (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError):
                    return "refused"  # never reached the app (the rows below prove it); Stripe retries

            async def terminate_mid_load() -> None:
                await asyncio.sleep(0.3)
                service.sigterm()

            outcomes = await asyncio.gather(
                *(deliver(n, w) for n, w in enumerate(webhooks)), terminate_mid_load()
            )
        assert await service.wait() in testing.GRACEFUL_EXITS
        answered = {
            json.loads(w)["id"] for w, outcome in zip(webhooks, outcomes, strict=False) if outcome == 200
        }
        assert set(outcomes[:-1]) <= {200, "refused"}, outcomes  # no 5xx, no request cut off
        assert answered and "refused" in outcomes, outcomes

        async with db() as session:
            stored = set((await session.scalars(select(StripeEvent.id))).all())
            customers = await session.scalar(select(func.count()).select_from(Customer))
        assert stored == answered, "exactly the acknowledged webhooks were stored"
        connection = await aio_pika.connect(own_vhost)
        async with connection:
            queue = await (await connection.channel()).declare_queue("billing-service", passive=True)
            waiting = queue.declaration_result.message_count or 0
        # Every user event was applied or is back on the queue: none lost, none held unacked.
        assert (customers or 0) + waiting == USERS
        assert waiting > 0, "the load was still running when SIGTERM came"

        await service.start()

        async def all_applied() -> bool:
            async with db() as session:
                statuses = (await session.scalars(select(StripeEvent.status))).all()
                customers = await session.scalar(select(func.count()).select_from(Customer))
            return customers == USERS and all(s == StripeEventStatus.IGNORED for s in statuses)

        await testing.eventually(all_applied, "every stored webhook and user event to be applied", within=30)
        async with db() as session:
            assert set((await session.scalars(select(Customer.user_id))).all()) == set(users)
        assert await service.terminate() in testing.GRACEFUL_EXITS
    finally:
        service.kill()
        await engine.dispose()


async def half_closed_connections(port: int, count: int) -> None:
    """Connections whose peer sent part of a request and left (FIN): the server side waits in
    CLOSE-WAIT, one with a request head and part of a large body, one with half a head."""
    for nth in range(count):
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        if nth % 2:
            writer.write(b"POST /billing/stripe/webhook HTTP/1.1\r\nhost: billing\r\n")
        else:
            head = b"POST /billing/stripe/webhook HTTP/1.1\r\nhost: billing\r\ncontent-length: 9000000\r\n"
            writer.write(head + b"\r\n" + b"{" * 1_000_000)
        await writer.drain()
        writer.close()  # the peer is gone; the service has not closed its side


async def test_sigterm_ends_the_process_in_time_with_half_closed_connections_and_the_broker_gone(
    own_database: str, own_vhost: str, jwks_url: str, stripe_url: str
) -> None:
    """issue 22: two `--workers 2` billing processes outlived their bench by an hour, idling in
    shutdown with connections in CLOSE-WAIT. Here the broker vanishes (its link cut) and peers
    leave half-closed connections behind; SIGTERM ends the whole process tree within the drain
    time (uvicorn's --drain-seconds, then the lifespan's stop deadline)."""
    broker = TcpProxy.before(own_vhost)
    await broker.open()
    through = broker.url(own_vhost)
    env = {
        **os.environ,
        "BILLING_ENVIRONMENT": "test",
        "BILLING_LOG_JSON": "false",
        "BILLING_DATABASE_URL": own_database,
        "BILLING_AMQP_URL": through,
        "BILLING_CELERY_BROKER_URL": through,
        "BILLING_REDIS_KEY_PREFIX": testing.unique_name("gh_billing_sigterm"),
        "BILLING_JWKS_URL": jwks_url,
        "BILLING_STRIPE_API_BASE": stripe_url,
        "BILLING_STRIPE_API_KEY": STRIPE_KEY,
        "BILLING_STRIPE_WEBHOOK_SECRET": SECRET,
    }
    drain = ["--drain-seconds", "2", "--stop-seconds", "3"]
    service = testing.ServiceProcess("billing_service.cli", env, free_port(), ["--workers", "2", *drain])
    try:
        await service.start(within=120, workers=2)  # each importing the service
        await half_closed_connections(service.port, 6)
        await broker.close()
        await asyncio.sleep(0.5)  # the workers notice: their consumers and relay reconnect in vain
        service.sigterm()
        # Without the deadlines the consumers' stop waits for a broker that is not coming back.
        assert await service.wait(within=30) in testing.GRACEFUL_EXITS
    finally:
        service.kill()
        await broker.close()
