"""The composition root: `bootstrap()` builds the process's services once, `create_app()` the API,
whose lifespan runs the outbox relay, the Stripe event processor and the event consumers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import FastAPI
from redis.asyncio import Redis

from billing_service.dependencies import Services
from billing_service.events.handlers import bind
from billing_service.integrations.stripe import StripeGateway
from billing_service.payments.router import router as payments_router
from billing_service.plans.router import router as plans_router
from billing_service.settings import Settings, get_settings
from billing_service.subscriptions.router import router as subscriptions_router
from billing_service.webhooks.processor import WebhookProcessor
from billing_service.webhooks.recorder import EventRecorder
from billing_service.webhooks.router import router as webhooks_router
from gatehouse_platform.consumer import EventConsumer
from gatehouse_platform.db import make_engine, make_session_factory
from gatehouse_platform.denylist import RedisDenylist, denylist_handlers
from gatehouse_platform.http import broker_check, database_check, install_platform, redis_check
from gatehouse_platform.jwks import JWKSVerifier
from gatehouse_platform.logging import configure_logging
from gatehouse_platform.outbox import OutboxRelay


@dataclass
class Workers:
    """What runs beside the API in its process."""

    relay: OutboxRelay
    consumer: EventConsumer
    denylist_consumer: EventConsumer


def stripe_gateway(settings: Settings) -> StripeGateway:
    return StripeGateway(
        settings.stripe_api_key,
        api_base=settings.stripe_api_base,
        max_network_retries=settings.stripe_max_network_retries,
        timeout_seconds=settings.stripe_timeout_seconds,
    )


def bootstrap(settings: Settings) -> tuple[Services, Workers]:
    engine = make_engine(settings.database_url, pool_size=settings.database_pool_size)
    session_factory = make_session_factory(engine)
    stripe = stripe_gateway(settings)
    redis = Redis.from_url(settings.redis_url)
    denylist = RedisDenylist(
        redis,
        prefix=f"{settings.redis_key_prefix}:denylist",
        access_token_ttl_seconds=settings.access_token_ttl_seconds,
    )
    verifier = JWKSVerifier(
        settings.jwks_url, issuer=settings.issuer, audience=settings.audience, denylist=denylist
    )
    processor = WebhookProcessor(session_factory, stripe, settings)
    services = Services(
        settings=settings,
        engine=engine,
        session_factory=session_factory,
        stripe=stripe,
        verifier=verifier,
        redis=redis,
        processor=processor,
        recorder=EventRecorder(session_factory),
    )
    workers = Workers(
        relay=OutboxRelay(engine, settings.amqp_url, exchange=settings.events_exchange),
        consumer=EventConsumer(
            settings.amqp_url,
            exchange=settings.events_exchange,
            name=settings.consumer_name,
            handlers=bind(stripe),
            session_factory=session_factory,
            prefetch=settings.consumer_prefetch,
            retry_delays=settings.consumer_retry_delays,
        ),
        # Token revocations need no database: a queue of their own, so a slow Stripe call in the
        # consumer above never delays a revocation.
        denylist_consumer=EventConsumer(
            settings.amqp_url,
            exchange=settings.events_exchange,
            name=f"{settings.consumer_name}.denylist",
            handlers=denylist_handlers(denylist),
            session_factory=None,
        ),
    )
    return services, workers


def create_app(
    settings: Settings | None = None, *, run_relay: bool = True, run_consumers: bool | None = None
) -> FastAPI:
    settings = settings or get_settings()
    configure_logging("billing-service", level=settings.log_level, json=settings.log_json)
    logging.getLogger("stripe").setLevel(logging.WARNING)  # the SDK logs every request at INFO
    services, workers = bootstrap(settings)
    consume = settings.consume_events if run_consumers is None else run_consumers

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if run_relay:
            await workers.relay.start()
        if settings.webhook_processor_enabled:
            await services.processor.start()
        if consume:
            await workers.denylist_consumer.start()
            await workers.consumer.start()
        try:
            yield
        finally:
            if consume:
                await workers.consumer.stop()
                await workers.denylist_consumer.stop()
            if settings.webhook_processor_enabled:
                await services.processor.stop()
            if run_relay:
                await workers.relay.stop()
            await services.stripe.aclose()
            await services.verifier.aclose()
            await services.redis.aclose()
            await services.engine.dispose()

    app = FastAPI(
        title="Gatehouse billing-service",
        version="0.1.0",
        description="Plans, Stripe Checkout subscriptions, payments; Stripe webhooks applied exactly once. "
        "Errors are RFC 9457 problem details.",
        lifespan=lifespan,
    )
    app.state.services = services

    install_platform(
        app,
        {
            "database": database_check(services.engine),
            "broker": broker_check(settings.amqp_url),
            "redis": redis_check(services.redis),
        },
    )
    for router in (plans_router, subscriptions_router, payments_router, webhooks_router):
        app.include_router(router)
    return app
