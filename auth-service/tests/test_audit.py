"""The security audit trail: an entry for every audited action (the row and the API), pages, the
admin's filters, retention; and the new sign-in alert."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from authenticator import SoftAuthenticator
from fastapi import FastAPI
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from test_claims import claims
from test_deactivation_and_admin import admin  # noqa: F401  (a fixture)
from test_mfa import enable_totp, first_factor, second_factor, totp_code
from test_oauth import Browser, link_github, provider_user
from test_passkeys import add_passkey, sign_in, sign_in_options

from auth_service.maintenance import purge_expired
from auth_service.models import AuditEvent
from auth_service.settings import Settings
from conftest import PASSWORD, MovableClock, bearer, login, new_email, register, signed_up
from gatehouse_platform.db import utcnow
from gatehouse_platform.models import OutboxMessage
from gatehouse_platform.pytest_plugin import EventTap

Sessions = async_sessionmaker[AsyncSession]
NEW_PASSWORD = "a brand new passphrase 2"


async def rows_of(db: Sessions, user_id: str) -> list[AuditEvent]:
    """The user's audit rows, oldest first."""
    async with db() as session:
        stmt = select(AuditEvent).where(AuditEvent.user_id == uuid.UUID(user_id))
        return list((await session.scalars(stmt.order_by(AuditEvent.occurred_at, AuditEvent.id))).all())


async def my_events(client: httpx.AsyncClient, tokens: dict[str, Any], **params: Any) -> list[dict[str, Any]]:
    response = await client.get(
        "/auth/audit-events/me", headers=bearer(tokens), params={"limit": 200, **params}
    )
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def sid(tokens: dict[str, Any]) -> str:
    return str(claims(tokens).sid)


async def alerts_staged(db: Sessions, user_id: str) -> list[dict[str, Any]]:
    """The `user.new_sign_in` events staged in the outbox for the user (published or not)."""
    async with db() as session:
        stmt = select(OutboxMessage.payload).where(OutboxMessage.event_type == "user.new_sign_in")
        return [p for p in (await session.scalars(stmt)).all() if p["data"]["user_id"] == user_id]


@pytest.fixture
async def far_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client on another network (198.51.100.0/24) than the default one (127.0.0.1)."""
    transport = httpx.ASGITransport(app=app, client=("198.51.100.23", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://auth.test") as far:
        yield far


# Sign-ins


async def test_sign_ins_and_failures_are_recorded_with_method_ip_and_user_agent(
    client: httpx.AsyncClient, db: Sessions
) -> None:
    user = await register(client)
    wrong = await client.post(
        "/auth/login",
        json={"email": user["email"], "password": "not the password"},
        headers={"User-Agent": "UA/1"},
    )
    assert wrong.status_code == 401
    assert wrong.json()["type"].endswith("/invalid-credentials")
    tokens = await login(client, user["email"], **{"User-Agent": "UA/1"})

    failed, succeeded = await rows_of(db, user["id"])
    assert (failed.type, failed.method, str(failed.ip), failed.user_agent) == (
        "sign_in.failed",
        "password",
        "127.0.0.1",
        "UA/1",
    )
    assert (succeeded.type, succeeded.method, succeeded.user_agent) == (
        "sign_in.succeeded",
        "password",
        "UA/1",
    )
    assert succeeded.network == "127.0.0.0/24" and succeeded.device is not None
    assert succeeded.details == {"new_device": True, "new_network": True, "alerted": False}

    listed = await my_events(client, tokens)
    assert [e["type"] for e in listed] == ["sign_in.succeeded", "sign_in.failed"]  # newest first
    assert listed[0]["ip"] == "127.0.0.1" and listed[0]["user_agent"] == "UA/1"
    assert listed[0]["user_id"] == user["id"] and listed[0]["actor_id"] is None
    assert "device" not in listed[0] and "network" not in listed[0]


async def test_an_unknown_account_leaves_no_entry_and_the_same_answer(
    client: httpx.AsyncClient, db: Sessions
) -> None:
    user = await register(client)
    unknown = await client.post("/auth/login", json={"email": new_email(), "password": "not the password"})
    known = await client.post("/auth/login", json={"email": user["email"], "password": "not the password"})
    assert unknown.status_code == known.status_code == 401
    assert {**unknown.json(), "request_id": None} == {**known.json(), "request_id": None}
    assert [r.type for r in await rows_of(db, user["id"])] == ["sign_in.failed"]


async def test_emailed_code_sign_in_failures_are_recorded(client: httpx.AsyncClient, db: Sessions) -> None:
    user = await register(client)
    await client.post("/auth/request/login-code", json={"email": user["email"]})
    wrong = await client.post("/auth/login/code", json={"email": user["email"], "code": "000000"})
    assert wrong.status_code == 401
    [failed] = await rows_of(db, user["id"])
    assert (failed.type, failed.method) == ("sign_in.failed", "email_code")


async def test_the_second_step_is_recorded_with_what_finished_it(
    client: httpx.AsyncClient, db: Sessions, clock: MovableClock
) -> None:
    user, tokens = await signed_up(client)
    secret, codes = await enable_totp(client, tokens, clock)
    wrong = await second_factor(client, await first_factor(client, user["email"]), code="000000")
    assert wrong.status_code == 401
    done = await second_factor(
        client, await first_factor(client, user["email"]), code=totp_code(secret, clock)
    )
    assert done.status_code == 200, done.text
    recovered = await second_factor(client, await first_factor(client, user["email"]), recovery_code=codes[0])
    assert recovered.status_code == 200, recovered.text

    rows = [r for r in await rows_of(db, user["id"]) if r.type.startswith("sign_in.")]
    assert [(r.type, r.method, r.details.get("second_step")) for r in rows] == [
        ("sign_in.succeeded", "password", None),
        ("sign_in.failed", "totp", None),
        ("sign_in.succeeded", "password", "totp"),
        ("sign_in.succeeded", "password", "recovery_code"),
    ]


async def test_passkey_and_provider_sign_ins_are_recorded(
    client: httpx.AsyncClient, db: Sessions, oauth_emulator: str
) -> None:
    user, tokens = await signed_up(client)
    authenticator = SoftAuthenticator()
    await add_passkey(client, tokens, authenticator)
    assert (await sign_in(client, authenticator.get(await sign_in_options(client)))).status_code == 200
    assert [r.method for r in await rows_of(db, user["id"]) if r.type == "sign_in.succeeded"] == [
        "password",
        "passkey",
    ]

    key = await provider_user(oauth_emulator, "github", email=new_email())
    signed_in = await Browser(client, "github").sign_in(key)
    assert signed_in.status_code == 200, signed_in.text
    provisioned = signed_in.json()["user"]["id"]
    assert [(r.type, r.method) for r in await rows_of(db, provisioned)] == [
        ("identity.linked", "github"),
        ("sign_in.succeeded", "github"),
    ]


# Changes to the account


async def test_every_change_to_how_one_signs_in_leaves_an_entry(
    client: httpx.AsyncClient, db: Sessions, clock: MovableClock
) -> None:
    user, tokens = await signed_up(client)
    other = await login(client, user["email"])
    third = await login(client, user["email"])
    authenticator = SoftAuthenticator()
    passkey = await add_passkey(client, tokens, authenticator, name="Phone")
    assert (await client.delete(f"/auth/passkeys/{passkey['id']}", headers=bearer(tokens))).status_code == 204
    await enable_totp(client, tokens, clock)
    clock.offset = 0  # the sign-in above stays recent
    assert (await client.post("/auth/mfa/recovery-codes", headers=bearer(tokens))).status_code == 200
    assert (await client.delete("/auth/mfa/totp", headers=bearer(tokens))).status_code == 204
    revoke_one = await client.delete(f"/auth/sessions/{sid(third)}", headers=bearer(tokens))
    assert revoke_one.status_code == 204, revoke_one.text
    changed = await client.post(
        "/auth/change-password",
        headers=bearer(tokens),
        json={"old_password": PASSWORD, "new_password": NEW_PASSWORD},
    )
    assert changed.status_code == 200, changed.text
    new_address = new_email()
    moved = await client.post(
        "/auth/change-email",
        headers=bearer(tokens),
        json={"new_email": new_address, "password": NEW_PASSWORD},
    )
    assert moved.status_code == 200, moved.text
    assert (await client.post("/auth/logout-all", headers=bearer(tokens))).status_code == 200
    del other

    rows = [r for r in await rows_of(db, user["id"]) if not r.type.startswith("sign_in.")]
    assert [(r.type, r.method) for r in rows] == [
        ("mfa.passkey_added", None),
        ("mfa.passkey_removed", None),
        ("mfa.totp_enabled", "totp"),
        ("mfa.recovery_codes_regenerated", None),
        ("mfa.totp_disabled", "totp"),
        ("sessions.revoked", None),
        ("sessions.revoked", None),
        ("password.changed", "change"),
        ("email.changed", None),
        ("sessions.revoked", None),
    ]
    assert rows[0].details == {"passkey_id": passkey["id"], "name": "Phone"}
    assert rows[5].details == {"reason": "revoked", "session_ids": [sid(third)]}
    assert rows[6].details["reason"] == "password_changed" and len(rows[6].details["session_ids"]) == 1
    assert rows[8].details == {"old_email": user["email"], "new_email": new_address}
    assert rows[9].details == {"reason": "logout_all", "session_ids": [sid(tokens)]}

    # the same, through the API (the session is over: sign in again with the new password)
    again = await login(client, new_address, NEW_PASSWORD)
    listed = [e["type"] for e in await my_events(client, again) if not e["type"].startswith("sign_in.")]
    assert listed == [r.type for r in reversed(rows)]


async def test_a_password_reset_and_a_self_deactivation_leave_entries(
    client: httpx.AsyncClient, db: Sessions, events: EventTap
) -> None:
    user, tokens = await signed_up(client)
    await client.post("/auth/forget-password", json={"email": user["email"]})
    requested = await events.wait_for("user.password_reset_requested", lambda e: e["subject"] == user["id"])
    reset = await client.post(
        "/auth/new-password", json={"token": requested["data"]["token"], "new_password": NEW_PASSWORD}
    )
    assert reset.status_code == 200, reset.text
    tokens = await login(client, user["email"], NEW_PASSWORD)
    gone = await client.post("/auth/deactivate", headers=bearer(tokens), json={"password": NEW_PASSWORD})
    assert gone.status_code == 200, gone.text
    rows = [(r.type, r.method, r.details.get("reason")) for r in await rows_of(db, user["id"])]
    assert rows == [
        ("sign_in.succeeded", "password", None),
        ("sessions.revoked", None, "password_reset"),
        ("password.changed", "reset", None),
        ("sign_in.succeeded", "password", None),
        ("sessions.revoked", None, "deactivated"),
        ("account.deactivated", None, None),
    ]


async def test_identities_linked_and_unlinked_leave_entries(
    client: httpx.AsyncClient, db: Sessions, oauth_emulator: str
) -> None:
    user, tokens = await signed_up(client)
    github_key = await provider_user(oauth_emulator, "github", email=new_email())
    linked = await link_github(client, tokens, github_key)
    assert linked.status_code == 200, linked.text
    assert (await client.delete("/auth/identities/github", headers=bearer(tokens))).status_code == 204
    rows = [(r.type, r.method) for r in await rows_of(db, user["id"])]
    assert rows[1:] == [("identity.linked", "github"), ("identity.unlinked", "github")]


# Admins


async def test_admin_actions_name_the_admin_and_admins_filter_the_trail(
    client: httpx.AsyncClient,
    db: Sessions,
    admin: dict[str, Any],  # noqa: F811
) -> None:
    user, tokens = await signed_up(client)
    target = user["id"]
    admin_id = admin["user"]["id"]
    for path in ("deactivate", "reactivate", "mfa/reset"):
        response = await client.post(f"/auth/admin/users/{target}/{path}", headers=bearer(admin))
        assert response.status_code in (200, 204), response.text
    granted = await client.put(
        f"/auth/admin/users/{target}/roles", headers=bearer(admin), json={"roles": ["admin"]}
    )
    assert granted.status_code == 200, granted.text

    rows = [r for r in await rows_of(db, target) if r.type.startswith("admin.")]
    assert [(r.type, str(r.actor_id)) for r in rows] == [
        ("admin.user_deactivated", admin_id),
        ("admin.user_reactivated", admin_id),
        ("admin.mfa_reset", admin_id),
        ("admin.roles_changed", admin_id),
    ]
    assert rows[3].details == {"from": [], "to": ["admin"]}

    page = await client.get("/auth/admin/audit-events", headers=bearer(admin), params={"user_id": target})
    assert page.status_code == 200, page.text
    assert [e["type"] for e in page.json()["items"]] == [
        "admin.roles_changed",
        "admin.mfa_reset",
        "admin.user_reactivated",
        "sessions.revoked",  # the deactivation's consequence, after the admin's action
        "admin.user_deactivated",
        "sign_in.succeeded",
    ]
    assert page.json()["items"][0]["actor_id"] == admin_id
    by_type = await client.get(
        "/auth/admin/audit-events",
        headers=bearer(admin),
        params={"user_id": target, "type": "admin.mfa_reset"},
    )
    assert [e["type"] for e in by_type.json()["items"]] == ["admin.mfa_reset"]
    everyone = await client.get(
        "/auth/admin/audit-events", headers=bearer(admin), params={"type": "admin.user_deactivated"}
    )
    assert target in {e["user_id"] for e in everyone.json()["items"]}
    future = (utcnow() + timedelta(minutes=5)).isoformat()
    later = await client.get("/auth/admin/audit-events", headers=bearer(admin), params={"since": future})
    assert later.status_code == 200 and later.json()["items"] == []
    bad_type = await client.get(
        "/auth/admin/audit-events", headers=bearer(admin), params={"type": "nonsense"}
    )
    assert bad_type.status_code == 422

    # the user's own view shows what admins did to the account (the session died with the deactivation)
    again = await login(client, user["email"])
    assert "admin.mfa_reset" in [e["type"] for e in await my_events(client, again)]
    del tokens


async def test_non_admins_cannot_read_the_trail_of_others(client: httpx.AsyncClient) -> None:
    user, tokens = await signed_up(client)
    refused = await client.get(
        "/auth/admin/audit-events", headers=bearer(tokens), params={"user_id": user["id"]}
    )
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert (await client.get("/auth/admin/audit-events")).status_code == 401
    assert (await client.get("/auth/audit-events/me")).status_code == 401


async def test_the_trail_is_read_only(client: httpx.AsyncClient) -> None:
    _, tokens = await signed_up(client)
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        response = await client.request(method, "/auth/audit-events/me", headers=bearer(tokens))
        assert response.status_code == 405, (method, response.text)
        assert response.headers["allow"] == "GET"


# Pages and retention


async def test_my_trail_comes_in_pages_newest_first(client: httpx.AsyncClient) -> None:
    user, tokens = await signed_up(client)
    for _ in range(4):
        await login(client, user["email"])
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        response = await client.get("/auth/audit-events/me", headers=bearer(tokens), params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["items"]) <= 2
        seen += [e["id"] for e in body["items"]]
        times = [e["occurred_at"] for e in body["items"]]
        assert times == sorted(times, reverse=True)
        cursor = body["next_cursor"]
        if cursor is None:
            break
    all_at_once = [e["id"] for e in await my_events(client, tokens)]
    assert seen == all_at_once and len(seen) == 5

    bad = await client.get("/auth/audit-events/me", headers=bearer(tokens), params={"cursor": "not-a-cursor"})
    assert bad.status_code == 400
    assert bad.json()["type"].endswith("/invalid-cursor")
    assert (
        await client.get("/auth/audit-events/me", headers=bearer(tokens), params={"limit": 0})
    ).status_code == 422


async def test_the_purge_drops_entries_past_retention_only(
    client: httpx.AsyncClient, db: Sessions, settings: Settings
) -> None:
    user, _ = await signed_up(client)
    old_id, kept_id = uuid.uuid4(), uuid.uuid4()
    now = utcnow()
    async with db() as session, session.begin():
        session.add_all(
            [
                AuditEvent(
                    id=old_id,
                    user_id=uuid.UUID(user["id"]),
                    type="sign_in.failed",
                    occurred_at=now - timedelta(days=settings.audit_retention_days, minutes=1),
                ),
                AuditEvent(
                    id=kept_id,
                    user_id=uuid.UUID(user["id"]),
                    type="sign_in.failed",
                    occurred_at=now - timedelta(days=settings.audit_retention_days - 1),
                ),
            ]
        )
    async with db() as session, session.begin():
        result = await purge_expired(session, settings)
    assert result.audit_events >= 1
    ids = {r.id for r in await rows_of(db, user["id"])}
    assert old_id not in ids and kept_id in ids and len(ids) == 2


def test_retention_is_400_days_and_the_alert_window_90_by_default() -> None:
    defaults = Settings.model_fields
    assert defaults["audit_retention_days"].default == 400
    assert defaults["new_sign_in_window_days"].default == 90


# New sign-in alerts


async def test_the_first_sign_in_and_a_known_device_and_network_send_no_alert(
    client: httpx.AsyncClient, db: Sessions
) -> None:
    user = await register(client)
    await login(client, user["email"], **{"User-Agent": "Known/1"})
    await login(client, user["email"], **{"User-Agent": "Known/1"})
    assert await alerts_staged(db, user["id"]) == []
    assert [r.details["alerted"] for r in await rows_of(db, user["id"])] == [False, False]


async def test_a_new_device_sends_an_alert(client: httpx.AsyncClient, db: Sessions, events: EventTap) -> None:
    user = await register(client)
    await login(client, user["email"], **{"User-Agent": "Known/1"})
    await login(client, user["email"], **{"User-Agent": "Stranger/9"})
    alert = await events.wait_for("user.new_sign_in", lambda e: e["subject"] == user["id"])
    data = alert["data"]
    assert data["email"] == user["email"] and data["method"] == "password"
    assert data["ip"] == "127.0.0.1" and data["user_agent"] == "Stranger/9"
    assert (data["new_device"], data["new_network"]) == (True, False)
    assert len(await alerts_staged(db, user["id"])) == 1
    # now known: a second sign-in from it is quiet
    await login(client, user["email"], **{"User-Agent": "Stranger/9"})
    assert len(await alerts_staged(db, user["id"])) == 1


async def test_a_new_network_sends_an_alert(
    client: httpx.AsyncClient, far_client: httpx.AsyncClient, events: EventTap
) -> None:
    user = await register(client)
    await login(client, user["email"], **{"User-Agent": "Known/1"})
    await login(far_client, user["email"], **{"User-Agent": "Known/1"})
    alert = await events.wait_for("user.new_sign_in", lambda e: e["subject"] == user["id"])
    assert alert["data"]["ip"] == "198.51.100.23"
    assert (alert["data"]["new_device"], alert["data"]["new_network"]) == (False, True)


async def test_a_device_not_seen_for_the_window_counts_as_new_again(
    client: httpx.AsyncClient, db: Sessions, settings: Settings
) -> None:
    user = await register(client)
    await login(client, user["email"], **{"User-Agent": "Old/1"})
    async with db() as session, session.begin():
        await session.execute(
            update(AuditEvent)
            .where(AuditEvent.user_id == uuid.UUID(user["id"]))
            .values(occurred_at=utcnow() - timedelta(days=settings.new_sign_in_window_days, hours=1))
        )
    await login(client, user["email"], **{"User-Agent": "Old/1"})
    [alert] = await alerts_staged(db, user["id"])
    assert (alert["data"]["new_device"], alert["data"]["new_network"]) == (True, True)


async def test_a_provider_sign_up_does_not_alert_on_its_first_sign_in(
    client: httpx.AsyncClient, db: Sessions, oauth_emulator: str
) -> None:
    key = await provider_user(oauth_emulator, "google", email=new_email(), given_name="Grete")
    first = await Browser(client, "google").sign_in(key)
    assert first.status_code == 200, first.text
    assert await alerts_staged(db, first.json()["user"]["id"]) == []
