"""The admin API: tokens verified through the issuer's JWKS, filters and pagination, resend, replay."""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from conftest import Stack, envelope, new_email, sample, wait_for_deliveries, wait_for_mail
from gatehouse_platform.testing import TestIssuer

pytestmark = pytest.mark.timeout(60)

Db = async_sessionmaker[AsyncSession]
SOME_ID = "0b7e1c52-3a7d-4f0e-9c1b-6d2a8e4f5a10"  # fixed: xdist workers must collect the same test ids


@pytest.fixture(scope="module")
async def history(stack: Stack, db: Db) -> dict[str, Any]:
    """Five emails to one recipient, in a known order: three kinds of event, all sent."""
    to = new_email()
    events = [
        envelope(sample("user.password_changed", email=to)),
        envelope(sample("subscription.activated", email=to)),
        envelope(sample("user.login_code_requested", email=to, code="918273")),
        envelope(sample("subscription.activated", email=to)),
        envelope(sample("user.password_changed", email=to)),
    ]
    ids = []
    for event in events:  # one at a time, so creation order is publication order
        await stack.publish(event)
        [row] = await wait_for_deliveries(db, event.id, "sent")
        ids.append(str(row.id))
    return {"to": to, "events": events, "ids": ids}


@pytest.mark.parametrize(
    "path",
    [
        "/notifications/deliveries",
        f"/notifications/deliveries/{SOME_ID}",
    ],
)
async def test_deliveries_need_a_token(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/notifications/deliveries"),
        ("GET", f"/notifications/deliveries/{SOME_ID}"),
        ("POST", f"/notifications/deliveries/{SOME_ID}/resend"),
        ("GET", "/notifications/dead-letters"),
        ("POST", "/notifications/dead-letters/replay"),
        ("GET", "/notifications/admin/system"),
    ],
)
async def test_a_signed_in_user_who_is_not_admin_is_forbidden(
    client: httpx.AsyncClient, issuer: TestIssuer, method: str, path: str
) -> None:
    response = await client.request(method, path, headers=issuer.bearer(roles=["user"]))
    assert response.status_code == 403
    assert response.json()["status"] == 403


async def test_admin_tokens_signed_by_another_key_or_for_another_audience_are_refused(
    client: httpx.AsyncClient, issuer: TestIssuer
) -> None:
    stranger = TestIssuer(kid=issuer.kid)  # same kid and claims, a key the JWKS does not hold
    response = await client.get("/notifications/deliveries", headers=stranger.bearer(roles=["admin"]))
    assert response.status_code == 401
    assert response.json()["detail"] == "signature invalid"

    response = await client.get(
        "/notifications/deliveries", headers=issuer.bearer(roles=["admin"], aud="somebody-else")
    )
    assert response.status_code == 401


async def test_an_expired_admin_token_is_refused(client: httpx.AsyncClient, issuer: TestIssuer) -> None:
    token = issuer.token(roles=["admin"], exp=int(time.time()) - 60)
    response = await client.get("/notifications/deliveries", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]


async def test_deliveries_are_listed_newest_first_in_pages(
    client: httpx.AsyncClient, admin: dict[str, str], history: dict[str, Any]
) -> None:
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"recipient": history["to"].upper(), "limit": 2}
        if cursor:
            params["cursor"] = cursor
        response = await client.get("/notifications/deliveries", params=params, headers=admin)
        assert response.status_code == 200, response.text
        body = response.json()
        seen += [item["id"] for item in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == list(reversed(history["ids"]))


async def test_deliveries_filter_by_event_type_status_and_time(
    client: httpx.AsyncClient, admin: dict[str, str], history: dict[str, Any], db: Db
) -> None:
    to = history["to"]

    async def ids(**params: Any) -> list[str]:
        response = await client.get(
            "/notifications/deliveries", params={"recipient": to, **params}, headers=admin
        )
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["items"]]

    first, second, third, fourth, fifth = history["ids"]
    assert await ids(event_type="subscription.activated") == [fourth, second]
    assert await ids(template="login_code") == [third]
    assert await ids(status="sent") == [fifth, fourth, third, second, first]
    assert await ids(status="failed") == []
    assert await ids(event_id=str(history["events"][0].id)) == [first]

    detail = (await client.get(f"/notifications/deliveries/{third}", headers=admin)).json()
    created = detail["created_at"]
    assert await ids(created_after=created) == [fifth, fourth, third]
    assert await ids(created_before=created) == [second, first]
    later = (datetime.fromisoformat(created) + timedelta(days=1)).isoformat()
    assert await ids(created_after=later) == []


async def test_one_delivery_and_what_it_keeps(
    client: httpx.AsyncClient, admin: dict[str, str], history: dict[str, Any]
) -> None:
    code_delivery = history["ids"][2]
    response = await client.get(f"/notifications/deliveries/{code_delivery}", headers=admin)
    assert response.status_code == 200
    body = response.json()
    assert body["template"] == "login_code"
    assert body["event_type"] == "user.login_code_requested"
    assert body["status"] == "sent"
    assert body["resendable"] is False
    assert body["subject"] == "Your Gatehouse sign-in code"
    assert body["message_id"].endswith("@mail.gatehouse.test>")
    assert "918273" not in response.text

    missing = await client.get(f"/notifications/deliveries/{SOME_ID}", headers=admin)
    assert missing.status_code == 404
    assert missing.json()["type"].endswith("/delivery-not-found")


async def test_a_cursor_we_did_not_give_is_refused(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    response = await client.get("/notifications/deliveries", params={"cursor": "bm9wZQ=="}, headers=admin)
    assert response.status_code == 400
    assert response.json()["type"].endswith("/invalid-cursor")


async def test_resend_sends_the_email_again_as_a_new_delivery(
    stack: Stack, client: httpx.AsyncClient, admin: dict[str, str], maildir: Path, db: Db
) -> None:
    to = new_email()
    event = envelope(sample("subscription.cancel_scheduled", email=to))
    await stack.publish(event)
    [original] = await wait_for_deliveries(db, event.id, "sent")
    [first] = await wait_for_mail(maildir, to)

    response = await client.post(f"/notifications/deliveries/{original.id}/resend", headers=admin)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["resend_of"] == str(original.id)
    assert body["status"] == "sent"
    assert body["id"] != str(original.id)
    messages = await wait_for_mail(maildir, to, count=2)
    assert messages[1]["Subject"] == first["Subject"]
    assert messages[1]["Message-ID"] == body["message_id"] != first["Message-ID"]
    assert str(messages[0].get_body(("plain",))) == str(messages[1].get_body(("plain",)))


async def test_an_email_with_a_one_time_secret_cannot_be_resent(
    client: httpx.AsyncClient, admin: dict[str, str], history: dict[str, Any]
) -> None:
    response = await client.post(f"/notifications/deliveries/{history['ids'][2]}/resend", headers=admin)
    assert response.status_code == 409
    problem = response.json()
    assert problem["type"].endswith("/resend-needs-new-secret")
    assert "request a new one" in problem["detail"]

    missing = await client.post(f"/notifications/deliveries/{uuid.uuid4()}/resend", headers=admin)
    assert missing.status_code == 404


async def test_replaying_an_empty_dead_letter_queue_moves_nothing(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    counted = await client.get("/notifications/dead-letters", headers=admin)
    assert counted.status_code == 200, counted.text
    assert counted.json() == {"count": 0}
    response = await client.post("/notifications/dead-letters/replay", params={"limit": 5}, headers=admin)
    assert response.status_code == 200
    assert response.json() == {"replayed": 0}
    for limit in ("0", "1001", "many"):
        refused = await client.post(
            "/notifications/dead-letters/replay", params={"limit": limit}, headers=admin
        )
        assert refused.status_code == 422 and refused.headers["content-type"] == "application/problem+json"


async def test_the_system_state_shows_readiness_and_both_consumers_queues(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    answer = await client.get("/notifications/admin/system", headers=admin)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["service"] == "notification-service" and body["checks"]["database"] == "ok"
    assert set(body["reported"]) == {"broker", "smtp"} and body["outbox"] is None
    assert body["queues_error"] is None and len(body["consumers"]) == 2
    for consumer in body["consumers"]:
        assert consumer["dlq"]["name"] == f"{consumer['name']}.dlq"
        assert consumer["main"]["message_count"] >= 0 and consumer["dlq"]["message_count"] >= 0
