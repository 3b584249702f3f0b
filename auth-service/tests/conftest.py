"""auth-service tests: the real app (ASGI) on a real Postgres database migrated with Alembic, a
RabbitMQ vhost of this run's own, and Redis under a key prefix of this run's own."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from http.cookiejar import CookieJar, DefaultCookiePolicy
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import jsonschema
import pytest
from alembic.config import Config
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from auth_service.main import create_app
from auth_service.settings import Settings
from gatehouse_contracts.export import SCHEMAS_DIR
from gatehouse_emulators.oauth import create_app as create_oauth_emulator
from gatehouse_emulators.serving import serve_in_thread
from gatehouse_platform import testing
from gatehouse_platform.db import make_engine, make_session_factory

SERVICE_ROOT = Path(__file__).resolve().parents[1]
RUN = testing.unique_name(f"gh_auth_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}")
PASSWORD = "correct horse battery staple"
APP_ORIGIN = "https://app.example.com"  # the frontend a sign-in may return to


def alembic_config(url: str) -> Config:
    return testing.alembic_config(SERVICE_ROOT, url)


@pytest.fixture(scope="session")
def amqp_url() -> Iterator[str]:
    with testing.rabbitmq_vhost(RUN) as url:
        yield url


@pytest.fixture(scope="session")
async def database_url() -> AsyncIterator[str]:
    url = await testing.create_database(RUN)
    try:
        await testing.migrate(SERVICE_ROOT, url)
        yield url
    finally:
        await testing.drop_database(RUN)


@pytest.fixture(scope="session")
def oauth_emulator() -> Iterator[str]:
    """emulators/oauth over real HTTP: Google- and GitHub-like providers."""
    with serve_in_thread(create_oauth_emulator()) as base_url:
        yield base_url


def oauth_settings(emulator_url: str) -> dict[str, Any]:
    return {
        "google_client_id": "gatehouse-google-client",
        "google_client_secret": "gatehouse-google-secret",
        "google_discovery_url": f"{emulator_url}/google/.well-known/openid-configuration",
        "github_client_id": "gatehouse-github-client",
        "github_client_secret": "gatehouse-github-secret",
        "github_authorize_url": f"{emulator_url}/github/login/oauth/authorize",
        "github_token_url": f"{emulator_url}/github/login/oauth/access_token",
        "github_api_url": f"{emulator_url}/github/api",
        "oauth_redirect_allowlist": [APP_ORIGIN + "/"],
    }


def make_settings(database_url: str, amqp_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "environment": "test",
        "database_url": database_url,
        "amqp_url": amqp_url,
        "redis_key_prefix": f"{RUN}:{uuid.uuid4().hex[:6]}",
        "log_json": False,
        # Tests may lower Argon2's cost (a setting); benchmarks and production use the real one.
        "argon2_time_cost": 1,
        "argon2_memory_kib": 256,
        "credential_ip_limit": "10000/minute",
        "request_ip_limit": "10000/minute",
        "credential_account_limit": "1000/minute",
        "request_account_limit": "1000/minute",
        "failures_before_backoff": 1000,  # the back-off has its own tests
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture(scope="session")
def settings(database_url: str, amqp_url: str, oauth_emulator: str) -> Settings:
    return make_settings(database_url, amqp_url, **oauth_settings(oauth_emulator))


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    app = create_app(settings)
    async with LifespanManager(app):
        yield app


@pytest.fixture(scope="session")
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An API client: it keeps no cookies, so a refresh cookie from one test never lends another
    a session. Browser behaviour is tested with a client of its own."""
    no_cookies = CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://auth.test", cookies=no_cookies
    ) as client:
        yield client


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(database_url, pool_size=2)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
def db(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """For tests to read rows directly."""
    return make_session_factory(engine)


class EventTap:
    """A queue bound to every event of this run's vhost: tests read what was published."""

    def __init__(self, queue: aio_pika.abc.AbstractQueue) -> None:
        self.queue = queue
        self.seen: list[dict[str, Any]] = []

    async def wait_for(
        self, event_type: str, where: Callable[[dict[str, Any]], bool] = lambda e: True, timeout: float = 10.0
    ) -> dict[str, Any]:
        """The first event of the type matching `where`, validated against its exported schema."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for event in self.seen:
                if event["type"] == event_type and where(event):
                    validate_event(event)
                    return event
            if loop.time() > deadline:
                raise AssertionError(f"no {event_type} event arrived; saw {[e['type'] for e in self.seen]}")
            message = await self.queue.get(fail=False, no_ack=True)
            if message is None:
                await asyncio.sleep(0.05)
            else:
                body = json.loads(message.body)
                assert message.routing_key == body["type"]
                assert message.message_id == body["id"]
                self.seen.append(body)

    async def all_of(
        self, event_type: str, where: Callable[[dict[str, Any]], bool], settle: float = 1.0
    ) -> list[dict[str, Any]]:
        """Every event of the type matching `where` seen within `settle` seconds."""
        await asyncio.sleep(settle)
        while (message := await self.queue.get(fail=False, no_ack=True)) is not None:
            self.seen.append(json.loads(message.body))
        return [e for e in self.seen if e["type"] == event_type and where(e)]


def validate_event(event: dict[str, Any]) -> None:
    schema = json.loads((SCHEMAS_DIR / f"{event['type']}.v1.json").read_text())
    jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker()).validate(event)


@pytest.fixture(scope="session")
async def events(amqp_url: str, settings: Settings) -> AsyncIterator[EventTap]:
    connection = await aio_pika.connect_robust(amqp_url)
    channel = await connection.channel()
    exchange = await channel.declare_exchange(
        settings.events_exchange, aio_pika.ExchangeType.TOPIC, durable=True
    )
    queue = await channel.declare_queue(f"{RUN}.tap", exclusive=True)
    await queue.bind(exchange, "#")
    yield EventTap(queue)
    await connection.close()


def new_email() -> str:
    return f"user-{uuid.uuid4().hex[:12]}@example.com"


def new_username() -> str:
    return f"u{uuid.uuid4().hex[:12]}"


async def register(
    client: httpx.AsyncClient, email: str | None = None, password: str = PASSWORD
) -> dict[str, Any]:
    response = await client.post(
        "/auth/register",
        json={"email": email or new_email(), "username": new_username(), "password": password},
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def login(
    client: httpx.AsyncClient, email: str, password: str = PASSWORD, **headers: str
) -> dict[str, Any]:
    response = await client.post("/auth/login", json={"email": email, "password": password}, headers=headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post("/auth/refresh-token", json={"refresh_token": token})


async def assert_signed_out(client: httpx.AsyncClient, tokens: dict[str, Any]) -> None:
    """Neither the session's access token nor its refresh token works any more."""
    assert (await client.get("/auth/me", headers=bearer(tokens))).status_code == 401
    assert (await refresh(client, tokens["refresh_token"])).status_code == 401


def bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def signed_up(client: httpx.AsyncClient) -> tuple[dict[str, Any], dict[str, Any]]:
    """A registered user and a fresh session of theirs."""
    user = await register(client)
    return user, await login(client, user["email"])
