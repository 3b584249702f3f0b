"""Through the gateway to a real auth-service: sign-up and sign-in, the JWKS at the edge, and
revocations that auth-service publishes (its outbox relay → RabbitMQ → the gateway's consumer →
the Redis denylist) refusing still-unexpired access tokens at the edge."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from conftest import PASSWORD, Echo, asgi_gateway, bearer, gateway_settings, sign_up, upstream
from gatehouse_platform.testing import eventually

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
