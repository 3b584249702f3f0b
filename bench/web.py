"""What a page costs the web front: server render time (p50, p99 over many requests, each page
handled in this process through its ASGI app: routing, dependencies, template, headers) and page
weight (the HTML plus the CSS and JS it loads; there are no images).

    uv run python bench/web.py [--requests 400]

The API is not part of the figure: for the pages that call it (`/account`: `GET /auth/me`,
`/auth/identities`; `/account/sessions`; the billing pages: plans, my subscription, my payments, my card, a
plan change's preview), an in-process stand-in answers at once, so the row measures the web's own
work. Targets (issue 14): a page renders in at most 20 ms p50 and weighs at most 100 KB with its
CSS and JS.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import time
from typing import Any

import httpx
from starlette.responses import Response

from gatehouse_web.api import Api
from gatehouse_web.main import create_app
from gatehouse_web.session import Sessions
from gatehouse_web.settings import Settings
from support import percentile

PAGES = [
    "/login",
    "/register",
    "/login/code",
    "/forgot-password",
    "/reset-password?token=abcdefghijklmnop",
    "/verify-email?token=abcdefghijklmnop",
    "/account",
    "/account/sessions",
    "/account/deactivate",
    "/billing",
    "/billing/change?plan=business",
    "/no-such-page",
]
ME = {
    "id": "6c1f6a3e-8f0e-4c1e-9a55-3f4f0c7b2a10",
    "email": "ada@example.com",
    "username": "ada",
    "email_verified": True,
    "is_active": True,
    "roles": [],
    "registration_method": "email",
    "created_at": "2026-01-05T10:00:00+00:00",
    "last_login_at": None,
    "profile": {"display_name": "Ada Lovelace", "locale": "en"},
}
PLAN = {"description": "", "tier": "pro", "currency": "usd", "interval": "month", "interval_count": 1}
PLANS = [
    PLAN | {"code": code, "name": name, "amount": amount, "trial_days": trial, "features": ["api", "sso"]}
    for code, name, amount, trial in (
        ("starter", "Starter", 900, 0),
        ("pro", "Pro", 2900, 14),
        ("business", "Business", 9900, 0),
    )
]
SUBSCRIPTION = {
    "status": "active",
    "plan": {"code": "pro", "name": "Pro"},
    "amount": 2900,
    "currency": "usd",
    "interval": "month",
    "current_period_end": "2026-04-01T10:00:00+00:00",
    "cancel_at_period_end": False,
    "trial_end": None,
}
PAYMENT = {
    "status": "paid",
    "amount_due": 2900,
    "amount_paid": 2900,
    "currency": "usd",
    "billing_reason": "subscription_cycle",
    "hosted_invoice_url": "https://invoice.stripe.com/i/in_1",
    "paid_at": "2026-03-01T10:00:05+00:00",
    "created_at": "2026-03-01T10:00:00+00:00",
}
LINE = {
    "proration": True,
    "period_start": "2026-03-16T10:00:00+00:00",
    "period_end": "2026-04-01T10:00:00+00:00",
}
PREVIEW = {
    "due_now": True,
    "amount_due": 5000,
    "currency": "usd",
    "proration_date": 1772960000,
    "lines": [
        LINE | {"description": "Unused time on Pro", "amount": -1450},
        LINE | {"description": "Remaining time on Business", "amount": 6450},
    ],
}
ANSWERS = {
    "/billing/plans": {"items": PLANS, "next_cursor": None},
    "/billing/subscriptions/me": SUBSCRIPTION,
    "/billing/payments/me": {"items": [PAYMENT] * 12, "next_cursor": None},
    "/billing/subscriptions/upgrade/preview": PREVIEW,
    "/billing/payment-method/me": {"brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2030},
}
IDENTITIES = {
    "items": [
        {
            "provider": "github",
            "email": "ada@example.com",
            "email_verified": True,
            "created_at": "2026-01-05T10:00:00+00:00",
            "last_login_at": None,
        }
    ],
    "has_password": True,
}
SESSIONS = {
    "items": [
        {
            "id": f"6c1f6a3e-8f0e-4c1e-9a55-3f4f0c7b2a1{i}",
            "current": i == 0,
            "user_agent": agent,
            "ip": "198.51.100.7",
            "created_at": "2026-01-05T10:00:00+00:00",
            "last_used_at": "2026-01-05T11:00:00+00:00",
        }
        for i, agent in enumerate(
            [
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0.0.0 "
                "Safari/537.36",
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
                "Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0",
            ]
        )
    ]
}
TARGET_MS, TARGET_KB = 20.0, 100.0


def answer(request: httpx.Request) -> httpx.Response:
    canned = ANSWERS | {"/auth/identities": IDENTITIES, "/auth/sessions": SESSIONS}
    return httpx.Response(200, json=canned.get(request.url.path, ME))


async def asgi_get(app: Any, path: str, cookie: str) -> tuple[int, bytes, float]:
    """One GET through the app; the time from the call to the last body byte."""
    raw_path, _, query = path.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": raw_path,
        "raw_path": raw_path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"web.bench"), (b"accept-language", b"en"), (b"cookie", cookie.encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8004),
        "state": {},
    }
    body = bytearray()
    status = 0
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.Event().wait()  # the client stays connected; whoever listens is cancelled
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            body.extend(message.get("body", b""))

    start = time.perf_counter()
    await app(scope, receive, send)
    return status, bytes(body), time.perf_counter() - start


async def main(requests: int) -> None:
    settings = Settings(environment="test", log_level="WARNING", log_json=False, api_url="http://api.bench:9")
    app = create_app(settings)
    app.state.web.api = Api(settings, transport=httpx.MockTransport(answer))
    signed = Response()
    Sessions(settings).sign_in(
        signed, {"access_token": "a.b.c", "expires_in": 900, "refresh_token": "r" * 43}
    )
    cookie = "; ".join(
        value.decode().split(";", 1)[0] for name, value in signed.raw_headers if name == b"set-cookie"
    )
    assets: dict[str, int] = {}
    rows = []
    for path in PAGES:
        for _ in range(20):  # warm up: templates compiled, caches filled
            await asgi_get(app, path, cookie)
        times = []
        for _ in range(requests):
            status, html, elapsed = await asgi_get(app, path, cookie)
            assert status == (404 if path == "/no-such-page" else 200), (path, status)
            times.append(elapsed * 1000)
        linked = re.findall(r'(?:href|src)="(/(?:static/[^"]+\.(?:css|js)|theme\.css)[^"]*)"', html.decode())
        weight = len(html)
        for asset in linked:
            if asset not in assets:
                assets[asset] = len((await asgi_get(app, asset, ""))[1])
            weight += assets[asset]
        rows.append((path.split("?")[0], statistics.median(times), percentile(times, 99), len(html), weight))

    print(f"\nweb: server render time over {requests} requests per page, and page weight (HTML + CSS + JS)\n")
    print("| page | p50 ms | p99 ms | HTML KB | with CSS+JS KB | within target |")
    print("|---|---|---|---|---|---|")
    for path, p50, p99, html_size, weight in rows:
        ok = "yes" if p50 <= TARGET_MS and weight / 1024 <= TARGET_KB else "NO"
        print(f"| {path} | {p50:.2f} | {p99:.2f} | {html_size / 1024:.1f} | {weight / 1024:.1f} | {ok} |")
    print(
        f"\ntargets: p50 ≤ {TARGET_MS:.0f} ms, ≤ {TARGET_KB:.0f} KB; assets: "
        + ", ".join(f"{a.split('?')[0]} {size / 1024:.1f} KB" for a, size in assets.items())
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=400)
    asyncio.run(main(parser.parse_args().requests))
