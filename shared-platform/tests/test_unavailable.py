"""A dependency that is down answers 503 problem+json with Retry-After and a stable type, never 500,
and the service recovers by itself when the dependency is back (issue 22: fault drills found 500s
while PostgreSQL restarted and while Redis was stopped)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aio_pika
import httpx
import pytest
from fastapi import APIRouter, FastAPI, Request
from prometheus_client import REGISTRY
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from gatehouse_platform.app import DbSession, Lifespan, service_app
from gatehouse_platform.db import make_engine, make_session_factory
from gatehouse_platform.tcp_proxy import TcpProxy
from gatehouse_platform.testing import eventually, free_port, serve_in_thread

UNAVAILABLE = "https://gatehouse.dev/problems/service-unavailable"


@dataclass
class Services:
    session_factory: async_sessionmaker[AsyncSession]


@pytest.fixture
async def database_link(database_url: str) -> AsyncIterator[tuple[TcpProxy, FastAPI]]:
    proxy = TcpProxy.before(database_url)
    await proxy.open()
    engine = make_engine(proxy.url(database_url), pool_size=2)
    router = APIRouter()

    @router.get("/now")
    async def now(db: DbSession) -> dict[str, str]:
        return {"now": str((await db.execute(text("SELECT now()"))).scalar_one())}

    app = service_app(
        title="probe",
        description="",
        services=Services(make_session_factory(engine)),
        lifespan=Lifespan(closers=[engine.dispose]),
        checks={},
        routers=[router],
    )
    yield proxy, app
    await proxy.close()
    await engine.dispose()


def client_of(app: FastAPI) -> httpx.AsyncClient:
    # raise_app_exceptions=False: see what a real client would get, even from the 500 handler
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://probe")


def assert_unavailable(response: httpx.Response, dependency: str) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["retry-after"]) >= 1
    body = response.json()
    assert body["type"] == UNAVAILABLE
    assert body["dependency"] == dependency


async def test_a_database_cut_mid_service_is_503_and_heals_without_restart(
    database_link: tuple[TcpProxy, FastAPI],
) -> None:
    proxy, app = database_link
    async with client_of(app) as client:
        assert (await client.get("/now")).status_code == 200  # a pooled connection exists
        await proxy.close()  # every open connection reset, new ones refused
        assert_unavailable(await client.get("/now"), "database")
        assert_unavailable(await client.get("/now"), "database")
        await proxy.open()
        assert (await client.get("/now")).status_code == 200


def redis_app(redis: Redis) -> FastAPI:
    router = APIRouter()

    @router.get("/ping")
    async def ping() -> dict[str, bool]:
        return {"pong": bool(await redis.ping())}

    return service_app(
        title="probe", description="", services=None, lifespan=Lifespan(), checks={}, routers=[router]
    )


async def test_redis_down_is_503() -> None:
    redis = Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=1)  # nothing listens
    try:
        async with client_of(redis_app(redis)) as client:
            assert_unavailable(await client.get("/ping"), "redis")
    finally:
        await redis.aclose()


async def test_broker_down_is_503() -> None:
    router = APIRouter()

    @router.post("/publish")
    async def publish() -> None:
        await aio_pika.connect(f"amqp://guest:guest@127.0.0.1:{free_port()}/", timeout=1)

    app = service_app(
        title="probe", description="", services=None, lifespan=Lifespan(), checks={}, routers=[router]
    )
    async with client_of(app) as client:
        assert_unavailable(await client.post("/publish"), "broker")


async def test_a_bug_is_still_a_500_with_no_details() -> None:
    router = APIRouter()

    @router.get("/bug")
    async def bug() -> None:
        raise KeyError("secret-ish internals")

    app = service_app(
        title="probe", description="", services=None, lifespan=Lifespan(), checks={}, routers=[router]
    )
    async with client_of(app) as client:
        response = await client.get("/bug")
    assert response.status_code == 500
    assert "secret-ish" not in response.text


async def test_a_client_that_leaves_mid_body_is_no_server_error() -> None:
    """A peer that sent part of its body and left (the half-closed connections of issue 22's
    SIGTERM drill): counted as 499, client closed request, never as a 500."""
    router = APIRouter()

    @router.post("/upload-then-leave")
    async def upload(request: Request) -> dict[str, int]:
        return {"size": len(await request.body())}

    app = service_app(
        title="probe", description="", services=None, lifespan=Lifespan(), checks={}, routers=[router]
    )

    def count(status: str) -> float:
        labels = {"method": "POST", "route": "/upload-then-leave", "status": status}
        return REGISTRY.get_sample_value("http_requests_total", labels) or 0.0

    with serve_in_thread(app) as base_url:
        _, writer = await asyncio.open_connection("127.0.0.1", int(base_url.rsplit(":", 1)[1]))
        writer.write(b"POST /upload-then-leave HTTP/1.1\r\nhost: probe\r\ncontent-length: 100000\r\n\r\n{")
        await writer.drain()
        writer.close()
        await eventually(lambda: count("499") == 1, "the request to be counted")
    assert count("500") == 0


async def _backend_alive(engine: AsyncEngine, pid: int) -> bool:
    async with engine.connect() as connection:
        query = text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid")
        return bool((await connection.execute(query, {"pid": pid})).scalar_one())


async def test_a_pooled_connection_killed_while_idle_is_replaced_unseen(database_url: str) -> None:
    """A connection idle longer than the threshold (0 s here) is pinged when checked out: one its
    server ended meanwhile is replaced before the statement runs, so the caller sees no error."""
    engine = make_engine(database_url, pool_size=1, ping_idle_seconds=0.0)
    killer = make_engine(database_url, pool_size=1)
    try:
        async with engine.connect() as connection:
            first = (await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        async with killer.connect() as connection:
            await connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})

        async def gone() -> bool:
            return not await _backend_alive(killer, first)

        await eventually(gone, "the pooled connection's backend to end")
        async with engine.connect() as connection:
            second = (await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        assert second != first
    finally:
        await engine.dispose()
        await killer.dispose()
