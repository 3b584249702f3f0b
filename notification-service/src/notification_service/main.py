"""The composition root: `bootstrap()` builds the process's services once, `create_app()` the API
(which runs the event consumers in its lifespan unless told not to)."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import FastAPI
from redis.asyncio import Redis

from gatehouse_contracts.events import UserErased
from gatehouse_platform.app import Lifespan, Worker, service_app
from gatehouse_platform.consumer import EventConsumer
from gatehouse_platform.db import make_engine, make_session_factory
from gatehouse_platform.denylist import TokenDenylist, token_denylist
from gatehouse_platform.http import broker_check, database_check, redis_check
from gatehouse_platform.jwks import JWKSVerifier
from gatehouse_platform.logging import configure_logging
from gatehouse_platform.system import system_router
from gatehouse_platform.tracing import configure_tracing
from notification_service.deliveries.dispatch import Dispatcher
from notification_service.deliveries.erasure import forget_erased_user
from notification_service.deliveries.router import router as deliveries_router
from notification_service.dependencies import Services, require_admin
from notification_service.email.links import Links
from notification_service.email.render import Renderer
from notification_service.email.smtp import SmtpSender
from notification_service.events.handlers import HANDLERS
from notification_service.previews.router import router as previews_router
from notification_service.settings import Settings, get_settings
from notification_service.unsubscribe.router import router as unsubscribe_router


@dataclass
class Workers:
    """What runs beside the API in its process, besides the email consumer: the token denylist."""

    denylist: TokenDenylist  # its consumer and rebuilder
    redis: Redis


def bootstrap(settings: Settings) -> tuple[Services, Workers]:
    engine = make_engine(settings.database_url, pool_size=settings.database_pool_size)
    session_factory = make_session_factory(engine)
    links = Links(settings)
    renderer = Renderer(settings, links)
    sender = SmtpSender(settings)
    dispatcher = Dispatcher(settings, session_factory, renderer, sender, links)
    consumer = EventConsumer(
        settings.amqp_url,
        exchange=settings.events_exchange,
        name=settings.consumer_name,
        handlers={
            **dict.fromkeys(HANDLERS, dispatcher.handle_event),
            UserErased.event_type: forget_erased_user,
        },
        session_factory=session_factory,
        prefetch=settings.consumer_prefetch,
        retry_delays=settings.consumer_retry_delays,
    )
    # Revoked sessions and deactivated users are refused before their tokens expire, as billing
    # and the gateway refuse them: the same denylist, fed by the same events (on a queue of its
    # own, so a slow SMTP server delaying the emails never delays a revocation).
    redis = Redis.from_url(settings.redis_url)
    denylist = token_denylist(settings, redis, consumer_name=settings.consumer_name)
    verifier = JWKSVerifier(
        settings.jwks_url, issuer=settings.issuer, audience=settings.audience, denylist=denylist.denylist
    )
    services = Services(
        settings=settings,
        engine=engine,
        session_factory=session_factory,
        links=links,
        renderer=renderer,
        sender=sender,
        dispatcher=dispatcher,
        consumer=consumer,
        verifier=verifier,
    )
    workers = Workers(denylist=denylist, redis=redis)
    return services, workers


def create_app(settings: Settings | None = None, *, run_consumer: bool = True) -> FastAPI:
    settings = settings or get_settings()
    configure_logging("notification-service", level=settings.log_level, json=settings.log_json)
    configure_tracing("notification-service")
    services, workers = bootstrap(settings)
    running: list[Worker] = [workers.denylist.rebuilder]
    if run_consumer:
        running += [workers.denylist.consumer, services.consumer]
    routers = [deliveries_router, unsubscribe_router]
    if settings.previews_available:
        routers.append(previews_router)
    checks = {"database": database_check(services.engine), "redis": redis_check(workers.redis)}
    # Both are ridden out by design (queued events, delivery retries): reported, never a 503.
    reported = {"broker": broker_check(settings.amqp_url), "smtp": services.sender.check}
    routers.append(
        system_router(
            "/notifications/admin/system",
            service="notification-service",
            admin=require_admin,
            checks=checks,
            reported=reported,
            consumers=[services.consumer, workers.denylist.consumer],
        )
    )
    return service_app(
        title="Gatehouse notification-service",
        description="Turns events into emails, each sent once. Errors are RFC 9457 problem details.",
        services=services,
        lifespan=Lifespan(
            # after a Redis loss, the denylist is rebuilt before the first token check
            on_start=[workers.denylist.rebuilder.ensure_ready],
            workers=running,
            closers=[
                services.sender.aclose,
                services.verifier.aclose,
                workers.denylist.http.aclose,
                workers.redis.aclose,
                services.engine.dispose,
            ],
        ),
        checks=checks,
        reported_checks=reported,
        routers=routers,
    )
