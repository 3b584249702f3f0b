"""Proxy mechanics over real HTTP: streaming both ways, timeouts, the circuit breaker, retries,
hop-by-hop headers, request ids and trace context, forwarding headers, body limits."""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from conftest import CHUNK, Echo, dead_url, gateway_settings, http_gateway, upstream
from gatehouse_platform.tcp_proxy import TcpProxy
from gatehouse_platform.testing import eventually, serve_in_thread
from gateway.routing import RouteTable
from scripted_upstream import upstream as scripted_upstream

pytestmark = pytest.mark.timeout(60)


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def echo_settings(echo: Echo, **overrides: Any) -> Any:
    return gateway_settings(
        upstreams={"billing": upstream(echo.url, "/billing"), "auth": upstream(echo.url, "/auth")},
        rate_limits_enabled=False,
        **overrides,
    )


@pytest.fixture(scope="module")
async def gateway(echo: Echo) -> AsyncIterator[str]:
    async with http_gateway(echo_settings(echo, max_request_body_bytes=64 * 1024 * 1024)) as (_, url):
        yield url


async def test_large_bodies_stream_both_ways(gateway: str, echo: Echo) -> None:
    chunks = 320  # 20 MiB each way
    expected = hashlib.sha256(CHUNK * chunks).hexdigest()

    async def body() -> AsyncIterator[bytes]:  # no Content-Length: chunked, streamed as it comes
        for _ in range(chunks):
            yield CHUNK

    async with httpx.AsyncClient(base_url=gateway, timeout=30) as http:
        uploaded = await http.post("/billing/upload", content=body())
        assert uploaded.status_code == 200, uploaded.text
        assert uploaded.json()["body_size"] == len(CHUNK) * chunks
        assert uploaded.json()["body_sha256"] == expected

        digest, size, first_chunk_at = hashlib.sha256(), 0, None
        start = time.perf_counter()
        async with http.stream("GET", "/billing/download", params={"chunks": chunks}) as response:
            assert response.status_code == 200
            assert "content-length" not in response.headers  # streamed, not buffered then sized
            async for chunk in response.aiter_raw():
                first_chunk_at = first_chunk_at or time.perf_counter() - start
                digest.update(chunk)
                size += len(chunk)
    assert size == len(CHUNK) * chunks
    assert digest.hexdigest() == expected


async def test_a_slow_upstream_is_answered_with_504(echo: Echo) -> None:
    settings = gateway_settings(
        upstreams={"billing": upstream(echo.url, "/billing", read_timeout_seconds=0.3)},
        rate_limits_enabled=False,
        jwks_url=f"{echo.url}/jwks",
    )
    async with http_gateway(settings) as (_, url), httpx.AsyncClient(base_url=url) as http:
        start = time.perf_counter()
        response = await http.get("/billing/sleep", params={"seconds": 2})
        elapsed = time.perf_counter() - start
    assert response.status_code == 504
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("/upstream-timeout")
    assert elapsed < 1.5


async def test_a_down_upstream_opens_the_breaker_which_recovers_through_a_probe(echo: Echo) -> None:
    port = int(echo.url.rsplit(":", 1)[1])
    link = TcpProxy("127.0.0.1", port)
    await link.open()
    settings = gateway_settings(
        upstreams={
            "billing": upstream(
                f"http://127.0.0.1:{link.port}",
                "/billing",
                breaker_failure_threshold=3,
                breaker_cooldown_seconds=0.5,
                connect_retries=0,
                keepalive_expiry_seconds=0,  # every request connects anew, so a cut link shows at once
            )
        },
        rate_limits_enabled=False,
        jwks_url=f"{echo.url}/jwks",
    )
    try:
        async with http_gateway(settings) as (_, url), httpx.AsyncClient(base_url=url) as http:
            assert (await http.get("/billing/plans")).status_code == 200
            await link.close()
            for _ in range(3):
                failed = await http.get("/billing/plans")
                assert failed.status_code == 503, failed.text
                assert failed.json()["type"].endswith("/upstream-unreachable")
                assert failed.headers["retry-after"] == "1"
            assert metric("gateway_breaker_state", upstream="billing") == 2

            request_id = uuid.uuid4().hex
            start = time.perf_counter()
            refused = await http.get("/billing/plans", headers={"X-Request-ID": request_id})
            assert time.perf_counter() - start < 0.1
            assert refused.status_code == 503
            assert refused.headers["content-type"] == "application/problem+json"
            assert refused.json()["type"].endswith("/upstream-circuit-open")
            assert int(refused.headers["retry-after"]) >= 1

            await link.open()
            await asyncio.sleep(0.6)  # the cool-down: the next request is the half-open probe
            recovered = await http.get("/billing/plans")
            assert recovered.status_code == 200
            assert metric("gateway_breaker_state", upstream="billing") == 0
    finally:
        await link.close()


async def test_a_failed_probe_opens_the_breaker_again(echo: Echo) -> None:
    settings = gateway_settings(
        upstreams={
            "billing": upstream(
                dead_url(),
                "/billing",
                breaker_failure_threshold=1,
                breaker_cooldown_seconds=0.3,
                connect_retries=0,
            )
        },
        rate_limits_enabled=False,
        jwks_url=f"{echo.url}/jwks",
    )
    async with http_gateway(settings) as (_, url), httpx.AsyncClient(base_url=url) as http:

        async def problem() -> str:
            response = await http.get("/billing/plans")
            assert response.status_code == 503, response.text
            return str(response.json()["type"]).rsplit("/", 1)[1]

        assert await problem() == "upstream-unreachable"
        assert await problem() == "upstream-circuit-open"
        await asyncio.sleep(0.35)
        assert await problem() == "upstream-unreachable"  # the probe, still failing
        assert await problem() == "upstream-circuit-open"  # open again at once


async def test_connect_failures_are_retried_for_get_but_never_for_post(echo: Echo) -> None:
    settings = gateway_settings(
        upstreams={
            "billing": upstream(dead_url(), "/billing", connect_retries=2, breaker_failure_threshold=100)
        },
        rate_limits_enabled=False,
        jwks_url=f"{echo.url}/jwks",
    )
    async with http_gateway(settings) as (_, url), httpx.AsyncClient(base_url=url) as http:
        before = metric("gateway_upstream_retries_total", upstream="billing")
        assert (await http.get("/billing/plans")).status_code == 503
        assert metric("gateway_upstream_retries_total", upstream="billing") == before + 2
        assert (await http.post("/billing/echo", json={"code": "pro"})).status_code == 503
        assert metric("gateway_upstream_retries_total", upstream="billing") == before + 2


async def test_a_retried_get_reaches_the_upstream_once_it_is_back(echo: Echo) -> None:
    port = int(echo.url.rsplit(":", 1)[1])
    link = TcpProxy("127.0.0.1", port)
    settings = gateway_settings(
        upstreams={
            "billing": upstream(
                f"http://127.0.0.1:{link.port}", "/billing", connect_retries=1, retry_backoff_seconds=0.5
            )
        },
        rate_limits_enabled=False,
        jwks_url=f"{echo.url}/jwks",
    )
    async with http_gateway(settings) as (_, url), httpx.AsyncClient(base_url=url) as http:
        pending = asyncio.ensure_future(http.get("/billing/plans"))
        await asyncio.sleep(0.15)  # the first attempt has been refused; the retry waits 0.5 s
        await link.open()
        try:
            response = await pending
        finally:
            await link.close()
    assert response.status_code == 200


async def test_a_request_that_reached_the_upstream_is_never_retried(echo: Echo) -> None:
    """The upstream takes the request and drops the connection without answering: for all we
    know it acted on it, so even a GET is not sent again. Nothing it answered was wrong, though
    (it is restarting, say): 503 with Retry-After, not 502."""
    connections = 0

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await reader.readuntil(b"\r\n\r\n")
        writer.transport.abort()

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    settings = gateway_settings(
        upstreams={"billing": upstream(f"http://127.0.0.1:{port}", "/billing", connect_retries=3)},
        rate_limits_enabled=False,
        jwks_url=f"{echo.url}/jwks",
    )
    try:
        async with http_gateway(settings) as (_, url), httpx.AsyncClient(base_url=url) as http:
            response = await http.get("/billing/plans")
    finally:
        server.close()
    assert response.status_code == 503
    assert response.json()["type"].endswith("/upstream-reset")
    assert response.headers["retry-after"] == "1"
    assert connections == 1


async def test_an_ambiguously_framed_response_is_a_bad_gateway_and_never_answers_the_next_request(
    echo: Echo,
) -> None:
    """Content-Length and Transfer-Encoding together, a second response hidden in the body: the
    client gets 502, and the next request its own answer on a new connection, not the hidden one."""
    smuggling = (
        b"HTTP/1.1 200 OK\r\ncontent-length: 49\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n"
        b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nhidden"
    )
    honest = b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nhonest"
    async with scripted_upstream(smuggling, honest) as server:
        settings = gateway_settings(
            upstreams={"billing": upstream(server.url, "/billing")},
            rate_limits_enabled=False,
            jwks_url=f"{echo.url}/jwks",
        )
        async with http_gateway(settings) as (_, url), httpx.AsyncClient(base_url=url) as http:
            first = await http.get("/billing/plans")
            second = await http.get("/billing/plans")

    assert first.status_code == 502
    assert first.json()["type"].endswith("/bad-gateway")
    assert (second.status_code, second.text) == (200, "honest")
    assert server.connections == 2


async def test_hop_by_hop_headers_are_stripped_both_ways(gateway: str, echo: Echo) -> None:
    request_id = uuid.uuid4().hex
    async with httpx.AsyncClient(base_url=gateway) as http:
        response = await http.get(
            "/billing/plans",
            headers={
                "X-Request-ID": request_id,
                "Connection": "keep-alive, X-Named-Hop",
                "X-Named-Hop": "secret",
                "Keep-Alive": "timeout=5",
                "TE": "trailers",
                "Proxy-Authorization": "Basic Zm9vOmJhcg==",
                "X-End-To-End": "kept",
            },
        )
        hop = await http.get("/billing/hop")
    assert response.status_code == 200
    (seen,) = echo.requests_with(request_id)
    names = {name for name, _ in seen.headers}
    assert not names & {"x-named-hop", "keep-alive", "te", "proxy-authorization"}
    assert seen.header("connection") in (None, "keep-alive")  # the gateway's own hop, if any
    assert seen.header("x-end-to-end") == "kept"

    assert hop.status_code == 200
    assert hop.headers["x-kept"] == "yes"
    for name in ("x-hop-named", "keep-alive", "proxy-authenticate", "trailer"):
        assert name not in hop.headers
    assert hop.headers.get("server") != "echo"


async def test_request_ids_and_trace_context_are_kept_or_made(gateway: str, echo: Echo) -> None:
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    incoming = f"00-{trace_id}-00f067aa0ba902b7-01"
    async with httpx.AsyncClient(base_url=gateway) as http:
        kept = await http.get(
            "/billing/plans",
            headers={"X-Request-ID": "req-42.abc", "traceparent": incoming, "tracestate": "vendor=1"},
        )
        made = await http.get(
            "/billing/plans",
            headers={"X-Request-ID": "bad id with spaces", "traceparent": "00-zz-bad", "tracestate": "v=2"},
        )
    assert kept.headers["x-request-id"] == "req-42.abc"
    (seen,) = echo.requests_with("req-42.abc")
    version, forwarded_trace, parent, flags = str(seen.header("traceparent")).split("-")
    assert (version, forwarded_trace, flags) == ("00", trace_id, "01")
    assert parent != "00f067aa0ba902b7" and len(parent) == 16  # the gateway is a span of its own
    assert seen.header("tracestate") == "vendor=1"

    new_id = made.headers["x-request-id"]
    assert new_id != "bad id with spaces" and len(new_id) == 32
    (seen,) = echo.requests_with(new_id)
    version, new_trace, _, _ = str(seen.header("traceparent")).split("-")
    assert version == "00" and len(new_trace) == 32 and new_trace != trace_id
    assert seen.header("tracestate") is None


async def test_forwarding_headers_are_set_for_the_upstream(gateway: str, echo: Echo) -> None:
    request_id = uuid.uuid4().hex
    async with httpx.AsyncClient(base_url=gateway) as http:
        await http.get("/billing/plans", headers={"X-Request-ID": request_id, "Host": "api.example.com"})
    (seen,) = echo.requests_with(request_id)
    assert seen.header("x-forwarded-for") == "127.0.0.1"
    assert seen.header("x-forwarded-proto") == "http"
    assert seen.header("x-forwarded-host") == "api.example.com"


async def test_bodies_over_the_limit_are_refused_with_413(echo: Echo) -> None:
    settings = gateway_settings(
        upstreams={"billing": upstream(echo.url, "/billing")},
        rate_limits_enabled=False,
        max_request_body_bytes=100_000,
        jwks_url=f"{echo.url}/jwks",
    )

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length to judge by: bytes are counted
        for _ in range(4):
            yield CHUNK

    async with http_gateway(settings) as (_, url), httpx.AsyncClient(base_url=url) as http:
        declared_id = uuid.uuid4().hex
        declared = await http.post(
            "/billing/upload", content=b"x" * 100_001, headers={"X-Request-ID": declared_id}
        )
        assert declared.status_code == 413
        assert declared.headers["content-type"] == "application/problem+json"
        assert echo.requests_with(declared_id) == []

        streamed = await http.post("/billing/upload", content=chunked())
        assert streamed.status_code == 413
        assert streamed.json()["type"].endswith("/body-too-large")

        fits = await http.post("/billing/upload", content=b"x" * 100_000)
        assert fits.status_code == 200
        assert fits.json()["body_size"] == 100_000


async def test_stripe_webhook_is_not_routed(gateway: str, echo: Echo) -> None:
    request_id = uuid.uuid4().hex
    async with httpx.AsyncClient(base_url=gateway) as http:
        response = await http.post(
            "/billing/stripe/webhook", content=b"{}", headers={"X-Request-ID": request_id}
        )
        trailing = await http.post("/billing/stripe/webhook/", content=b"{}")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert trailing.status_code == 404
    assert echo.requests_with(request_id) == []


async def raw_get(base_url: str, target: str) -> bytes:
    """The status line and headers for `GET target`, sent verbatim (clients normalise dots away)."""
    host, port = base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(f"GET {target} HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    writer.close()
    return head


async def test_unknown_paths_and_dot_segments_are_refused(gateway: str) -> None:
    async with httpx.AsyncClient(base_url=gateway) as http:
        unknown = await http.get("/nowhere")
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == "application/problem+json"
    for target in ("/billing/./plans", "/billing/../auth/me", "/billing/%2e%2e/auth/me", "/auth//me"):
        head = await raw_get(gateway, target)
        assert head.startswith(b"HTTP/1.1 400 "), (target, head)
        assert b"application/problem+json" in head


async def test_in_flight_requests_finish_during_shutdown(echo: Echo) -> None:
    settings = gateway_settings(
        upstreams={"billing": upstream(echo.url, "/billing")},
        rate_limits_enabled=False,
        jwks_url=f"{echo.url}/jwks",
    )
    async with httpx.AsyncClient(timeout=10) as http:
        async with http_gateway(settings) as (_, url):
            pending = asyncio.ensure_future(http.get(f"{url}/billing/sleep", params={"seconds": 0.5}))
            await asyncio.sleep(0.2)
        # The server has stopped (the context above waited for it): the request finished first.
        response = await pending
        assert response.status_code == 200
        with pytest.raises(httpx.ConnectError):
            await http.get(f"{url}/healthz")


async def test_head_requests_get_the_headers_without_a_body(gateway: str) -> None:
    async with httpx.AsyncClient(base_url=gateway) as http:
        response = await http.head("/billing/plans")
        after = await http.get("/billing/plans")  # the pooled connection is still in step
    assert response.status_code == 200
    assert response.content == b""
    assert int(response.headers["content-length"]) > 0
    assert after.status_code == 200


async def test_a_download_stops_when_the_client_goes_away(gateway: str, echo: Echo) -> None:
    request_id = uuid.uuid4().hex
    async with (
        httpx.AsyncClient(base_url=gateway, timeout=10) as http,
        http.stream(
            "GET", "/billing/download", params={"chunks": 100_000}, headers={"X-Request-ID": request_id}
        ) as response,
    ):
        received = 0
        async for chunk in response.aiter_raw():
            received += len(chunk)
            if received > 1024 * 1024:
                break  # leaving the block closes the connection mid-body

    async def upstream_stopped() -> bool:
        return request_id in echo.downloads

    await eventually(upstream_stopped, "the upstream to stop streaming")
    assert echo.downloads[request_id] < 1000  # far from the 6 GiB asked for


async def test_requests_beyond_the_in_flight_cap_answer_503_at_once(echo: Echo) -> None:
    """Two requests hang in a slow upstream (max_in_flight=2): the third is refused without waiting
    for a slot or reaching the upstream; once they are answered, requests pass again."""
    settings = gateway_settings(
        upstreams={"billing": upstream(echo.url, "/billing", max_in_flight=2)},
        rate_limits_enabled=False,
        jwks_url=f"{echo.url}/jwks",
    )
    async with http_gateway(settings) as (_, url), httpx.AsyncClient(base_url=url) as http:
        slow_ids = [uuid.uuid4().hex, uuid.uuid4().hex]
        slow = [
            asyncio.ensure_future(
                http.get("/billing/sleep", params={"seconds": 1}, headers={"X-Request-ID": request_id})
            )
            for request_id in slow_ids
        ]
        await eventually(lambda: all(echo.requests_with(i) for i in slow_ids), "both to reach the upstream")
        refused_id = uuid.uuid4().hex
        busy = await http.get("/billing/plans", headers={"X-Request-ID": refused_id})
        assert not any(task.done() for task in slow)  # refused while both were still in flight
        assert [(await task).status_code for task in slow] == [200, 200]
        after = await http.get("/billing/plans")
    assert busy.status_code == 503
    assert busy.headers["content-type"] == "application/problem+json"
    assert busy.json()["type"].endswith("/upstream-busy")
    assert busy.headers["retry-after"] == "1"
    assert echo.requests_with(refused_id) == []
    assert after.status_code == 200


async def test_paths_no_api_prefix_claims_go_to_the_web_front(echo: Echo) -> None:
    web, api = Echo(), echo
    with serve_in_thread(web.app()) as web_url:
        web.url = web_url
        settings = gateway_settings(
            upstreams={
                "billing": upstream(api.url, "/billing"),
                "web": upstream(web.url, "/", openapi_path=None),
            },
            jwks_url=f"{api.url}/jwks",
            rate_limits_enabled=False,
        )
        async with http_gateway(settings) as (_, url), httpx.AsyncClient(base_url=url) as http:
            for path in ("/", "/login", "/account", "/static/app.css", "/favicon.ico"):
                request_id = uuid.uuid4().hex
                page = await http.get(path, headers={"X-Request-ID": request_id})
                assert page.status_code == 200, (path, page.text)
                assert [seen.path for seen in web.requests_with(request_id)] == [path]
            request_id = uuid.uuid4().hex
            assert (await http.get("/billing/plans", headers={"X-Request-ID": request_id})).status_code == 200
            assert web.requests_with(request_id) == [] and len(api.requests_with(request_id)) == 1
            # The gateway's own routes stay its own; the webhook stays unrouted.
            for path in ("/healthz", "/metrics", "/openapi.json", "/docs"):
                request_id = uuid.uuid4().hex
                response = await http.get(path, headers={"X-Request-ID": request_id})
                assert response.status_code == 200, path
                assert web.requests_with(request_id) == [], path
            request_id = uuid.uuid4().hex
            webhook = await http.post(
                "/billing/stripe/webhook", content=b"{}", headers={"X-Request-ID": request_id}
            )
            assert webhook.status_code == 404
            assert web.requests_with(request_id) == [] and api.requests_with(request_id) == []


def test_the_default_upstreams_send_every_other_path_to_the_web_front() -> None:
    settings = gateway_settings(web_url="http://web.internal:8004")
    assert settings.upstreams["web"].url == "http://web.internal:8004"
    assert settings.upstreams["web"].prefixes == ["/"]
    assert settings.upstreams["web"].openapi_path is None  # pages, not API: not in the merged document
    table = RouteTable(settings)
    assert table.upstream_for("/reset-password") == "web"
    assert table.upstream_for("/auth/login") == "auth"
    assert table.upstream_for("/.well-known/jwks.json") == "auth"
    # The billing pages the emails and Stripe Checkout link to, under billing-service's API prefix
    for page in ("/billing", "/billing/success", "/billing/cancel", "/billing/change"):
        assert table.upstream_for(page) == "web", page
    for api in ("/billing/plans", "/billing/subscriptions/me", "/billing/payments/me", "/billing/success/x"):
        assert table.upstream_for(api) == "billing", api
    assert table.match("GET", "/readyz") is None  # the gateway's own
