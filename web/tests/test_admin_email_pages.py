"""The console's email pages over plain HTTP in this process: notification-service's admin API
stood in for by a fake keeping its deliveries and dead letters (auth's by test_admin_pages' fake):
the filters reach the API, a delivery's details, resend and replay only after their confirmation,
the refusals as messages, a broker that is away, French. The replay runs in Chromium against the
real system in test_browser_admin.py."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from test_admin_pages import FakeAuth

from conftest import csrf_of, problem

SENT_ID = "1a2b3c4d-0000-4000-8000-000000000001"
FAILED_ID = "1a2b3c4d-0000-4000-8000-000000000002"
SECRET_ID = "1a2b3c4d-0000-4000-8000-000000000003"


def delivery(delivery_id: str, status: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": delivery_id,
        "event_id": "9f8e7d6c-0000-4000-8000-000000000000",
        "event_type": "subscription.past_due",
        "template": "payment_failed",
        "recipient": "grace@example.com",
        "subject": "Your payment did not go through",
        "status": status,
        "attempts": 1,
        "message_id": f"<{delivery_id}@gatehouse.test>",
        "smtp_code": None,
        "error": None,
        "resendable": True,
        "resend_of": None,
        "correlation_id": None,
        "created_at": "2026-02-03T04:05:06+00:00",
        "updated_at": "2026-02-03T04:05:06+00:00",
        "last_attempt_at": "2026-02-03T04:05:06+00:00",
        "sent_at": "2026-02-03T04:05:07+00:00" if status == "sent" else None,
        **extra,
    }


class FakeApi(FakeAuth):
    """auth-service (the admin signing in) and notification-service's admin endpoints."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.deliveries = {
            SENT_ID: delivery(SENT_ID, "sent"),
            FAILED_ID: delivery(FAILED_ID, "failed", smtp_code=550, error="550 mailbox unavailable"),
            SECRET_ID: delivery(SECRET_ID, "sent", template="verify_email", resendable=False),
        }
        self.dead_letters: int | None = 2  # None: the broker is away
        self.smtp_down = False
        self.previews = True  # GET /notifications/templates: not in production

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if not path.startswith("/notifications"):
            return super().__call__(request)
        body = json.loads(request.content) if request.content else {}
        self.calls.append((request.method, path, body, dict(request.url.params)))
        if self.refuse_with:
            return problem(403, "forbidden")
        if path == "/notifications/templates":
            if not self.previews:
                return problem(404, "not-found")
            return httpx.Response(200, json=[{"name": "payment_failed"}, {"name": "verify_email"}])
        if path == "/notifications/deliveries":
            params = request.url.params
            if params.get("cursor") == "stale":
                return problem(400, "invalid-cursor")
            found = [
                d
                for d in self.deliveries.values()
                if params.get("status") in (None, d["status"])
                and params.get("template") in (None, d["template"])
                and params.get("recipient") in (None, d["recipient"])
            ]
            return httpx.Response(200, json={"items": found, "next_cursor": "n2" if len(found) > 2 else None})
        if path == "/notifications/dead-letters":
            if self.dead_letters is None:
                return problem(503, "broker-unavailable")
            return httpx.Response(200, json={"count": self.dead_letters})
        if path == "/notifications/dead-letters/replay":
            if self.dead_letters is None:
                return problem(503, "broker-unavailable")
            replayed, self.dead_letters = self.dead_letters, 0
            return httpx.Response(200, json={"replayed": replayed})
        delivery_id = path.split("/")[3]
        if delivery_id not in self.deliveries:
            return problem(404, "delivery-not-found")
        if path.endswith("/resend"):
            if not self.deliveries[delivery_id]["resendable"]:
                return problem(409, "resend-needs-new-secret")
            if self.smtp_down:
                return problem(503, "smtp-unavailable")
            new_id = str(uuid.uuid4())
            self.deliveries[new_id] = delivery(new_id, "sent", resend_of=delivery_id)
            return httpx.Response(201, json=self.deliveries[new_id])
        return httpx.Response(200, json=self.deliveries[delivery_id])

    def posts(self) -> list[tuple[str, dict[str, str]]]:
        return [
            (path, params) for m, path, _, params in self.calls if m == "POST" and path.startswith("/notif")
        ]


async def signed_in(make_web: Callable[..., object], api: FakeApi, locale: str = "en") -> httpx.AsyncClient:
    web = await make_web(api=httpx.MockTransport(api))  # type: ignore[misc]
    assert isinstance(web, httpx.AsyncClient)
    web.headers["Accept-Language"] = locale
    page = await web.get("/login")
    answer = await web.post(
        "/login", data={"csrf_token": csrf_of(page.text), "login": "ada", "password": "pw"}
    )
    assert answer.status_code == 303
    return web


async def test_deliveries_are_found_by_address_status_and_template(make_web: Callable[..., object]) -> None:
    api = FakeApi()
    web = await signed_in(make_web, api)
    page = await web.get("/admin/email")
    assert page.status_code == 200
    assert "waiting in the dead-letter queue: 2." in page.text and "Replay the dead letters" in page.text
    assert page.text.count('href="/admin/email/deliveries/') == 3
    found = await web.get(
        "/admin/email",
        params={"recipient": " grace@example.com ", "status": "failed", "template": "payment_failed"},
    )
    assert found.text.count('href="/admin/email/deliveries/') == 1 and FAILED_ID in found.text
    listing = [params for m, path, _, params in api.calls if path == "/notifications/deliveries"][-1]
    assert listing == {
        "limit": "25",
        "recipient": "grace@example.com",
        "status": "failed",
        "template": "payment_failed",
    }
    assert '<option value="failed" selected>' in found.text  # the filters stay as chosen
    unknown_status = await web.get("/admin/email", params={"status": "lost"})
    assert (
        "status"
        not in [params for m, path, _, params in api.calls if path == "/notifications/deliveries"][-1]
    )
    assert unknown_status.status_code == 200
    stale = await web.get("/admin/email", params={"cursor": "stale"})
    assert stale.status_code == 303 and stale.headers["location"] == "/admin/email"
    assert (await web.get("/admin/email", params={"recipient": "x" * 400})).status_code == 404


async def test_without_the_template_list_production_types_the_template(
    make_web: Callable[..., object],
) -> None:
    api = FakeApi()
    api.previews = False
    web = await signed_in(make_web, api)
    page = await web.get("/admin/email", params={"template": "payment_failed"})
    assert page.status_code == 200
    assert '<input id="f-template" name="template" type="text" value="payment_failed"' in page.text


async def test_a_deliverys_details_and_resend_after_confirming(make_web: Callable[..., object]) -> None:
    api = FakeApi()
    web = await signed_in(make_web, api)
    page = await web.get(f"/admin/email/deliveries/{FAILED_ID}")
    assert page.status_code == 200
    for text in ("550 mailbox unavailable", "subscription.past_due", f"&lt;{FAILED_ID}@gatehouse.test&gt;"):
        assert text in page.text, text
    asked = await web.post(
        f"/admin/email/deliveries/{FAILED_ID}/resend", data={"csrf_token": csrf_of(page.text)}
    )
    assert "Please confirm" in asked.text
    assert "Send “Your payment did not go through” to grace@example.com again?" in asked.text
    assert api.posts() == []
    done = await web.post(
        f"/admin/email/deliveries/{FAILED_ID}/resend",
        data={"csrf_token": csrf_of(asked.text), "confirmed": "yes"},
    )
    assert done.status_code == 303
    assert api.posts() == [(f"/notifications/deliveries/{FAILED_ID}/resend", {})]
    new = await web.get(done.headers["location"])
    assert "The email was sent again: this is the new delivery." in new.text
    assert f'href="/admin/email/deliveries/{FAILED_ID}"' in new.text  # sent again from


async def test_a_resend_refused_is_said_on_the_deliverys_page(make_web: Callable[..., object]) -> None:
    api = FakeApi()
    web = await signed_in(make_web, api)
    secret = await web.get(f"/admin/email/deliveries/{SECRET_ID}")
    assert "cannot be sent again" in secret.text and "Send it again" not in secret.text
    refused = await web.post(
        f"/admin/email/deliveries/{SECRET_ID}/resend",
        data={"csrf_token": csrf_of(secret.text), "confirmed": "yes"},
    )
    assert refused.status_code == 409 and "the person asks for a new one instead" in refused.text
    api.smtp_down = True
    down = await web.post(
        f"/admin/email/deliveries/{SENT_ID}/resend",
        data={"csrf_token": csrf_of(secret.text), "confirmed": "yes"},
    )
    assert down.status_code == 409 and "The mail server cannot be reached." in down.text
    missing = await web.get(f"/admin/email/deliveries/{uuid.uuid4()}")
    assert missing.status_code == 404
    no_csrf = await web.post(f"/admin/email/deliveries/{SENT_ID}/resend", data={"confirmed": "yes"})
    assert no_csrf.status_code == 403
    assert len(api.posts()) == 2  # the refused two; nothing without the token


async def test_dead_letters_are_replayed_after_confirming(make_web: Callable[..., object]) -> None:
    api = FakeApi()
    web = await signed_in(make_web, api)
    page = await web.get("/admin/email")
    asked = await web.post("/admin/email/dead-letters/replay", data={"csrf_token": csrf_of(page.text)})
    assert "Put the 2 dead letters back in the queue?" in asked.text
    assert api.posts() == []
    done = await web.post(
        "/admin/email/dead-letters/replay", data={"csrf_token": csrf_of(asked.text), "confirmed": "yes"}
    )
    assert done.status_code == 303 and done.headers["location"] == "/admin/email?replayed=2"
    assert api.posts() == [("/notifications/dead-letters/replay", {"limit": "1000"})]
    after = await web.get(done.headers["location"])
    assert "2 dead letters were put back in the queue." in after.text
    assert "No dead letters: every event was handled." in after.text


async def test_a_broker_that_is_away_is_said_not_hidden(make_web: Callable[..., object]) -> None:
    api = FakeApi()
    api.dead_letters = None
    web = await signed_in(make_web, api)
    page = await web.get("/admin/email")
    assert page.status_code == 200 and "the dead letters cannot be counted now" in page.text
    refused = await web.post(
        "/admin/email/dead-letters/replay", data={"csrf_token": csrf_of(page.text), "confirmed": "yes"}
    )
    assert refused.status_code == 503 and "The message broker cannot be reached." in refused.text


@pytest.mark.parametrize("path", ["/admin/email", f"/admin/email/deliveries/{SENT_ID}"])
async def test_the_email_pages_are_for_admins_with_a_proven_second_factor(
    make_web: Callable[..., object], path: str
) -> None:
    web = await signed_in(make_web, FakeApi(roles=()))
    assert (await web.get(path)).status_code == 403
    web = await signed_in(make_web, FakeApi(amr=("pwd",)))
    assert "Sign in again with your second factor" in (await web.get(path)).text


async def test_the_email_pages_in_french(make_web: Callable[..., object]) -> None:
    web = await signed_in(make_web, FakeApi(), locale="fr")
    page = await web.get("/admin/email")
    assert "Lettres mortes" in page.text and "échoué" in page.text
