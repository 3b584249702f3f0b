"""The console's System page over plain HTTP in this process: each service's
`GET /<service>/admin/system` stood in for by a fake (auth's admin by test_admin_pages' fake):
readiness, outbox, queues with their consumers and dead letters, Stripe's lag, a service that does
not answer and a broker that is away shown as such (never a 500), who may open it, French."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from test_admin_pages import FakeAuth, signed_in

from conftest import problem


def state(service: str, **extra: Any) -> dict[str, Any]:
    return {
        "service": service,
        "ready": True,
        "checks": {"database": "ok", "redis": "ok"},
        "reported": {"broker": "ok"},
        "outbox": {"backlog": 0, "oldest_age_seconds": None},
        "outbox_error": None,
        "consumers": [],
        "queues_error": None,
        "extra": {},
        **extra,
    }


class FakeSystem(FakeAuth):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.states: dict[str, httpx.Response] = {
            "/auth/admin/system": httpx.Response(
                200, json=state("auth-service", outbox={"backlog": 7, "oldest_age_seconds": 125.0})
            ),
            "/billing/admin/system": httpx.Response(
                200,
                json=state(
                    "billing-service",
                    consumers=[
                        {
                            "name": "billing-service",
                            "main": {"name": "billing-service", "message_count": 12, "consumer_count": 2},
                            "dlq": {"name": "billing-service.dlq", "message_count": 4, "consumer_count": 0},
                        }
                    ],
                    extra={
                        "stripe_events_pending": 1,
                        "stripe_events_failed": 2,
                        "stripe_oldest_waiting_seconds": 3600.0,
                        "stripe_applied_last_hour": 30,
                        "stripe_apply_lag_median_seconds": 0.4,
                        "stripe_apply_lag_max_seconds": 90.0,
                    },
                ),
            ),
            "/notifications/admin/system": httpx.Response(
                200,
                json=state(
                    "notification-service",
                    ready=False,
                    checks={"database": "fail: ConnectionRefusedError", "redis": "ok"},
                    outbox=None,
                    queues_error="AMQPConnectionError",
                ),
            ),
        }

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path not in self.states:
            return super().__call__(request)
        self.calls.append((request.method, path, {}, {}))
        if self.refuse_with:
            return problem(403, self.refuse_with)
        return self.states[path]


async def test_the_system_page_shows_each_service(make_web: Callable[..., object]) -> None:
    api = FakeSystem()
    web = await signed_in(make_web, api)
    page = await web.get("/admin/system")
    assert page.status_code == 200
    text = page.text
    assert text.count('class="badge ok">ready<') == 2 and "not ready" in text
    assert "7 events to publish" in text and "the oldest 2 minutes old" in text
    assert "<td>12</td>" in text and "<td>2</td>" in text and 'class="badge warn">4<' in text
    assert "1 to apply, 2 failed" in text and "the oldest 60 minutes old" in text
    assert 'href="/admin/billing/stripe-events?status=failed"' in text
    assert "median 400 ms, worst 2 minutes (30 applied in the last hour)" in text
    assert (
        "ConnectionRefusedError" in text
        and "the message broker does not answer (AMQPConnectionError)" in text
    )


async def test_a_service_that_does_not_answer_is_shown_as_such(make_web: Callable[..., object]) -> None:
    api = FakeSystem()
    api.states["/billing/admin/system"] = problem(502, "bad-gateway")
    web = await signed_in(make_web, api)
    page = await web.get("/admin/system")
    assert page.status_code == 200
    assert "not answering" in page.text and "did not answer" in page.text


async def test_only_admins_with_a_proven_second_factor_see_it(make_web: Callable[..., object]) -> None:
    for fake, heading in (
        (FakeSystem(roles=()), "Administrators only"),
        (FakeSystem(factor=False), "Set up a second factor first"),
        (FakeSystem(amr=("pwd",)), "Sign in again with your second factor"),
    ):
        web = await signed_in(make_web, fake)
        page = await web.get("/admin/system")
        assert page.status_code == 403 and heading in page.text
        assert not [c for c in fake.calls if c[1].endswith("/admin/system")]
    refused = FakeSystem()
    refused.refuse_with = "mfa-sign-in-required"  # auth's own refusal reaches the same page
    web = await signed_in(make_web, refused)
    page = await web.get("/admin/system")
    assert page.status_code == 403 and "Sign in again with your second factor" in page.text


async def test_the_system_page_in_french(make_web: Callable[..., object]) -> None:
    web = await signed_in(make_web, FakeSystem(), locale="fr")
    page = await web.get("/admin/system")
    assert "Système" in page.text and "prêt" in page.text and "événements à publier" in page.text
