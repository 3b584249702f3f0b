"""The composition root: `bootstrap()` builds the process's services once, `create_app()` the API,
whose lifespan runs the outbox relay, the Stripe event processor and the event consumers."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial

from fastapi import FastAPI
from redis.asyncio import Redis

from billing_service.audit.router import router as audit_router
from billing_service.coupons.router import router as coupons_router
from billing_service.dependencies import Services, require_admin
from billing_service.event_log import service as event_log_service
from billing_service.event_log.router import router as event_log_router
from billing_service.events.handlers import bind
from billing_service.integrations.stripe import stripe_gateway
from billing_service.orgs.router import router as orgs_router
from billing_service.orgs.seats import SeatWorker
from billing_service.payments.router import router as payments_router
from billing_service.plans.router import router as plans_router
from billing_service.self_service.router import router as self_service_router
from billing_service.settings import Settings, get_settings
from billing_service.subscriptions.router import router as subscriptions_router
from billing_service.webhooks.processor import WebhookProcessor
from billing_service.webhooks.recorder import EventRecorder
from billing_service.webhooks.router import router as webhooks_router
from gatehouse_platform.app import Lifespan, Worker, service_app
from gatehouse_platform.consumer import EventConsumer
from gatehouse_platform.db import make_engine, make_session_factory
from gatehouse_platform.denylist import TokenDenylist, token_denylist
from gatehouse_platform.http import broker_check, database_check, redis_check
from gatehouse_platform.jwks import JWKSVerifier
from gatehouse_platform.logging import configure_logging
from gatehouse_platform.outbox import OutboxRelay
from gatehouse_platform.system import system_router
from gatehouse_platform.tracing import configure_tracing


@dataclass
class Workers:
    """What runs beside the API in its process."""

    relay: OutboxRelay
    consumer: EventConsumer
    seats: SeatWorker  # orgs' Stripe quantities, runs with the Stripe event processor
    denylist: TokenDenylist  # its consumer and rebuilder


def bootstrap(settings: Settings) -> tuple[Services, Workers]:
    engine = make_engine(settings.database_url, pool_size=settings.database_pool_size)
    session_factory = make_session_factory(engine)
    stripe = stripe_gateway(settings)
    redis = Redis.from_url(settings.redis_url)
    # its own queue, so a slow Stripe call in the user-event consumer never delays a revocation
    denylist = token_denylist(settings, redis, consumer_name=settings.consumer_name)
    verifier = JWKSVerifier(
        settings.jwks_url, issuer=settings.issuer, audience=settings.audience, denylist=denylist.denylist
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
        denylist=denylist,
        seats=SeatWorker(session_factory, stripe, interval_seconds=settings.seat_sync_interval_seconds),
    )
    return services, workers


def create_app(
    settings: Settings | None = None, *, run_relay: bool = True, run_consumers: bool | None = None
) -> FastAPI:
    settings = settings or get_settings()
    configure_logging("billing-service", level=settings.log_level, json=settings.log_json)
    configure_tracing("billing-service")
    logging.getLogger("stripe").setLevel(logging.WARNING)  # the SDK logs every request at INFO
    services, workers = bootstrap(settings)
    consume = settings.consume_events if run_consumers is None else run_consumers
    running: list[Worker] = [workers.denylist.rebuilder]
    if run_relay:
        running.append(workers.relay)
    if settings.webhook_processor_enabled:
        running += [services.processor, workers.seats]
    if consume:
        running += [workers.denylist.consumer, workers.consumer]
    checks = {"database": database_check(services.engine), "redis": redis_check(services.redis)}
    reported = {"broker": broker_check(settings.amqp_url)}
    system = system_router(
        "/billing/admin/system",
        service="billing-service",
        admin=require_admin,
        checks=checks,
        reported=reported,
        engine=services.engine,
        consumers=[workers.consumer, workers.denylist.consumer],
        extra=partial(event_log_service.processing_state, services.session_factory),
    )
    return service_app(
        title="Gatehouse billing-service",
        description="Plans, Stripe Checkout subscriptions, payments; Stripe webhooks applied exactly once. "
        "Errors are RFC 9457 problem details.",
        services=services,
        lifespan=Lifespan(
            # after a Redis loss, the denylist is rebuilt before the first token check
            on_start=[workers.denylist.rebuilder.ensure_ready],
            workers=running,
            closers=[
                services.stripe.aclose,
                services.verifier.aclose,
                workers.denylist.http.aclose,
                services.redis.aclose,
                services.engine.dispose,
            ],
        ),
        checks=checks,
        reported_checks=reported,
        # the webhook endpoint first: Stripe's bursts are the hottest path, and a request is matched
        # against each route in turn until one fits
        routers=[
            webhooks_router,
            system,
            plans_router,
            coupons_router,
            subscriptions_router,
            orgs_router,
            payments_router,
            self_service_router,
            audit_router,
            event_log_router,
        ],
    )
