"""A hung or restarting upstream is shed in seconds (issue 22's drill: billing-service hung 20 s
and 40 s got no answer for 30 s, a 504 only at the read timeout, and a circuit that opened only
after five of those): route deadlines, a breaker that opens on slow answers while they are still
coming, and a reset connection answered 503. The upstreams are real servers (the echo app under
uvicorn) behind the platform's TCP proxy, stalled to hang them and closed to reset them."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from conftest import Echo, gateway_settings, http_gateway, upstream
from gatehouse_platform.tcp_proxy import TcpProxy
from gatehouse_platform.testing import eventually
from gateway.routing import RouteTable
from gateway.settings import DEFAULT_ROUTE_TIMEOUTS

pytestmark = pytest.mark.timeout(60)


def breaker_state(name: str) -> float:
    return REGISTRY.get_sample_value("gateway_breaker_state", {"upstream": name}) or 0.0


def problem_type(response: httpx.Response) -> str:
    assert response.headers["content-type"] == "application/problem+json", response.text
    return str(response.json()["type"]).rsplit("/", 1)[1]


@pytest.fixture
async def link(echo: Echo) -> AsyncIterator[TcpProxy]:
    """The echo upstream through a TCP proxy of its own: stall() hangs it, close() resets it."""
    proxy = TcpProxy("127.0.0.1", int(echo.url.rsplit(":", 1)[1]))
    await proxy.open()
    yield proxy
    proxy.resume()
    await proxy.close()


def billing_through(link: TcpProxy, echo: Echo, **overrides: Any) -> Any:
    return gateway_settings(
        upstreams={"billing": upstream(f"http://127.0.0.1:{link.port}", "/billing", **overrides)},
        rate_limits_enabled=False,
        jwks_url=f"{echo.url}/jwks",
        route_timeouts=[{"paths": ["/billing/patient/**"], "read_timeout_seconds": 3, "slow_seconds": 2}],
    )


def test_the_default_deadlines_are_well_under_thirty_seconds() -> None:
    settings = gateway_settings()
    table = RouteTable(settings)
    for name in ("auth", "billing", "notifications"):
        assert settings.upstreams[name].read_timeout_seconds == 5
        assert settings.upstreams[name].breaker_slow_seconds == 3
        assert settings.upstreams[name].max_in_flight == 128
    assert settings.upstreams["web"].read_timeout_seconds == 15  # a page waits on the API (10 s)
    assert all(rule.read_timeout_seconds <= 25 for rule in DEFAULT_ROUTE_TIMEOUTS)

    def timing(method: str, path: str) -> tuple[float, float]:
        route = table.match(method, path)
        assert route is not None
        return route.read_timeout, route.slow_after

    assert timing("GET", "/billing/plans") == (5, 3)
    assert timing("POST", "/billing/plans") == (25, 10)  # a Stripe product and price
    assert timing("POST", "/billing/subscriptions/subscribe") == (25, 10)  # Stripe
    assert timing("GET", "/auth/google/callback") == (25, 10)  # the provider's token and profile
    assert timing("POST", "/auth/login") == (5, 3)
    assert timing("GET", "/account") == (15, 3)


async def test_each_route_has_its_deadline(echo: Echo, link: TcpProxy) -> None:
    """An answer 1 s away is a 504 on a route with the upstream's 0.5 s deadline, and arrives on a
    route whose own deadline is 3 s; a hung upstream is a 504 at the deadline, not at 30 s."""
    settings = billing_through(link, echo, read_timeout_seconds=0.5, breaker_failure_threshold=100)
    async with http_gateway(settings) as (_, url), httpx.AsyncClient(base_url=url, timeout=10) as http:
        late = await http.get("/billing/sleep", params={"seconds": 1})
        patient = await http.get("/billing/patient/sleep", params={"seconds": 1})
        link.stall()
        hung = await http.get("/billing/plans")
    assert late.status_code == 504 and problem_type(late) == "upstream-timeout"
    assert patient.status_code == 200
    assert hung.status_code == 504 and problem_type(hung) == "upstream-timeout"


async def test_a_hung_upstream_opens_the_breaker_while_its_requests_still_wait(
    echo: Echo, link: TcpProxy
) -> None:
    """Three requests find the upstream hung: each becomes slow after 0.3 s, and the third opens the
    circuit while all three are still waiting for their 2 s deadline; the next request is refused
    at once, without reaching the upstream. Once it answers again, the probe closes the circuit."""
    settings = billing_through(
        link,
        echo,
        read_timeout_seconds=2,
        breaker_slow_seconds=0.3,
        breaker_slow_threshold=3,
        breaker_slow_window_seconds=30,
        breaker_cooldown_seconds=0.5,
        breaker_failure_threshold=100,
    )
    async with http_gateway(settings) as (_, url), httpx.AsyncClient(base_url=url, timeout=10) as http:
        assert (await http.get("/billing/plans")).status_code == 200
        link.stall()
        hung = [asyncio.ensure_future(http.get("/billing/plans")) for _ in range(3)]
        await eventually(lambda: breaker_state("billing") == 2, "the circuit to open", every=0.02)
        assert not any(task.done() for task in hung)  # opened while they still waited

        refused_id = uuid.uuid4().hex
        refused = await http.get("/billing/plans", headers={"X-Request-ID": refused_id})
        assert refused.status_code == 503 and problem_type(refused) == "upstream-circuit-open"
        assert int(refused.headers["retry-after"]) >= 1

        timed_out = await asyncio.gather(*hung)
        assert [problem_type(response) for response in timed_out] == ["upstream-timeout"] * 3
        link.resume()
        await asyncio.sleep(0.6)  # the cool-down: the next request is the half-open probe
        recovered = await http.get("/billing/plans")
        assert recovered.status_code == 200
        assert breaker_state("billing") == 0
    assert echo.requests_with(refused_id) == []


async def test_slow_answers_that_end_do_not_close_the_circuit_and_a_slow_probe_opens_it_again(
    echo: Echo, link: TcpProxy
) -> None:
    """An upstream that answers, but slowly: the answers that come after the circuit opened do not
    close it (only a probe does), and a probe that is slow opens it again before it ends."""
    settings = billing_through(
        link,
        echo,
        breaker_slow_seconds=0.2,
        breaker_slow_threshold=2,
        breaker_slow_window_seconds=30,
        breaker_cooldown_seconds=1,
    )
    async with http_gateway(settings) as (_, url), httpx.AsyncClient(base_url=url, timeout=10) as http:
        slow = await asyncio.gather(*(http.get("/billing/sleep", params={"seconds": 0.6}) for _ in range(2)))
        assert [response.status_code for response in slow] == [200, 200]  # the answers still count
        assert breaker_state("billing") == 2  # their late arrival did not close it

        await asyncio.sleep(0.6)  # the rest of the cool-down: the next request is the probe
        probe = asyncio.ensure_future(http.get("/billing/sleep", params={"seconds": 0.6}))
        await eventually(lambda: breaker_state("billing") == 1, "the probe to go", every=0.02)
        await eventually(lambda: breaker_state("billing") == 2, "the slow probe to reopen it", every=0.02)
        refused = await http.get("/billing/plans")
        assert refused.status_code == 503 and problem_type(refused) == "upstream-circuit-open"
        assert not probe.done()
        assert (await probe).status_code == 200
        assert breaker_state("billing") == 2  # the slow probe's late answer changes nothing


async def test_a_connection_reset_by_a_restarting_upstream_is_503(echo: Echo, link: TcpProxy) -> None:
    """The upstream goes away mid-request (its connections reset, as when it restarts): 503 with
    Retry-After, for a GET and a POST alike, and neither is sent again."""
    settings = billing_through(link, echo, breaker_failure_threshold=100)
    async with http_gateway(settings) as (_, url), httpx.AsyncClient(base_url=url, timeout=10) as http:
        ids = [uuid.uuid4().hex, uuid.uuid4().hex]
        pending = [
            asyncio.ensure_future(
                http.get("/billing/sleep", params={"seconds": 3}, headers={"X-Request-ID": ids[0]})
            ),
            asyncio.ensure_future(
                http.post(
                    "/billing/patient/sleep",
                    params={"seconds": 3},
                    json={"plan": "pro"},
                    headers={"X-Request-ID": ids[1]},
                )
            ),
        ]
        await eventually(lambda: all(echo.requests_with(i) for i in ids), "both to reach the upstream")
        await link.close()
        answers = await asyncio.gather(*pending)
        await link.open()
        after = await http.get("/billing/plans")
    for answer in answers:
        assert answer.status_code == 503, answer.text
        assert problem_type(answer) == "upstream-reset"
        assert answer.headers["retry-after"] == "1"
    assert [len(echo.requests_with(i)) for i in ids] == [1, 1]  # not retried
    assert after.status_code == 200
