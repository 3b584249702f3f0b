"""Through the gateway to a real auth-service: sign-up and sign-in, the JWKS at the edge, and
revocations that auth-service publishes (its outbox relay → RabbitMQ → the gateway's consumer →
the Redis denylist) refusing still-unexpired access tokens at the edge."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator

import httpx
import pytest

from auth_service.main import create_app as create_auth_app
from conftest import PASSWORD, Echo, asgi_gateway, auth_settings, bearer, gateway_settings, sign_up, upstream
from gatehouse_platform.tcp_proxy import TcpProxy
from gatehouse_platform.testing import eventually, serve_in_thread

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
async def gateway(auth_service: str, echo: Echo, amqp_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = gateway_settings(
        amqp_url=amqp_url,
        consume_events=True,
        upstreams={
            "auth": upstream(auth_service, "/auth", "/.well-known"),
            "billing": upstream(echo.url, "/billing"),
        },
    )
    async with asgi_gateway(settings) as http:
        yield http


async def billing_sees(http: httpx.AsyncClient, echo: Echo, token: str) -> bool:
    """Whether a protected billing request with `token` gets past the edge to the upstream."""
    request_id = uuid.uuid4().hex
    response = await http.get(
        "/billing/subscriptions/me", headers={**bearer(token), "X-Request-ID": request_id}
    )
    reached = bool(echo.requests_with(request_id))
    assert reached == (response.status_code == 200), response.text
    return reached


async def test_sign_up_and_sign_in_through_the_gateway(gateway: httpx.AsyncClient, echo: Echo) -> None:
    user, tokens = await sign_up(gateway)
    assert tokens["token_type"] == "Bearer"
    me = await gateway.get("/auth/me", headers=bearer(tokens["access_token"]))
    assert me.status_code == 200, me.text
    assert me.json()["id"] == user["id"]
    assert me.headers["x-request-id"]
    assert await billing_sees(gateway, echo, tokens["access_token"])

    refreshed = await gateway.post("/auth/refresh-token", json={"refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.text

    wrong = await gateway.post("/auth/login", json={"email": user["email"], "password": "wrong " + PASSWORD})
    assert wrong.status_code == 401  # auth-service's own answer, passed through
    assert wrong.headers["content-type"] == "application/problem+json"


async def test_the_jwks_and_discovery_are_served_through_the_gateway(gateway: httpx.AsyncClient) -> None:
    for path in ("/.well-known/jwks.json", "/auth/.well-known/jwks.json"):
        response = await gateway.get(path)
        assert response.status_code == 200, path
        assert response.json()["keys"]
    discovery = await gateway.get("/.well-known/openid-configuration")
    assert discovery.status_code == 200


async def test_a_deactivated_account_is_refused_at_the_edge_at_once(
    gateway: httpx.AsyncClient, echo: Echo
) -> None:
    _, tokens = await sign_up(gateway)
    access = tokens["access_token"]
    assert await billing_sees(gateway, echo, access)

    deactivated = await gateway.post("/auth/deactivate", json={"password": PASSWORD}, headers=bearer(access))
    assert deactivated.status_code == 200, deactivated.text

    # auth-service published user.deactivated and session.revoked: the edge refuses the token,
    # although it is signed, unexpired, and billing (here the echo) would never see it.
    async def refused() -> bool:
        return not await billing_sees(gateway, echo, access)

    await eventually(refused, "the deactivation to reach the edge")
    me = await gateway.get("/auth/me", headers=bearer(access))
    assert me.status_code == 401
    assert me.headers["www-authenticate"] == 'Bearer error="invalid_token"'


async def test_logging_out_refuses_that_session_at_the_edge_but_not_the_others(
    gateway: httpx.AsyncClient, echo: Echo
) -> None:
    user, first = await sign_up(gateway)
    second = (await gateway.post("/auth/login", json={"email": user["email"], "password": PASSWORD})).json()

    logged_out = await gateway.post("/auth/logout", headers=bearer(first["access_token"]))
    assert logged_out.status_code == 200, logged_out.text

    async def refused() -> bool:
        return not await billing_sees(gateway, echo, first["access_token"])

    await eventually(refused, "the revoked session to reach the edge")
    assert await billing_sees(gateway, echo, second["access_token"])


async def test_a_database_restart_behind_auth_service_is_503_through_the_gateway_never_500_or_502(
    database_url: str, amqp_url: str, echo: Echo
) -> None:
    """issue 22's drill: PostgreSQL restarted under 4 clients of login and me gave 17 × 500 and
    5 × 502. Here auth-service reaches its database through a TCP proxy that is cut (connections
    reset, new ones refused) while 4 clients keep signing in and reading /auth/me through the
    gateway: every answer is 200 or 503 problem+json with Retry-After, and once the database is
    back every client succeeds again, with the same processes."""
    link = TcpProxy.before(database_url)
    await link.open()
    # Started from a thread: the proxy runs on this loop, which the server's start must not block.
    server = serve_in_thread(create_auth_app(auth_settings(link.url(database_url), amqp_url)))
    auth_url = await asyncio.to_thread(server.__enter__)
    try:
        settings = gateway_settings(
            upstreams={
                "auth": upstream(auth_url, "/auth", "/.well-known"),
                "billing": upstream(echo.url, "/billing"),
            },
            rate_limits_enabled=False,
        )
        async with asgi_gateway(settings) as http:
            user, tokens = await sign_up(http)
            login = {"email": user["email"], "password": PASSWORD}
            answers: list[httpx.Response] = []
            cut = asyncio.Event()
            healed = asyncio.Event()

            async def client() -> None:
                while not healed.is_set() or len(answers) < 40:
                    answers.append(await http.post("/auth/login", json=login))
                    answers.append(await http.get("/auth/me", headers=bearer(tokens["access_token"])))
                    if len(answers) > 400:
                        return

            async def restart() -> None:
                await eventually(lambda: len(answers) >= 8, "the load to be under way")
                await link.close()
                cut.set()
                await eventually(lambda: sum(r.status_code == 503 for r in answers) >= 4, "503s")
                await link.open()
                healed.set()

            await asyncio.gather(restart(), *(client() for _ in range(4)))
            after = [await http.post("/auth/login", json=login) for _ in range(3)]
    finally:
        await asyncio.to_thread(server.__exit__, None, None, None)
        await link.close()
    statuses = Counter(response.status_code for response in answers)
    assert set(statuses) <= {200, 503}, statuses
    for response in answers:
        if response.status_code == 503:
            assert response.headers["content-type"] == "application/problem+json"
            assert int(response.headers["retry-after"]) >= 1
    assert cut.is_set() and statuses[503] >= 4
    assert [response.status_code for response in after] == [200, 200, 200]


async def test_answers_through_the_gateway_are_the_documented_ones(auth_service: str) -> None:
    """issue 22: through the gateway, a 405 named only one of the path's methods, and a
    token-checked credential route answered 429 where a 401 is due once the address's budget
    was spent."""
    settings = gateway_settings(upstreams={"auth": upstream(auth_service, "/auth", "/.well-known")})
    async with asgi_gateway(settings, client=("198.51.100.22", 4000)) as http:
        wrong_method = await http.put("/auth/verify", json={})
        assert wrong_method.status_code == 405
        assert set(wrong_method.headers["allow"].split(", ")) == {"GET", "POST"}
        malformed = await http.post("/auth/login", content=b"{", headers={"Content-Type": "application/json"})
        assert malformed.status_code == 400
        assert malformed.json()["type"] == "https://gatehouse.dev/problems/malformed-body"
        statuses = {(await http.post("/auth/request/verify")).status_code for _ in range(25)}
        assert statuses == {401}  # the default credential limit is 20 a minute per address
