"""Account deletion: asked for after a recent sign-in (or by an admin), every session dead at once,
cancelled by signing in with the password within the grace period, erased after it."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from test_deactivation_and_admin import admin as admin  # the fixture
from test_mfa import problem_type

from auth_service.accounts.deletion import erase_due
from auth_service.models import ApiKey, AuditEvent, AuthSession, Profile, User
from auth_service.settings import Settings
from conftest import PASSWORD, EventTap, assert_signed_out, bearer, login, register, signed_up
from gatehouse_platform.models import OutboxMessage
from gatehouse_platform.testing import eventually, rows_mentioning

Sessions = async_sessionmaker[AsyncSession]


async def delete_me(client: httpx.AsyncClient, tokens: dict[str, Any]) -> httpx.Response:
    return await client.delete("/auth/me", headers=bearer(tokens))


async def erase_as_of(db: Sessions, when: datetime) -> list[uuid.UUID]:
    async with db() as session:
        erased = await erase_due(session, now=when)
        await session.commit()
    return erased


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


async def test_deleting_my_account_disables_it_at_once_and_schedules_the_erasure(
    client: httpx.AsyncClient, events: EventTap, settings: Settings, db: Sessions
) -> None:
    user = await register(client)
    one = await login(client, user["email"])
    two = await login(client, user["email"])
    response = await delete_me(client, one)
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "deletion_scheduled"
    erase_at = at(body["erase_at"])
    expected = datetime.now(erase_at.tzinfo) + timedelta(days=settings.deletion_grace_days)
    assert abs((erase_at - expected).total_seconds()) < 60
    for tokens in (one, two):
        await assert_signed_out(client, tokens)
    deactivated = await events.wait_for("user.deactivated", lambda e: e["data"]["user_id"] == user["id"])
    assert deactivated["data"]["deleted"] is True and deactivated["data"]["by"] == "self"
    deleted = await events.wait_for("user.deleted", lambda e: e["data"]["user_id"] == user["id"])
    assert deleted["data"]["email"] == user["email"] and deleted["data"]["by"] == "self"
    assert at(deleted["data"]["erase_at"]) == erase_at
    async with db() as session:
        types = (
            await session.execute(select(AuditEvent.type).where(AuditEvent.user_id == uuid.UUID(user["id"])))
        ).scalars()
        assert "account.deletion_requested" in set(types)
    # Deleting twice: the first deletion already ended the session that would ask.
    again = await delete_me(client, one)
    assert again.status_code == 401 and again.headers["content-type"] == "application/problem+json"


async def test_signing_in_to_an_account_pending_deletion_offers_the_cancellation(
    client: httpx.AsyncClient, events: EventTap
) -> None:
    user, tokens = await signed_up(client)
    assert (await delete_me(client, tokens)).status_code == 202
    credentials = {"email": user["email"], "password": PASSWORD}
    wrong = {"email": user["email"], "password": "not the password at all"}
    # A wrong password tells nothing of the deletion.
    refused = await client.post("/auth/login", json=wrong)
    assert refused.status_code == 401 and problem_type(refused) == "invalid-credentials"
    pending = await client.post("/auth/login", json=credentials)
    assert pending.status_code == 403, pending.text
    assert problem_type(pending) == "account-pending-deletion"
    assert at(pending.json()["erase_at"]) > datetime.now(at(pending.json()["erase_at"]).tzinfo)
    refused = await client.post("/auth/me/deletion/cancel", json=wrong)
    assert refused.status_code == 401 and problem_type(refused) == "invalid-credentials"
    cancelled = await client.post("/auth/me/deletion/cancel", json=credentials)
    assert cancelled.status_code == 200, cancelled.text
    restored = cancelled.json()
    me = await client.get("/auth/me", headers=bearer(restored))
    assert me.status_code == 200 and me.json()["is_active"] is True and me.json()["erase_at"] is None
    await events.wait_for("user.reactivated", lambda e: e["data"]["user_id"] == user["id"])
    await login(client, user["email"])
    # Nothing left to cancel.
    again = await client.post("/auth/me/deletion/cancel", json=credentials)
    assert again.status_code == 409 and problem_type(again) == "account-not-pending-deletion"
    bad = await client.post("/auth/me/deletion/cancel", json={"password": PASSWORD})
    assert bad.status_code == 422


async def test_the_erasure_waits_for_the_grace_period_then_leaves_nothing_personal(
    client: httpx.AsyncClient, events: EventTap, db: Sessions, settings: Settings
) -> None:
    user, tokens = await signed_up(client)
    patched = await client.patch(
        "/auth/me", headers=bearer(tokens), json={"display_name": "Zelda Quixotic-Erasable"}
    )
    assert patched.status_code == 200
    await client.get("/auth/me", headers={**bearer(tokens), "User-Agent": "DeletionTest/1.0"})
    key = await client.post(
        "/auth/api-keys",
        json={"name": "Zelda Quixotic's script", "scopes": ["profile:read"]},
        headers=bearer(tokens),
    )
    assert key.status_code == 201
    response = await delete_me(client, tokens)
    erase_at = at(response.json()["erase_at"])
    await events.wait_for("user.deleted", lambda e: e["data"]["user_id"] == user["id"])
    revoked = await events.wait_for("api_key.revoked", lambda e: e["data"]["key_id"] == key.json()["id"])
    assert revoked["data"]["reason"] == "owner_deleted"
    exchanged = await client.post("/auth/internal/api-keys/exchange", json={"key": key.json()["key"]})
    assert exchanged.status_code == 401
    user_id = uuid.UUID(user["id"])
    assert user_id not in await erase_as_of(db, erase_at - timedelta(seconds=1))

    async def relayed() -> bool:  # only published events are forgotten: unpublished ones must go out
        async with db() as session:
            waiting = await session.execute(
                select(func.count()).where(
                    OutboxMessage.published_at.is_(None),
                    OutboxMessage.payload["subject"].astext == user["id"],
                )
            )
            return waiting.scalar_one() == 0

    await eventually(relayed, "the relay")
    assert user_id in await erase_as_of(db, erase_at + timedelta(seconds=1))
    erased = await events.wait_for("user.erased", lambda e: e["data"]["user_id"] == user["id"])
    assert set(erased["data"]) == {"user_id", "erased_at"}

    async with db() as session:
        row = await session.get(User, user_id)
        assert row is not None and row.erased_at is not None and row.password_hash is None
        assert row.email.endswith("@erased.invalid") and not row.is_active
        profile = await session.get(Profile, user_id)
        assert profile is not None and profile.display_name is None
        sessions = await session.execute(select(func.count()).where(AuthSession.user_id == user_id))
        assert sessions.scalar_one() == 0
        keys = await session.execute(select(func.count()).where(ApiKey.user_id == user_id))
        assert keys.scalar_one() == 0
        trail = list(
            (await session.execute(select(AuditEvent).where(AuditEvent.user_id == user_id))).scalars()
        )
        assert {"account.deletion_requested", "account.erased", "sign_in.succeeded"} <= {
            e.type for e in trail
        }
        assert all(e.ip is None and e.user_agent is None and e.network is None for e in trail)

    async def nothing_left() -> dict[str, int]:
        return await rows_mentioning(settings.database_url, user["email"], user["username"], "Zelda Quixotic")

    assert await nothing_left() == {}
    # Erased: nothing to sign in to or cancel, and it is not erased twice.
    credentials = {"email": user["email"], "password": PASSWORD}
    assert (await client.post("/auth/login", json=credentials)).status_code == 401
    late = await client.post("/auth/me/deletion/cancel", json=credentials)
    assert late.status_code == 401 and problem_type(late) == "invalid-credentials"
    assert user_id not in await erase_as_of(db, erase_at + timedelta(days=1))


async def test_an_admin_deletes_a_user_audited_and_not_the_owners_to_cancel(
    client: httpx.AsyncClient, admin: dict[str, Any], events: EventTap, db: Sessions
) -> None:
    user, tokens = await signed_up(client)
    response = await client.delete(f"/auth/admin/users/{user['id']}", headers=bearer(admin))
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "deletion_scheduled"
    await assert_signed_out(client, tokens)
    deleted = await events.wait_for("user.deleted", lambda e: e["data"]["user_id"] == user["id"])
    assert deleted["data"]["by"] == "admin"
    me = await client.get("/auth/me", headers=bearer(admin))
    async with db() as session:
        entry = (
            await session.execute(
                select(AuditEvent).where(
                    AuditEvent.user_id == uuid.UUID(user["id"]), AuditEvent.type == "admin.user_deleted"
                )
            )
        ).scalar_one()
        assert str(entry.actor_id) == me.json()["id"]
    credentials = {"email": user["email"], "password": PASSWORD}
    login_refused = await client.post("/auth/login", json=credentials)
    assert login_refused.status_code == 403 and problem_type(login_refused) == "account-deactivated"
    cancel_refused = await client.post("/auth/me/deletion/cancel", json=credentials)
    assert cancel_refused.status_code == 403 and problem_type(cancel_refused) == "account-deactivated"
    twice = await client.delete(f"/auth/admin/users/{user['id']}", headers=bearer(admin))
    assert twice.status_code == 409 and problem_type(twice) == "account-already-deleted"
    unknown = await client.delete(f"/auth/admin/users/{uuid.uuid4()}", headers=bearer(admin))
    assert unknown.status_code == 404
    # An admin may take the deletion back before the erasure.
    back = await client.post(f"/auth/admin/users/{user['id']}/reactivate", headers=bearer(admin))
    assert back.status_code == 200 and back.json()["erase_at"] is None
    await login(client, user["email"])


async def test_an_erased_account_cannot_be_reactivated(
    client: httpx.AsyncClient, admin: dict[str, Any], db: Sessions
) -> None:
    user, tokens = await signed_up(client)
    erase_at = at((await delete_me(client, tokens)).json()["erase_at"])
    await erase_as_of(db, erase_at + timedelta(seconds=1))
    refused = await client.post(f"/auth/admin/users/{user['id']}/reactivate", headers=bearer(admin))
    assert refused.status_code == 409 and problem_type(refused) == "account-already-deleted"
    again = await client.delete(f"/auth/admin/users/{user['id']}", headers=bearer(admin))
    assert again.status_code == 409


@pytest.mark.parametrize("who", ["non-admin", "anonymous"])
async def test_only_admins_delete_others(client: httpx.AsyncClient, who: str) -> None:
    victim = await register(client)
    headers = bearer((await signed_up(client))[1]) if who == "non-admin" else {}
    response = await client.delete(f"/auth/admin/users/{victim['id']}", headers=headers)
    assert response.status_code == (403 if who == "non-admin" else 401)
    assert response.headers["content-type"] == "application/problem+json"
