"""Throttling runs on its own app with tight limits (the shared test app has them loosened)."""

from collections.abc import AsyncIterator

import httpx
import pytest
from asgi_lifespan import LifespanManager

from auth_service.main import create_app
from conftest import PASSWORD, make_settings, new_email, register


@pytest.fixture
async def strict_client(database_url: str, amqp_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(
        database_url,
        amqp_url,
        credential_ip_limit="8/minute",
        credential_account_limit="100/minute",
        request_ip_limit="100/minute",
        request_account_limit="2/minute",
        failures_before_backoff=3,
    )
    app = create_app(settings, run_relay=False)
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://auth.test") as client,
    ):
        yield client


async def test_repeated_failures_slow_the_account_down_with_retry_after(
    strict_client: httpx.AsyncClient,
) -> None:
    user = await register(strict_client)
    for _ in range(3):
        response = await strict_client.post(
            "/auth/login", json={"email": user["email"], "password": "wrong password!"}
        )
        assert response.status_code == 401
    # Past three failures each attempt waits 2^n seconds: even the right password must wait.
    await strict_client.post("/auth/login", json={"email": user["email"], "password": "wrong password!"})
    blocked = await strict_client.post("/auth/login", json={"email": user["email"], "password": PASSWORD})
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) >= 1
    assert blocked.headers["content-type"] == "application/problem+json"


async def test_per_ip_limit_covers_every_account(strict_client: httpx.AsyncClient) -> None:
    statuses = [
        (
            await strict_client.post("/auth/login", json={"email": new_email(), "password": "whatever it is"})
        ).status_code
        for _ in range(10)
    ]
    assert statuses[:8] == [401] * 8
    assert statuses[8:] == [429, 429]


async def test_email_sending_requests_are_limited_per_address(strict_client: httpx.AsyncClient) -> None:
    email = new_email()
    statuses = [
        (await strict_client.post("/auth/forget-password", json={"email": email})).status_code
        for _ in range(3)
    ]
    assert statuses == [202, 202, 429]
