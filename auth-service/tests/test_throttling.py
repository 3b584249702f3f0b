"""Throttling runs on its own app with tight limits (the shared test app has them loosened)."""

import ipaddress
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from asgi_lifespan import LifespanManager
from prometheus_client import REGISTRY

from auth_service.main import create_app
from conftest import PASSWORD, make_settings, new_email, register


def counted(name: str, **labels: str) -> float:
    """The app runs in this process (ASGI transport): its counters are this registry's."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


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
    failures = counted("auth_sign_in_failures_total", method="password")
    backoffs = counted("auth_throttled_total", action="login", scope="backoff")
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
    assert counted("auth_sign_in_failures_total", method="password") == failures + 3
    assert counted("auth_throttled_total", action="login", scope="backoff") == backoffs + 2


async def test_per_ip_limit_covers_every_account(strict_client: httpx.AsyncClient) -> None:
    refused = counted("auth_throttled_total", action="login", scope="ip")
    statuses = [
        (
            await strict_client.post("/auth/login", json={"email": new_email(), "password": "whatever it is"})
        ).status_code
        for _ in range(10)
    ]
    assert statuses[:8] == [401] * 8
    assert statuses[8:] == [429, 429]
    assert counted("auth_throttled_total", action="login", scope="ip") == refused + 2


async def test_email_sending_requests_are_limited_per_address(strict_client: httpx.AsyncClient) -> None:
    email = new_email()
    statuses = [
        (await strict_client.post("/auth/forget-password", json={"email": email})).status_code
        for _ in range(3)
    ]
    assert statuses == [202, 202, 429]


@pytest.fixture
async def behind_a_proxy(database_url: str, amqp_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """The strict limits on an app that trusts the address these requests come from (127.0.0.1,
    as the gateway is under `make run`): its X-Forwarded-For names the person."""
    settings = make_settings(
        database_url,
        amqp_url,
        credential_ip_limit="8/minute",
        credential_account_limit="100/minute",
        trusted_proxies=["127.0.0.0/8"],
    )
    app = create_app(settings, run_relay=False)
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://auth.test") as client,
    ):
        yield client


def person() -> str:
    """An address of one's own per run (the limits live in Redis across tests), written as the
    service writes it back (a group like 06e2 loses its leading zero)."""
    return str(ipaddress.IPv6Address(f"2001:db8::{uuid.uuid4().hex[:4]}:{uuid.uuid4().hex[:4]}"))


async def failed_logins(client: httpx.AsyncClient, forwarded_for: str | None, times: int) -> list[int]:
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    return [
        (
            await client.post(
                "/auth/login", json={"email": new_email(), "password": "whatever it is"}, headers=headers
            )
        ).status_code
        for _ in range(times)
    ]


async def test_two_people_behind_a_trusted_proxy_are_limited_separately(
    behind_a_proxy: httpx.AsyncClient,
) -> None:
    first, second = person(), person()
    # The web front adds the person's address; the gateway appends its own peer (the web's).
    assert await failed_logins(behind_a_proxy, f"{first}, 127.0.0.1", 9) == [401] * 8 + [429]
    assert await failed_logins(behind_a_proxy, f"{second}, 127.0.0.1", 1) == [401]


async def test_a_session_records_the_person_behind_a_trusted_proxy(
    behind_a_proxy: httpx.AsyncClient,
) -> None:
    user, address = await register(behind_a_proxy), person()
    signed_in = await behind_a_proxy.post(
        "/auth/login",
        json={"email": user["email"], "password": PASSWORD},
        headers={"X-Forwarded-For": f"203.0.113.9, {address}"},  # the left one is the person's own claim
    )
    assert signed_in.status_code == 200
    sessions = await behind_a_proxy.get(
        "/auth/sessions", headers={"Authorization": f"Bearer {signed_in.json()['access_token']}"}
    )
    assert [s["ip"] for s in sessions.json()["items"]] == [address]


async def test_forwarded_for_from_an_untrusted_peer_is_ignored(strict_client: httpx.AsyncClient) -> None:
    # AUTH_TRUSTED_PROXIES is empty by default: a client naming a new address each time is still one.
    statuses = [(await failed_logins(strict_client, person(), 1))[0] for _ in range(10)]
    assert statuses[:8] == [401] * 8
    assert statuses[8:] == [429, 429]


async def test_registrations_for_one_address_are_throttled_whether_or_not_it_has_an_account(
    strict_client: httpx.AsyncClient,
) -> None:
    """Each registration may send an email to the address (a link, or "someone tried to sign up"):
    the address's limit stops a flood, and counts a new and a known address alike."""
    email = new_email()
    statuses = []
    for _ in range(3):
        body = {"email": email, "username": f"t{uuid.uuid4().hex[:12]}", "password": PASSWORD}
        statuses.append((await strict_client.post("/auth/register", json=body)).status_code)
    assert statuses == [202, 202, 429]  # a new account, then an attempt on it, then the limit
