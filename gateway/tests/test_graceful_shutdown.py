"""SIGTERM mid-load: the gateway (a real `gateway serve` process) stops accepting connections,
lets every proxied request in flight finish with its upstream's answer, then exits cleanly."""

from __future__ import annotations

import asyncio
import json
import os
import uuid

import httpx

from conftest import RUN, Echo, upstream
from gatehouse_platform import testing
from gatehouse_platform.tcp_proxy import TcpProxy
from gatehouse_platform.testing import free_port

IN_FLIGHT = 20
LATE = 10


async def test_sigterm_lets_requests_in_flight_finish_and_refuses_new_ones(echo: Echo, jwks_url: str) -> None:
    env = {
        **os.environ,
        "GATEWAY_ENVIRONMENT": "test",
        "GATEWAY_LOG_JSON": "false",
        "GATEWAY_UPSTREAMS": json.dumps({"billing": upstream(echo.url, "/billing", read_timeout_seconds=10)}),
        "GATEWAY_JWKS_URL": jwks_url,
        "GATEWAY_REDIS_KEY_PREFIX": f"{RUN}:sigterm",
        "GATEWAY_RATE_LIMITS_ENABLED": "false",
        "GATEWAY_CONSUME_EVENTS": "false",
    }
    gateway = testing.ServiceProcess("gateway.cli", env, free_port())
    try:
        await gateway.start()
        ids = [uuid.uuid4().hex for _ in range(IN_FLIGHT + LATE)]
        # A connection per request, so a late request is refused before anything is sent.
        no_reuse = httpx.Limits(max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=gateway.url, limits=no_reuse, timeout=30) as http:

            async def slow(request_id: str) -> int | str:
                try:
                    response = await http.get(
                        "/billing/sleep?seconds=1.5", headers={"X-Request-ID": request_id}
                    )
                    return response.status_code
                except (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError):
                    return "refused"

            in_flight = [asyncio.create_task(slow(i)) for i in ids[:IN_FLIGHT]]
            await testing.eventually(
                lambda: all(echo.requests_with(i) for i in ids[:IN_FLIGHT]),
                "every request to reach the upstream",
            )
            gateway.sigterm()
            await asyncio.sleep(0.3)  # the listening socket is closed by now
            late = await asyncio.gather(*(slow(i) for i in ids[IN_FLIGHT:]))
            answered = await asyncio.gather(*in_flight)
        assert answered == [200] * IN_FLIGHT, answered  # each finished with the upstream's answer
        assert late == ["refused"] * LATE, late
        assert not any(echo.requests_with(i) for i in ids[IN_FLIGHT:]), "nothing late reached the upstream"
        assert await gateway.wait() in testing.GRACEFUL_EXITS
    finally:
        gateway.kill()


async def test_sigterm_ends_the_workers_in_time_with_clients_gone_and_the_broker_gone(
    echo: Echo, jwks_url: str
) -> None:
    """issue 22: SIGTERM must end the process within its drain time whatever waits. Two workers;
    clients that sent a request (one to a slow upstream, whose answer the gateway still awaits) or
    half of one, then left (their connections wait in CLOSE-WAIT); the broker behind the denylist
    consumer gone (its link cut). The whole process tree exits within the drain (1 s) and the stop
    deadline (2 s)."""
    broker = TcpProxy.before("amqp://guest:guest@127.0.0.1:5672/")
    await broker.open()
    env = {
        **os.environ,
        "GATEWAY_ENVIRONMENT": "test",
        "GATEWAY_LOG_JSON": "false",
        "GATEWAY_UPSTREAMS": json.dumps({"billing": upstream(echo.url, "/billing", read_timeout_seconds=20)}),
        "GATEWAY_JWKS_URL": jwks_url,
        "GATEWAY_REDIS_KEY_PREFIX": f"{RUN}:sigterm-{uuid.uuid4().hex[:8]}",
        "GATEWAY_RATE_LIMITS_ENABLED": "false",
        "GATEWAY_CONSUME_EVENTS": "true",
        "GATEWAY_CONSUMER_NAME": f"gateway-sigterm-{uuid.uuid4().hex[:8]}",
        "GATEWAY_AMQP_URL": broker.url("amqp://guest:guest@127.0.0.1:5672/"),
        "GATEWAY_SHUTDOWN_GRACE_SECONDS": "1",
    }
    gateway = testing.ServiceProcess(
        "gateway.cli", env, free_port(), ["--workers", "2", "--stop-seconds", "2"]
    )
    try:
        await gateway.start(within=120, workers=2)  # each importing the gateway
        request_id = uuid.uuid4().hex
        for request in (
            f"GET /billing/sleep?seconds=6 HTTP/1.1\r\nhost: gw\r\nx-request-id: {request_id}\r\n\r\n",
            "GET /billing/plans HTTP/1.1\r\nhost: gw\r\n",
        ):
            _, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
            writer.write(request.encode())
            await writer.drain()
            writer.close()  # gone; the gateway has not closed its side
        await testing.eventually(
            lambda: echo.requests_with(request_id), "the slow request to reach the upstream"
        )
        await broker.close()
        gateway.sigterm()
        # Without the deadlines the consumer's stop waits for a broker that is not coming back.
        assert await gateway.wait(within=30) in testing.GRACEFUL_EXITS
    finally:
        gateway.kill()
        await broker.close()
