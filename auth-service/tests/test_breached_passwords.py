"""Breached passwords: register, reset and change refuse a password the Pwned Passwords range API
(emulators/pwned, over real HTTP) has seen in breaches, with a 422 on the password field; only the
SHA-1's five-character prefix leaves the service; a slow or unreachable API lets the password
through and logs a warning."""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from auth_service.main import create_app
from conftest import (
    PASSWORD,
    account,
    bearer,
    login,
    make_settings,
    new_email,
    new_username,
    pwned_settings,
    signed_up,
)
from gatehouse_platform.pytest_plugin import EventTap
from gatehouse_platform.testing import free_port

BREACH_MESSAGE = "This password has appeared in a data breach"


@asynccontextmanager
async def own_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An API client of an app of the test's own (its settings differ from the session's)."""
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://auth.test") as client,
    ):
        yield client


def breached_password() -> str:
    """A long password no policy refuses, which the test then seeds as breached."""
    return f"unusual passphrase {uuid.uuid4().hex[:10]}"


async def seed(emulator: str, password: str, count: int = 7) -> None:
    async with httpx.AsyncClient(base_url=emulator) as http:
        response = await http.post("/_emulator/passwords", json={"password": password, "count": count})
        assert response.status_code == 201, response.text


async def fault(emulator: str, **fault: Any) -> None:
    async with httpx.AsyncClient(base_url=emulator) as http:
        assert (await http.post("/_emulator/faults", json=fault)).status_code == 201


async def recorded_requests(emulator: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=emulator) as http:
        return list((await http.get("/_emulator/requests")).json())


def assert_refused_as_breached(response: httpx.Response) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["type"].endswith("/validation-failed")
    assert list(body["errors"]) == ["password"]
    assert body["errors"]["password"].startswith(BREACH_MESSAGE)


async def reset_token(client: httpx.AsyncClient, events: EventTap, email: str) -> str:
    await client.post("/auth/forget-password", json={"email": email})
    event = await events.wait_for("user.password_reset_requested", lambda e: e["data"]["email"] == email)
    return str(event["data"]["token"])


async def test_register_refuses_a_breached_password_and_creates_nothing(
    client: httpx.AsyncClient, pwned_emulator: str, events: EventTap
) -> None:
    password = breached_password()
    await seed(pwned_emulator, password)
    email = new_email()
    response = await client.post(
        "/auth/register", json={"email": email, "username": new_username(), "password": password}
    )
    assert_refused_as_breached(response)
    with pytest.raises(AssertionError):
        await account(email)
    # The same person with a clean password is registered.
    clean = breached_password()
    response = await client.post(
        "/auth/register", json={"email": email, "username": new_username(), "password": clean}
    )
    assert response.status_code == 202, response.text
    assert (await account(email))["email"] == email
    await login(client, email, clean)


async def test_a_password_below_the_threshold_is_accepted(
    database_url: str, amqp_url: str, pwned_emulator: str
) -> None:
    password = breached_password()
    await seed(pwned_emulator, password, count=2)
    settings = make_settings(
        database_url, amqp_url, **pwned_settings(pwned_emulator), pwned_passwords_threshold=3
    )
    async with own_client(create_app(settings, run_relay=False)) as client:
        response = await client.post(
            "/auth/register", json={"email": new_email(), "username": new_username(), "password": password}
        )
        assert response.status_code == 202, response.text


async def test_reset_refuses_a_breached_password_and_keeps_the_link_usable(
    client: httpx.AsyncClient, pwned_emulator: str, events: EventTap
) -> None:
    user, _tokens = await signed_up(client)
    password = breached_password()
    await seed(pwned_emulator, password)
    token = await reset_token(client, events, user["email"])
    refused = await client.post("/auth/new-password", json={"token": token, "new_password": password})
    assert_refused_as_breached(refused)
    await login(client, user["email"], PASSWORD)  # unchanged
    clean = breached_password()
    accepted = await client.post("/auth/new-password", json={"token": token, "new_password": clean})
    assert accepted.status_code == 200, accepted.text
    await login(client, user["email"], clean)


async def test_change_refuses_a_breached_password(client: httpx.AsyncClient, pwned_emulator: str) -> None:
    user, tokens = await signed_up(client)
    password = breached_password()
    await seed(pwned_emulator, password)
    refused = await client.post(
        "/auth/change-password",
        json={"old_password": PASSWORD, "new_password": password},
        headers=bearer(tokens),
    )
    assert_refused_as_breached(refused)
    await login(client, user["email"], PASSWORD)
    clean = breached_password()
    changed = await client.post(
        "/auth/change-password",
        json={"old_password": PASSWORD, "new_password": clean},
        headers=bearer(tokens),
    )
    assert changed.status_code == 200, changed.text
    await login(client, user["email"], clean)


async def test_only_the_hash_prefix_leaves_the_service(
    client: httpx.AsyncClient, pwned_emulator: str
) -> None:
    password = breached_password()
    digest = hashlib.sha1(password.encode()).hexdigest().upper()
    response = await client.post(
        "/auth/register", json={"email": new_email(), "username": new_username(), "password": password}
    )
    assert response.status_code == 202, response.text
    mine = [r for r in await recorded_requests(pwned_emulator) if r["path"] == f"/range/{digest[:5]}"]
    assert len(mine) == 1
    request = mine[0]
    assert request["method"] == "GET"
    assert request["query"] == ""
    assert request["body"] == ""
    assert request["headers"]["add-padding"] == "true"
    seen = repr(request).upper()
    assert digest[5:] not in seen and digest not in seen
    assert password.upper() not in seen


async def test_a_slow_api_fails_open_with_a_warning(
    client: httpx.AsyncClient, pwned_emulator: str, caplog: pytest.LogCaptureFixture
) -> None:
    password = breached_password()
    await seed(pwned_emulator, password)
    await fault(pwned_emulator, delay_seconds=4)  # the check gives up after 2 s
    with caplog.at_level(logging.WARNING, logger="auth_service.accounts.breaches"):
        response = await client.post(
            "/auth/register", json={"email": new_email(), "username": new_username(), "password": password}
        )
    assert response.status_code == 202, response.text
    warnings = [r.getMessage() for r in caplog.records if r.name == "auth_service.accounts.breaches"]
    assert warnings == ["breached-password check skipped, password accepted: timed out"]
    assert password not in caplog.text


async def test_a_failing_api_fails_open(
    client: httpx.AsyncClient, pwned_emulator: str, caplog: pytest.LogCaptureFixture
) -> None:
    password = breached_password()
    await seed(pwned_emulator, password)
    await fault(pwned_emulator, status=503)
    with caplog.at_level(logging.WARNING, logger="auth_service.accounts.breaches"):
        response = await client.post(
            "/auth/register", json={"email": new_email(), "username": new_username(), "password": password}
        )
    assert response.status_code == 202, response.text
    assert "breached-password check skipped, password accepted: answered 503" in caplog.text


async def test_an_unreachable_api_fails_open(
    database_url: str, amqp_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    settings = make_settings(database_url, amqp_url, **pwned_settings(down))
    app = create_app(settings, run_relay=False)
    logging.getLogger().addHandler(caplog.handler)  # create_app's logging set-up replaced it
    async with own_client(app) as client:
        with caplog.at_level(logging.WARNING, logger="auth_service.accounts.breaches"):
            response = await client.post(
                "/auth/register",
                json={"email": new_email(), "username": new_username(), "password": breached_password()},
            )
    assert response.status_code == 202, response.text
    assert "breached-password check skipped, password accepted: ConnectError" in caplog.text
