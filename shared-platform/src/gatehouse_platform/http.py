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
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gatehouse_contracts.problem import Problem
from gatehouse_platform.errors import install_exception_handlers

log = logging.getLogger("gatehouse.http")

ReadinessCheck = Callable[[], Awaitable[object]]

HTTP_REQUESTS = Counter("http_requests_total", "HTTP requests", ["method", "route", "status"])
HTTP_LATENCY = Histogram(
    "http_request_duration_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
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


def health_router(checks: Mapping[str, ReadinessCheck], *, timeout: float = 2.0) -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/healthz", summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz", summary="Hard dependencies answer", responses={503: {"description": "Not ready"}})
    async def readyz(
        exclude: Annotated[
            list[str], Query(description="Checks to leave out (as kube-apiserver's /readyz?exclude=)")
        ] = [],  # noqa: B006 - FastAPI copies the default per request
    ) -> JSONResponse:
        async def run(check: ReadinessCheck) -> str:
            try:
                await asyncio.wait_for(check(), timeout)
            except Exception as exc:  # a failing dependency is reported, never raised
                return f"fail: {type(exc).__name__}"
            return "ok"

        names = [name for name in checks if name not in exclude]
        results = await asyncio.gather(*(run(checks[n]) for n in names))
        status = dict(zip(names, results, strict=True))
        ok = all(r == "ok" for r in results)
        return JSONResponse(
            {"status": "ok" if ok else "fail", "checks": status}, status_code=200 if ok else 503
        )

    @router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router


def valid_request_id(value: str) -> bool:
    """Accept callers' ids that are safe to log and echo (not only UUIDs)."""
    return re.fullmatch(r"[A-Za-z0-9._:\-]{1,128}", value) is not None


def problem_openapi(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """OpenAPI that says what we send: every error as application/problem+json with the Problem
    schema, 422 included (FastAPI would document its own validation body)."""

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
        problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
        for path_item in schema.get("paths", {}).values():
            for operation in path_item.values():
                for status, response in operation.get("responses", {}).items():
                    if status.startswith(("4", "5")):
                        response["content"] = problem
                        if status == "422":
                            response["description"] = (
                                "Validation failed: `errors` maps each field to a message"
                            )
        app.openapi_schema = schema
        return schema

    return openapi


def install_platform(app: FastAPI, checks: Mapping[str, ReadinessCheck]) -> None:
    """Request ids (X-Request-ID in and out), metrics, problem+json handlers, health routes."""
    app.openapi = problem_openapi(app)  # type: ignore[method-assign]
    install_exception_handlers(app)
    app.add_middleware(MetricsMiddleware)
    app.add_middleware(
        CorrelationIdMiddleware,
        header_name="X-Request-ID",
        update_request_header=True,
        validator=valid_request_id,
    )
    app.include_router(health_router(checks))
