"""issue 22's drill row "billing-service hung", through the gateway with its default settings: an
upstream (a small app under uvicorn) behind the platform's TCP proxy is stalled, so it accepts
and answers nothing, while clients send a steady stream of requests; the table shows how the
gateway answered them and how long anyone waited.

    uv run python bench/gateway_hung_upstream.py [--seconds 20] [--rate 8]

The drill found no answer for up to 30 s, a 504 only at the 30 s read timeout, and a circuit that
opened only after five of those; the gateway now sheds it within seconds (gateway/README.md, "A
hung upstream").
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
import uuid
from collections import Counter

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gatehouse_platform.tcp_proxy import TcpProxy
from gatehouse_platform.testing import ServiceProcess, serve_in_thread
from support import free_port, print_table


async def plans(request: Request) -> JSONResponse:
    return JSONResponse({"items": [], "next_cursor": None})


async def main(seconds: float, rate: float) -> None:
    upstream_app = Starlette(routes=[Route("/billing/plans", plans), Route("/readyz", plans)])
    with serve_in_thread(upstream_app) as upstream_url:
        link = TcpProxy.before(upstream_url)
        await link.open()
        env = {
            **os.environ,
            "GATEWAY_ENVIRONMENT": "test",
            "GATEWAY_LOG_LEVEL": "WARNING",
            "GATEWAY_UPSTREAMS": json.dumps(
                {"billing": {"url": link.url(upstream_url), "prefixes": ["/billing"]}}
            ),
            "GATEWAY_JWKS_URL": f"{upstream_url}/jwks",  # no route here needs a token
            "GATEWAY_REDIS_KEY_PREFIX": f"bench-hung-{uuid.uuid4().hex[:8]}",
            "GATEWAY_RATE_LIMITS_ENABLED": "false",
            "GATEWAY_CONSUME_EVENTS": "false",
        }
        gateway = ServiceProcess("gateway.cli", env, free_port())  # `gateway serve`, defaults otherwise
        await gateway.start()
        answers: list[tuple[float, float, str]] = []  # (sent after the hang, waited, answer)
        try:
            async with httpx.AsyncClient(
                base_url=gateway.url, timeout=60, limits=httpx.Limits(max_connections=10_000)
            ) as http:
                assert (await http.get("/billing/plans")).status_code == 200
                link.stall()
                hung_at = time.monotonic()

                async def one() -> None:
                    sent = time.monotonic()
                    response = await http.get("/billing/plans")
                    kind = "" if response.status_code == 200 else response.json()["type"].rsplit("/", 1)[1]
                    answers.append(
                        (sent - hung_at, time.monotonic() - sent, f"{response.status_code} {kind}")
                    )

                tasks = []
                for _ in range(int(seconds * rate)):
                    tasks.append(asyncio.ensure_future(one()))
                    await asyncio.sleep(1 / rate)
                await asyncio.gather(*tasks)
        finally:
            link.resume()
            await link.close()
            await gateway.terminate()
    opened = [sent + waited for sent, waited, answer in answers if "circuit-open" in answer]
    rows = [
        (f"requests ({rate:g}/s for {seconds:g} s, the upstream hung)", f"{len(answers)}"),
        *(
            (f"answered {answer}", f"{count}")
            for answer, count in sorted(Counter(a for *_, a in answers).items())
        ),
        ("longest wait for an answer", f"{max(waited for _, waited, _ in answers):.1f} s"),
        ("first 503 circuit-open, after the hang began", f"{min(opened):.1f} s" if opened else "never"),
    ]
    print_table(rows)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--rate", type=float, default=8, help="requests per second")
    args = parser.parse_args()
    asyncio.run(main(args.seconds, args.rate))
