"""The composition root of the gateway process: `create_app()`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from starlette.types import Receive, Scope, Send

from gatehouse_platform.app import stop_seconds, stop_within
from gatehouse_platform.clientip import TrustedProxies
from gatehouse_platform.consumer import EventConsumer
from gatehouse_platform.http import ReadinessCheck, install_platform, redis_check
from gatehouse_platform.logging import configure_logging
from gatehouse_platform.tracing import configure_tracing
from gateway.api_keys import ApiKeys
from gateway.auth import EdgeAuth, make_consumer, make_denylist, make_rebuilder
from gateway.cors import CorsPolicy
from gateway.edge import Edge
from gateway.openapi import OpenAPIAggregator, openapi_router
from gateway.proxy import Upstream
from gateway.ratelimits import RateLimits
from gateway.routing import RouteTable
from gateway.settings import Settings, get_settings
from gateway.tracing import EdgeSpans
from gateway.transport.redis import RedisLane

log = logging.getLogger(__name__)

CONSUMER_FIRST_START_TIMEOUT = 5.0  # seconds; after that the consumer keeps trying in the background
REVOCATIONS_TIMEOUT_SECONDS = 2.0  # fetching the revocation list from auth-service


class UpstreamNotReady(Exception):
    pass


def _upstream_ready(upstream: Upstream) -> ReadinessCheck:
    async def check() -> None:
        path = upstream.config.readyz_path
        if path is None:
            return
        status, _ = await upstream.get(path, within=1.5)
        if status != 200:
            raise UpstreamNotReady(status)

    return check


async def _keep_starting(consumer: EventConsumer) -> None:
    """Start the consumer, retrying while RabbitMQ is unreachable. Until it runs, revocations
    reach this gateway only through other replicas (the denylist is shared) or not at all, so
    access tokens stay usable at the edge for at most their lifetime; services still refuse them."""
    delay = 1.0
    while True:
        try:
            await consumer.start()
            return
        except Exception as exc:
            log.warning("event consumer not started; retrying", extra={"error": type(exc).__name__})
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)


class GatewayApp(FastAPI):
    """FastAPI serving the gateway's own routes, behind the edge that proxies everything else."""

    edge: Edge

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self.edge.handle(scope, receive, send, super().__call__)
        else:
            await super().__call__(scope, receive, send)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging("gateway", level=settings.log_level, json=settings.log_json)
    traced = configure_tracing("gateway")
    # Redis sits on the path of every request (through the lane; this client writes the denylist,
    # reloads the rate-limit script and answers readiness): when it is down, fail in well under a
    # second (rate limits then let requests through, the denylist refuses with 503), not after
    # redis-py's default retries with seconds of back-off.
    redis = Redis.from_url(
        settings.redis_url,
        socket_connect_timeout=settings.redis_timeout_seconds,
        socket_timeout=settings.redis_timeout_seconds,
        retry=Retry(NoBackoff(), 1),
    )
    lane = RedisLane(settings.redis_url, timeout=settings.redis_timeout_seconds)
    table = RouteTable(settings)  # with rate limits switched off, no route has a rule
    upstreams = {name: Upstream(name, config) for name, config in settings.upstreams.items()}
    denylist = make_denylist(settings, redis)
    auth = EdgeAuth(settings, denylist)
    http = httpx.AsyncClient(timeout=REVOCATIONS_TIMEOUT_SECONDS)
    keys = ApiKeys(settings, auth.verifier, http)
    consumer = make_consumer(settings, denylist, keys) if settings.consume_events else None
    rebuilder = make_rebuilder(settings, denylist, http)
    edge = Edge(
        settings=settings,
        table=table,
        upstreams=upstreams,
        auth=auth,
        keys=keys,
        limits=RateLimits(redis, lane, prefix=settings.redis_key_prefix),
        lane=lane,
        cors=CorsPolicy(settings),
        proxies=TrustedProxies(settings.trusted_proxies),
        spans=EdgeSpans() if traced else None,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await rebuilder.ensure_ready()  # after a Redis loss, before the first token check
        await rebuilder.start()
        starting: asyncio.Task[None] | None = None
        if consumer is not None:
            starting = asyncio.ensure_future(_keep_starting(consumer))
            # Usually up at once; a broker outage must not keep the gateway from serving.
            await asyncio.wait({starting}, timeout=CONSUMER_FIRST_START_TIMEOUT)
        try:
            yield
        finally:

            async def drain() -> None:  # the server has stopped accepting: let requests finish
                await edge.drain(settings.shutdown_grace_seconds)

            async def stop_consuming() -> None:
                if starting is not None:
                    starting.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await starting
                if consumer is not None:
                    await consumer.stop()

            async def close_upstreams() -> None:
                for upstream in upstreams.values():
                    await upstream.aclose()

            # Each step has a deadline (a vanished broker must not hold the process: issue 22).
            steps = [drain, stop_consuming, rebuilder.stop, close_upstreams, auth.aclose, http.aclose]
            await stop_within(stop_seconds(), [*steps, lane.aclose, redis.aclose])

    app = GatewayApp(
        title="Gatehouse gateway",
        version="0.1.0",
        description="The one front door: routing, edge token checks, rate limits, CORS.",
        lifespan=lifespan,
        openapi_url=None,  # /openapi.json is the aggregated document of every service
        docs_url=None,
        redoc_url=None,
    )
    app.edge = edge

    checks: dict[str, ReadinessCheck] = {"redis": redis_check(redis)}
    checks.update({name: _upstream_ready(upstream) for name, upstream in upstreams.items()})
    install_platform(app, checks)
    app.include_router(openapi_router(OpenAPIAggregator(settings, upstreams, table)))
    return app
