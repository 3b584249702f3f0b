"""The composition root of the API process: `create_app()`, whose lifespan runs the outbox relay and
the event consumer (billing's seat limits)."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from auth_service.accounts.breaches import BreachedPasswords
from auth_service.accounts.router import router as accounts_router
from auth_service.admin.router import router as admin_router
from auth_service.api_keys.router import router as api_keys_router
from auth_service.audit.router import router as audit_router
from auth_service.captcha import Captcha
from auth_service.clock import Clock
from auth_service.dependencies import Services, admin_principal
from auth_service.events.handlers import HANDLERS
from auth_service.export.router import router as export_router
from auth_service.geoip import Places
from auth_service.keys.router import router as keys_router
from auth_service.keys.service import KeyRing
from auth_service.mfa.router import router as mfa_router
from auth_service.mfa.totp import TotpSeeds
from auth_service.oauth.providers import configured_providers
from auth_service.oauth.router import router as oauth_router
from auth_service.oauth.state import StateCookies
from auth_service.orgs.router import router as orgs_router
from auth_service.passkeys.challenges import Challenges
from auth_service.passkeys.router import router as passkeys_router
from auth_service.passkeys.webauthn import WebAuthn
from auth_service.security import PasswordHasher
from auth_service.sessions.router import router as sessions_router
from auth_service.settings import Settings, get_settings
from auth_service.throttle import Throttle
from gatehouse_platform.app import Lifespan, Worker, service_app
from gatehouse_platform.clientip import TrustedProxies
from gatehouse_platform.consumer import EventConsumer
from gatehouse_platform.db import make_engine, make_session_factory
from gatehouse_platform.http import broker_check, database_check, redis_check
from gatehouse_platform.logging import configure_logging
from gatehouse_platform.outbox import OutboxRelay
from gatehouse_platform.system import system_router
from gatehouse_platform.tracing import configure_tracing


def event_consumer(settings: Settings, session_factory: async_sessionmaker[AsyncSession]) -> EventConsumer:
    """The consumer of the events auth-service takes (`events/handlers.py`), on its own queue."""
    return EventConsumer(
        settings.amqp_url,
        exchange=settings.events_exchange,
        name=settings.consumer_name,
        handlers=dict(HANDLERS),
        session_factory=session_factory,
        prefetch=settings.consumer_prefetch,
        retry_delays=settings.consumer_retry_delays,
    )


def create_app(
    settings: Settings | None = None,
    *,
    run_relay: bool = True,
    run_consumers: bool | None = None,
    clock: Clock | None = None,
) -> FastAPI:
    settings = settings or get_settings()
    configure_logging("auth-service", level=settings.log_level, json=settings.log_json)
    configure_tracing("auth-service")
    engine = make_engine(settings.database_url, pool_size=settings.database_pool_size)
    session_factory = make_session_factory(engine)
    redis = Redis.from_url(settings.redis_url)
    http = httpx.AsyncClient(timeout=settings.oauth_http_timeout_seconds, follow_redirects=False)
    throttle = Throttle(settings, redis)
    services = Services(
        settings=settings,
        engine=engine,
        session_factory=session_factory,
        keyring=KeyRing(settings, session_factory),
        hasher=PasswordHasher(settings),
        breaches=BreachedPasswords(settings),
        redis=redis,
        throttle=throttle,
        captcha=Captcha(settings, throttle),
        http=http,
        providers=configured_providers(settings, http),
        state_cookies=StateCookies(settings, redis),
        totp_seeds=TotpSeeds(settings),
        webauthn=WebAuthn(settings),
        challenges=Challenges(settings, redis),
        clock=clock or Clock(),
        proxies=TrustedProxies(settings.trusted_proxies),
        places=Places(settings.geoip_database),
    )
    workers: list[Worker] = []
    if run_relay:
        workers.append(OutboxRelay(engine, settings.amqp_url, exchange=settings.events_exchange))
    consumers: list[EventConsumer] = []
    if settings.consume_events if run_consumers is None else run_consumers:
        consumers.append(event_consumer(settings, session_factory))
    checks = {"database": database_check(engine), "redis": redis_check(redis)}
    reported = {"broker": broker_check(settings.amqp_url)}
    system = system_router(
        "/auth/admin/system",
        service="auth-service",
        admin=admin_principal,
        checks=checks,
        reported=reported,
        engine=engine,
        consumers=consumers,
    )
    return service_app(
        title="Gatehouse auth-service",
        description="Accounts, sessions and tokens. Errors are RFC 9457 problem details.",
        services=services,
        lifespan=Lifespan(
            # the key ring creates the first signing key on a fresh database
            on_start=[services.keyring.current],
            workers=[*workers, *consumers],
            closers=[
                http.aclose,
                services.breaches.aclose,
                services.captcha.aclose,
                redis.aclose,
                engine.dispose,
                services.hasher.close,
                services.places.close,
            ],
        ),
        checks=checks,
        reported_checks=reported,
        routers=[
            system,
            accounts_router,
            export_router,
            sessions_router,
            mfa_router,
            passkeys_router,
            oauth_router,
            admin_router,
            audit_router,
            orgs_router,
            keys_router,
            api_keys_router,
        ],
    )
