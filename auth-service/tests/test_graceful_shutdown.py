"""SIGTERM mid-load: auth-service finishes the requests in flight, refuses new ones, and every
answered sign-up's event reaches the bus (now or after the restart), exactly once.

auth-service runs as a real process (`auth-service serve`) on a database of its own, so its relay
is the only one publishing from it.
"""

from __future__ import annotations

import asyncio
import os

import httpx

from conftest import PASSWORD, EventTap, new_email, new_username
from gatehouse_platform import testing
from gatehouse_platform.testing import free_port

SIGN_UPS = 40


async def test_sigterm_mid_load_answers_what_it_took_and_loses_no_event(
    own_database: str, amqp_url: str, events: EventTap
) -> None:
    env = {
        **os.environ,
        "AUTH_ENVIRONMENT": "test",
        "AUTH_DATABASE_URL": own_database,
        "AUTH_AMQP_URL": amqp_url,
        "AUTH_REDIS_KEY_PREFIX": testing.unique_name("gh_auth_sigterm"),
        "AUTH_RATE_LIMITS_ENABLED": "false",
        "AUTH_ARGON2_TIME_COST": "1",
        "AUTH_ARGON2_MEMORY_KIB": "8192",
        "AUTH_LOG_JSON": "false",
    }
    service = testing.ServiceProcess("auth_service.cli", env, free_port())
    try:
        await service.start()
        emails = [new_email() for _ in range(SIGN_UPS)]
        # A connection per request, so a refused request is refused before it is sent.
        no_reuse = httpx.Limits(max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=service.url, limits=no_reuse, timeout=30) as http:

            async def sign_up(nth: int, email: str) -> int | str:
                await asyncio.sleep(nth * 0.025)  # a steady stream of sign-ups over a second
                body = {"email": email, "username": new_username(), "password": PASSWORD}
                try:
                    return (await http.post("/auth/register", json=body)).status_code
                except (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError):
                    # Refused, or reset unread: a connection the kernel had queued when uvicorn closed
                    # its socket. Neither reached the app; the events check below proves it.
                    return "refused"

            async def terminate_mid_load() -> None:
                await asyncio.sleep(0.4)
                service.sigterm()

            outcomes = await asyncio.gather(
                *(sign_up(n, e) for n, e in enumerate(emails)), terminate_mid_load()
            )
        answered = [email for email, outcome in zip(emails, outcomes, strict=False) if outcome == 202]
        assert set(outcomes[:-1]) <= {202, "refused"}, outcomes  # no 5xx, no request cut off
        assert answered, "sign-ups before and during the shutdown were answered"
        assert "refused" in outcomes, "sign-ups after it were refused"
        assert await service.wait() in testing.GRACEFUL_EXITS

        await service.start()  # what the relay had not sent yet goes out now
        for email in answered:
            await events.wait_for("user.registered", lambda e, email=email: e["data"]["email"] == email)
        registered = await events.all_of("user.registered", lambda e: e["data"]["email"] in emails)
        assert sorted(e["data"]["email"] for e in registered) == sorted(answered)  # each exactly once
    finally:
        service.kill()
