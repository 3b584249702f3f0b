"""gateway tests: the real gateway app in front of a real auth-service (its own Postgres database
migrated with Alembic, a RabbitMQ vhost of this run's own, Redis under a key prefix of this run's
own) and of small purpose-built upstreams (an echo server that records what reached it)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from http.cookiejar import CookieJar, DefaultCookiePolicy
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvloop
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from auth_service.main import create_app as create_auth_app
from auth_service.settings import Settings as AuthSettings
from gatehouse_platform import testing
from gatehouse_platform.testing import free_port, serve_in_thread
from gateway.main import create_app
from gateway.settings import Settings

RUN = testing.unique_name(f"gh_gateway_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}")
AUTH_SERVICE_ROOT = Path(__file__).resolve().parents[2] / "auth-service"
PASSWORD = "correct horse battery staple"
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
CHUNK = bytes(range(256)) * 256  # 64 KiB of a known pattern: streamed bodies are N of these


@pytest.fixture(scope="session", autouse=True)
async def redis_keys_removed_afterwards() -> AsyncIterator[None]:
    """Every key of this run (they would expire anyway) goes when the run ends."""
    yield
    redis = Redis.from_url("redis://127.0.0.1:6379/0")
    keys = [key async for key in redis.scan_iter(f"{RUN}:*", count=1000)]
    if keys:
        await redis.delete(*keys)
    await redis.aclose()


# --- a real auth-service -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def run_name() -> str:
    return RUN


@pytest.fixture(scope="session")
def service_root() -> Path:
    """The database of this run is the real auth-service's, migrated with its own Alembic."""
    return AUTH_SERVICE_ROOT


def auth_settings(database_url: str, amqp_url: str) -> AuthSettings:
    return AuthSettings(
        environment="test",
        database_url=database_url,
        amqp_url=amqp_url,
        redis_key_prefix=f"{RUN}:auth",
        log_json=False,
        argon2_time_cost=1,  # tests may lower Argon2's cost; production and benchmarks do not
        argon2_memory_kib=256,
        credential_ip_limit="10000/minute",
        request_ip_limit="10000/minute",
        credential_account_limit="1000/minute",
        request_account_limit="1000/minute",
        failures_before_backoff=1000,
    )


@pytest.fixture(scope="session")
def auth_service(database_url: str, amqp_url: str) -> Iterator[str]:
    """auth-service over real HTTP, with its outbox relay publishing to this run's vhost."""
    with serve_in_thread(create_auth_app(auth_settings(database_url, amqp_url))) as base_url:
        yield base_url


# --- a purpose-built upstream ----------------------------------------------------------------------


@dataclass
class Seen:
    method: str
    path: str
    headers: list[tuple[str, str]]
    body_size: int
    body_sha256: str

    def header(self, name: str) -> str | None:
        values = [v for k, v in self.headers if k == name.lower()]
        return ", ".join(values) if values else None


@dataclass
class Echo:
    """An upstream that records every request that reached it and answers with what it saw.

    `…/sleep?seconds=S` answers after S seconds; `…/download?chunks=N` streams N × 64 KiB;
    `…/hop` answers with hop-by-hop headers a proxy must drop; anything else echoes.
    """

    url: str = ""
    seen: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    downloads: dict[str, int] = field(default_factory=dict)  # request id → chunks sent, once ended

    def requests_with(self, request_id: str) -> list[Seen]:
        with self.lock:
            return [s for s in self.seen if s.header("x-request-id") == request_id]

    def app(self) -> Starlette:
        async def anything(request: Request) -> Response:
            digest, size = hashlib.sha256(), 0
            async for chunk in request.stream():
                digest.update(chunk)
                size += len(chunk)
            seen = Seen(
                request.method,
                request.url.path,
                [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw],
                size,
                digest.hexdigest(),
            )
            with self.lock:
                self.seen.append(seen)
            path = request.url.path
            if path.endswith("/sleep"):
                await asyncio.sleep(float(request.query_params.get("seconds", "1")))
            if path.endswith("/download"):
                chunks = int(request.query_params.get("chunks", "1"))
                request_id = request.headers.get("x-request-id", "")

                async def stream() -> AsyncIterator[bytes]:
                    sent = 0
                    try:
                        for _ in range(chunks):
                            yield CHUNK
                            sent += 1
                            await asyncio.sleep(0)  # let Starlette notice a disconnect
                    finally:  # also when the server stops it because the client went away
                        self.downloads[request_id] = sent

                return StreamingResponse(stream(), media_type="application/octet-stream")
            if path.endswith("/hop"):
                return Response(
                    b"hop",
                    headers={
                        "Connection": "X-Hop-Named",
                        "X-Hop-Named": "1",
                        "Keep-Alive": "timeout=5",
                        "Proxy-Authenticate": "Basic",
                        "Trailer": "X-Checksum",
                        "X-Kept": "yes",
                        "Server": "echo",
                    },
                )
            status = int(request.query_params.get("status", "200"))
            return JSONResponse(
                {
                    "method": seen.method,
                    "path": seen.path,
                    "headers": seen.headers,
                    "body_size": size,
                    "body_sha256": seen.body_sha256,
                },
                status_code=status,
            )

        return Starlette(routes=[Route("/{path:path}", anything, methods=ALL_METHODS)])


@pytest.fixture(scope="session")
def echo() -> Iterator[Echo]:
    upstream = Echo()
    with serve_in_thread(upstream.app()) as base_url:
        upstream.url = base_url
        yield upstream


# --- the gateway -------------------------------------------------------------------------------------


def dead_url() -> str:
    """A loopback URL nothing listens on."""
    return f"http://127.0.0.1:{free_port()}"


def upstream(url: str, *prefixes: str, **overrides: Any) -> dict[str, Any]:
    return {"url": url, "prefixes": list(prefixes), **overrides}


def gateway_settings(*, amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/", **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "environment": "test",
        "log_json": False,
        "amqp_url": amqp_url,
        "redis_key_prefix": f"{RUN}:{uuid.uuid4().hex[:8]}",
        "consume_events": False,
        "consumer_name": f"gateway-{uuid.uuid4().hex[:8]}",
    }
    values.update(overrides)
    return Settings(**values)


@asynccontextmanager
async def asgi_gateway(
    settings: Settings, *, client: tuple[str, int] = ("127.0.0.1", 50000)
) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway app in this process, driven through ASGI as if from the peer `client`."""
    app = create_app(settings)
    async with (
        LifespanManager(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=client),
            base_url="http://gateway.test",
            cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
        ) as http,
    ):
        yield http


@asynccontextmanager
async def http_gateway(settings: Settings) -> AsyncIterator[tuple[FastAPI, str]]:
    """The gateway served over real HTTP (uvicorn in a thread); yields the app and its URL."""
    app = create_app(settings)
    server = serve_in_thread(app)
    url = await asyncio.to_thread(server.__enter__)
    try:
        yield app, url
    finally:
        await asyncio.to_thread(server.__exit__, None, None, None)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def new_email() -> str:
    return f"user-{uuid.uuid4().hex[:12]}@example.com"


async def sign_up(http: httpx.AsyncClient) -> tuple[dict[str, Any], dict[str, Any]]:
    """Register and log in through `http`; returns the user and the token response."""
    email = new_email()
    registered = await http.post(
        "/auth/register", json={"email": email, "username": f"u{uuid.uuid4().hex[:12]}", "password": PASSWORD}
    )
    assert registered.status_code == 202, registered.text  # alike for every address: no account in it
    tokens = await http.post("/auth/login", json={"email": email, "password": PASSWORD})
    assert tokens.status_code == 200, tokens.text
    me = await http.get("/auth/me", headers=bearer(tokens.json()["access_token"]))
    assert me.status_code == 200, me.text
    return dict(me.json()), dict(tokens.json())


def on_uvloop(case: Callable[..., Awaitable[None]], *args: object) -> None:
    """Run `case` on uvloop, the loop the gateway serves on (its transports differ from asyncio's:
    they are not asyncio.Transport subclasses, and they read in other sizes), in a thread of its
    own so that the test session's loop is left alone."""

    def run() -> None:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(case(*args))

    with ThreadPoolExecutor(1) as thread:
        thread.submit(run).result(timeout=60)
