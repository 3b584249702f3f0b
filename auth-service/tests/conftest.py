"""auth-service tests: the real app (ASGI) on a real Postgres database migrated with Alembic, a
RabbitMQ vhost of this run's own, and Redis under a key prefix of this run's own."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from http.cookiejar import CookieJar, DefaultCookiePolicy
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic.config import Config
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from auth_service.accounts.repository import UserRepository
from auth_service.accounts.schemas import UserOut
from auth_service.clock import Clock
from auth_service.main import create_app
from auth_service.settings import Settings
from gatehouse_emulators.oauth import create_app as create_oauth_emulator
from gatehouse_emulators.pwned import create_app as create_pwned_emulator
from gatehouse_platform import testing
from gatehouse_platform.pytest_plugin import EventTap, open_event_tap
from gatehouse_platform.testing import serve_in_thread

SERVICE_ROOT = Path(__file__).resolve().parents[1]
RUN = testing.unique_name(f"gh_auth_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}")
PASSWORD = "correct horse battery staple"
APP_ORIGIN = "https://app.example.com"  # the frontend a sign-in may return to


def alembic_config(url: str) -> Config:
    return testing.alembic_config(SERVICE_ROOT, url)


@pytest.fixture(scope="session")
def run_name() -> str:
    return RUN


@pytest.fixture(scope="session")
def service_root() -> Path:
    return SERVICE_ROOT


@pytest.fixture(scope="session")
def oauth_emulator() -> Iterator[str]:
    """emulators/oauth over real HTTP: Google- and GitHub-like providers."""
    with serve_in_thread(create_oauth_emulator()) as base_url:
        yield base_url


@pytest.fixture(scope="session")
def pwned_emulator() -> Iterator[str]:
    """emulators/pwned over real HTTP: Have I Been Pwned's Pwned Passwords range API."""
    with serve_in_thread(create_pwned_emulator()) as base_url:
        yield base_url


def pwned_settings(emulator_url: str) -> dict[str, Any]:
    """The breached-password check on, as in production, against the stand-in."""
    return {
        "pwned_passwords_check": True,
        "pwned_passwords_url": emulator_url,
        "pwned_passwords_timeout_seconds": 2.0,
    }


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
def settings(database_url: str, amqp_url: str, oauth_emulator: str, pwned_emulator: str) -> Settings:
    return make_settings(
        database_url, amqp_url, **oauth_settings(oauth_emulator), **pwned_settings(pwned_emulator)
    )


class MovableClock(Clock):
    """The app's clock, which a test may move (TOTP time-steps, how recent a sign-in is)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.time() + self.offset


@pytest.fixture(scope="session")
def app_clock() -> MovableClock:
    return MovableClock()


@pytest.fixture
def clock(app_clock: MovableClock) -> Iterator[MovableClock]:
    """The app's clock for one test, back to real time after it."""
    yield app_clock
    app_clock.offset = 0.0


@pytest.fixture(scope="session")
async def app(settings: Settings, app_clock: MovableClock) -> AsyncIterator[FastAPI]:
    app = create_app(settings, clock=app_clock)
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
async def events(amqp_url: str, settings: Settings) -> AsyncIterator[EventTap]:
    async with open_event_tap(amqp_url, f"{RUN}.tap", exchange=settings.events_exchange) as tap:
        yield tap


def new_email() -> str:
    return f"user-{uuid.uuid4().hex[:12]}@example.com"


def new_username() -> str:
    return f"u{uuid.uuid4().hex[:12]}"


_accounts: list[async_sessionmaker[AsyncSession]] = []


@pytest.fixture(scope="session", autouse=True)
def _accounts_db(db: async_sessionmaker[AsyncSession]) -> None:
    """Where `register` reads the account it made (the endpoint answers alike for every address)."""
    _accounts[:] = [db]


async def account(email: str) -> dict[str, Any]:
    """The account with this address, as `GET /auth/me` shows it."""
    async with _accounts[0]() as session:
        user = await UserRepository(session).by_email(email)
        assert user is not None, email
        return UserOut.of(user).model_dump(mode="json")


async def sign_up(client: httpx.AsyncClient, email: str | None = None, password: str = PASSWORD) -> str:
    """Registers through the API (any app, any database); the address registered."""
    email = email or new_email()
    response = await client.post(
        "/auth/register", json={"email": email, "username": new_username(), "password": password}
    )
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "verification_sent"
    return email


async def register(
    client: httpx.AsyncClient, email: str | None = None, password: str = PASSWORD
) -> dict[str, Any]:
    """`sign_up` on the session's app, and the account it made."""
    return await account(await sign_up(client, email, password))


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
