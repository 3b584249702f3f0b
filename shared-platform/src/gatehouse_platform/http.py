"""What every service's FastAPI app has: request ids, problem+json, /healthz, /readyz, /metrics."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, Any

import aio_pika
from asgi_correlation_id import CorrelationIdMiddleware
from fastapi import APIRouter, FastAPI, Query, Response
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gatehouse_contracts.problem import Problem
from gatehouse_platform.errors import install_exception_handlers
from gatehouse_platform.openapi import document_answers
from gatehouse_platform.tracing import instrument_app

log = logging.getLogger("gatehouse.http")

ReadinessCheck = Callable[[], Awaitable[object]]

HTTP_REQUESTS = Counter("http_requests_total", "HTTP requests", ["method", "route", "status"])
HTTP_LATENCY = Histogram(
    "http_request_duration_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
DEPENDENCY_UP = Gauge(
    "dependency_up", "1 when the dependency answered the last readiness check, else 0", ["dependency"]
)


class MetricsMiddleware:
    """Counts and times each request by its route template, and logs it (plain ASGI: no extra
    task or body buffering per request, which BaseHTTPMiddleware would add)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500  # what the client sees if the app fails before it answers

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            elapsed = time.perf_counter() - start
            method = scope["method"]
            HTTP_REQUESTS.labels(method, route, str(status)).inc()
            HTTP_LATENCY.labels(method, route).observe(elapsed)
            if route not in ("/healthz", "/metrics"):
                log.info(
                    "request",
                    extra={
                        "method": method,
                        "route": route,
                        "status": status,
                        "ms": round(elapsed * 1000, 2),
                    },
                )


def database_check(engine: AsyncEngine) -> ReadinessCheck:
    """Ready when the database answers a query."""

    async def check() -> None:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    return check


def broker_check(amqp_url: str) -> ReadinessCheck:
    """Ready when RabbitMQ accepts a connection."""

    async def check() -> None:
        connection = await aio_pika.connect(amqp_url, timeout=2)
        await connection.close()

    return check


def redis_check(redis: Redis) -> ReadinessCheck:
    """Ready when Redis answers PING."""

    async def check() -> None:
        await redis.ping()

    return check


async def run_checks(checks: Mapping[str, ReadinessCheck], each_within: float = 2.0) -> dict[str, str]:
    """Every check at once: name → `ok` or `fail: <error type>` (also the `dependency_up` gauge)."""

    async def run(name: str, check: ReadinessCheck) -> str:
        try:
            await asyncio.wait_for(check(), each_within)
        except Exception as exc:  # a failing dependency is reported, never raised
            DEPENDENCY_UP.labels(name).set(0)
            return f"fail: {type(exc).__name__}"
        DEPENDENCY_UP.labels(name).set(1)
        return "ok"

    results = await asyncio.gather(*(run(name, check) for name, check in checks.items()))
    return dict(zip(checks, results, strict=True))


def health_router(
    checks: Mapping[str, ReadinessCheck],
    *,
    reported: Mapping[str, ReadinessCheck] | None = None,
    timeout: float = 2.0,
) -> APIRouter:
    """`checks`: what the service's requests need (its database; Redis where every request uses
    it): one failing answers 503, and the orchestrator stops sending traffic. `reported`: what the
    service rides out by design (the broker behind the outbox and the queues, SMTP behind the
    delivery retries): shown by `/readyz?verbose` and the `dependency_up` gauge, never a 503 —
    taking every replica out of rotation during a broker outage would defeat the outbox."""
    reported = reported or {}
    router = APIRouter(tags=["health"])

    @router.get("/healthz", summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    async def run_all(selected: Mapping[str, ReadinessCheck]) -> dict[str, str]:
        return await run_checks(selected, timeout)

    @router.get(
        "/readyz", summary="What requests need answers", responses={503: {"description": "Not ready"}}
    )
    async def readyz(
        exclude: Annotated[
            list[str], Query(description="Checks to leave out (as kube-apiserver's /readyz?exclude=)")
        ] = [],  # noqa: B006 - FastAPI copies the default per request
        verbose: Annotated[
            bool, Query(description="Also check what the service rides out (broker, SMTP); never a 503")
        ] = False,
    ) -> JSONResponse:
        required = {name: check for name, check in checks.items() if name not in exclude}
        if verbose:
            status, others = await asyncio.gather(run_all(required), run_all(reported))
        else:
            status, others = await run_all(required), {}
        ok = all(result == "ok" for result in status.values())
        body: dict[str, Any] = {"status": "ok" if ok else "fail", "checks": status}
        if verbose:
            body["reported"] = others
        return JSONResponse(body, status_code=200 if ok else 503)

    @router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router


def valid_request_id(value: str) -> bool:
    """Accept callers' ids that are safe to log and echo (not only UUIDs)."""
    return re.fullmatch(r"[A-Za-z0-9._:\-]{1,128}", value) is not None


def problem_openapi(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """OpenAPI that says what we send: every operation's answers (`gatehouse_platform.openapi`),
    every error as application/problem+json with the Problem schema, 422 included (FastAPI would
    document its own validation body)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
        for name in ("HTTPValidationError", "ValidationError"):
            components.pop(name, None)
        document_answers(schema, app.routes)
        app.openapi_schema = schema
        return schema

    return openapi


def install_platform(
    app: FastAPI,
    checks: Mapping[str, ReadinessCheck],
    *,
    reported: Mapping[str, ReadinessCheck] | None = None,
) -> None:
    """Request ids (X-Request-ID in and out), server spans when tracing is on, metrics, problem+json
    handlers, health routes (`checks` decide readiness; `reported` are only reported, see
    `health_router`)."""
    app.openapi = problem_openapi(app)  # type: ignore[method-assign]
    install_exception_handlers(app)
    instrument_app(app)  # server spans, when tracing is on
    app.add_middleware(MetricsMiddleware)
    app.add_middleware(
        CorrelationIdMiddleware,
        header_name="X-Request-ID",
        update_request_header=True,
        validator=valid_request_id,
    )
    app.include_router(health_router(checks, reported=reported))
