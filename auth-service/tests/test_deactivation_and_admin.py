import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from auth_service.errors import InvalidField
from auth_service.maintenance import create_admin
from auth_service.models import User
from auth_service.settings import Settings
from conftest import PASSWORD, EventTap, assert_signed_out, bearer, login, new_email, register, signed_up


@pytest.fixture
async def admin(
    client: httpx.AsyncClient, db: async_sessionmaker[AsyncSession], settings: Settings
) -> dict[str, Any]:
    email = new_email()
    async with db() as session:
        await create_admin(session, settings, email=email, password=PASSWORD)
        await session.commit()
    return await login(client, email)


async def test_deactivate_myself_kills_every_session_at_once(
    client: httpx.AsyncClient, events: EventTap
) -> None:
    user = await register(client)
    one = await login(client, user["email"])
    two = await login(client, user["email"])
    wrong = await client.post("/auth/deactivate", headers=bearer(one), json={"password": "not it at all"})
    assert wrong.status_code == 401
    response = await client.post("/auth/deactivate", headers=bearer(one), json={"password": PASSWORD})
    assert response.status_code == 200, response.text
    for tokens in (one, two):
        await assert_signed_out(client, tokens)
    assert (
        await client.post("/auth/login", json={"email": user["email"], "password": PASSWORD})
    ).status_code == 403
    event = await events.wait_for("user.deactivated", lambda e: e["data"]["user_id"] == user["id"])
    assert event["data"]["by"] == "self"
    revoked = await events.wait_for(
        "session.revoked",
        lambda e: e["data"]["user_id"] == user["id"] and e["data"]["reason"] == "deactivated",
    )
    assert len(revoked["data"]["session_ids"]) == 2


async def test_admin_endpoints_refuse_non_admins(client: httpx.AsyncClient) -> None:
    _, tokens = await signed_up(client)
    response = await client.get("/auth/admin/users", headers=bearer(tokens))
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    assert (await client.get("/auth/admin/users")).status_code == 401


async def test_admin_lists_and_searches_users_with_a_cursor(
    client: httpx.AsyncClient, admin: dict[str, Any]
) -> None:
    marker = uuid.uuid4().hex[:8]
    for i in range(3):
        await client.post(
            "/auth/register",
            json={"email": f"{marker}-{i}@example.com", "username": f"s{marker}{i}", "password": PASSWORD},
        )
    first = await client.get("/auth/admin/users", params={"q": marker, "limit": 2}, headers=bearer(admin))
    assert first.status_code == 200, first.text
    page = first.json()
    assert len(page["items"]) == 2 and page["next_cursor"]
    second = await client.get(
        "/auth/admin/users",
        params={"q": marker, "limit": 2, "cursor": page["next_cursor"]},
        headers=bearer(admin),
    )
    rest = second.json()
    assert len(rest["items"]) == 1 and rest["next_cursor"] is None
    emails = {u["email"] for u in page["items"] + rest["items"]}
    assert emails == {f"{marker}-{i}@example.com" for i in range(3)}
    bad = await client.get("/auth/admin/users", params={"cursor": "!!!"}, headers=bearer(admin))
    assert bad.status_code == 400


async def test_admin_deactivates_and_reactivates_a_user(
    client: httpx.AsyncClient, admin: dict[str, Any], events: EventTap
) -> None:
    user, tokens = await signed_up(client)
    response = await client.post(f"/auth/admin/users/{user['id']}/deactivate", headers=bearer(admin))
    assert response.status_code == 200
    assert response.json()["is_active"] is False
    assert (await client.get("/auth/me", headers=bearer(tokens))).status_code == 401
    event = await events.wait_for("user.deactivated", lambda e: e["data"]["user_id"] == user["id"])
    assert event["data"]["by"] == "admin"
    response = await client.post(f"/auth/admin/users/{user['id']}/reactivate", headers=bearer(admin))
    assert response.json()["is_active"] is True
    await events.wait_for("user.reactivated", lambda e: e["data"]["user_id"] == user["id"])
    await login(client, user["email"])


async def test_admin_grants_and_revokes_admin(
    client: httpx.AsyncClient, admin: dict[str, Any], db: async_sessionmaker[AsyncSession]
) -> None:
    user = await register(client)
    granted = await client.put(
        f"/auth/admin/users/{user['id']}/roles", json={"roles": ["admin"]}, headers=bearer(admin)
    )
    assert granted.status_code == 200 and granted.json()["roles"] == ["admin"]
    tokens = await login(client, user["email"])
    assert (await client.get("/auth/admin/users", headers=bearer(tokens))).status_code == 200
    revoked = await client.put(
        f"/auth/admin/users/{user['id']}/roles", json={"roles": []}, headers=bearer(admin)
    )
    assert revoked.status_code == 200
    # Taking the role away ends their sessions: no token keeps claiming admin.
    assert (await client.get("/auth/admin/users", headers=bearer(tokens))).status_code == 401
    async with db() as session:
        row = await session.get(User, uuid.UUID(user["id"]))
        assert row is not None and row.roles == []
    unknown_role = await client.put(
        f"/auth/admin/users/{user['id']}/roles", json={"roles": ["superuser"]}, headers=bearer(admin)
    )
    assert unknown_role.status_code == 422


async def test_unknown_user_is_404(client: httpx.AsyncClient, admin: dict[str, Any]) -> None:
    response = await client.get(f"/auth/admin/users/{uuid.uuid4()}", headers=bearer(admin))
    assert response.status_code == 404
    assert response.json()["type"].endswith("/user-not-found")


async def test_create_admin_is_idempotent(db: async_sessionmaker[AsyncSession], settings: Settings) -> None:
    email = new_email()
    async with db() as session:
        first = await create_admin(session, settings, email=email, password=PASSWORD)
        await session.commit()
    async with db() as session:
        second = await create_admin(session, settings, email=email, password=PASSWORD)
        await session.commit()
    assert first.id == second.id and second.roles == ["admin"] and second.email_verified


async def test_create_admin_refuses_an_address_registration_would_refuse(
    db: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    """A special-use domain (.local, .test, .localhost) is no address an email can go to, and the
    events that carry it would refuse it: the admin could never turn on a second factor (a 500)."""
    for email in ("admin@gatehouse.local", "admin@e2e.gatehouse.test", "not an address"):
        async with db() as session:
            with pytest.raises(InvalidField) as refused:
                await create_admin(session, settings, email=email, password=PASSWORD)
        assert "email" in refused.value.extra["errors"]
    async with db() as session:
        admin = await create_admin(session, settings, email="Admin@Gatehouse.Example", password=PASSWORD)
        await session.rollback()
    assert admin.email == "Admin@gatehouse.example"  # normalized as registration normalizes it


async def test_admin_finds_a_user_by_id(client: httpx.AsyncClient, admin: dict[str, Any]) -> None:
    user = await register(client)
    found = await client.get("/auth/admin/users", params={"q": f" {user['id']} "}, headers=bearer(admin))
    assert found.status_code == 200, found.text
    assert [u["id"] for u in found.json()["items"]] == [user["id"]]
    nobody = await client.get("/auth/admin/users", params={"q": str(uuid.uuid4())}, headers=bearer(admin))
    assert nobody.json() == {"items": [], "next_cursor": None}


async def test_admin_lists_a_users_sessions_and_revokes_one(
    client: httpx.AsyncClient, admin: dict[str, Any], events: EventTap
) -> None:
    user = await register(client)
    one = await login(client, user["email"])
    two = await login(client, user["email"])
    listed = await client.get(f"/auth/admin/users/{user['id']}/sessions", headers=bearer(admin))
    assert listed.status_code == 200, listed.text
    items = listed.json()["items"]
    assert len(items) == 2 and not any(s["current"] for s in items)
    assert {s["method"] for s in items} == {"password"}
    ids = [s["id"] for s in items]
    target = ids[-1]  # least recently used: the first sign-in
    revoked = await client.delete(f"/auth/admin/users/{user['id']}/sessions/{target}", headers=bearer(admin))
    assert revoked.status_code == 204, revoked.text
    await assert_signed_out(client, one)
    assert (await client.get("/auth/me", headers=bearer(two))).status_code == 200
    after = await client.get(f"/auth/admin/users/{user['id']}/sessions", headers=bearer(admin))
    assert [s["id"] for s in after.json()["items"]] == [ids[0]]
    event = await events.wait_for(
        "session.revoked",
        lambda e: e["data"]["user_id"] == user["id"] and e["data"]["session_ids"] == [target],
    )
    assert event["data"]["reason"] == "revoked"
    trail = await client.get(
        "/auth/admin/audit-events",
        params={"user_id": user["id"], "type": "sessions.revoked"},
        headers=bearer(admin),
    )
    assert trail.status_code == 200, trail.text
    [entry] = trail.json()["items"]
    assert entry["actor_id"] == admin["user"]["id"] and entry["details"]["session_ids"] == [target]
    # Gone already, someone else's, unknown: not found; a malformed id: 422.
    again = await client.delete(f"/auth/admin/users/{user['id']}/sessions/{target}", headers=bearer(admin))
    assert again.status_code == 404 and again.json()["type"].endswith("/session-not-found")
    other = await register(client)
    theirs = await client.delete(f"/auth/admin/users/{other['id']}/sessions/{ids[0]}", headers=bearer(admin))
    assert theirs.status_code == 404
    assert (await client.get("/auth/me", headers=bearer(two))).status_code == 200
    malformed = await client.delete(f"/auth/admin/users/{user['id']}/sessions/nope", headers=bearer(admin))
    assert malformed.status_code == 422
    assert malformed.headers["content-type"] == "application/problem+json"


async def test_admin_sessions_identities_and_factors_refuse_non_admins_and_unknown_users(
    client: httpx.AsyncClient, admin: dict[str, Any]
) -> None:
    user, tokens = await signed_up(client)
    session_id = (await client.get("/auth/sessions", headers=bearer(tokens))).json()["items"][0]["id"]
    paths = [
        ("GET", f"/auth/admin/users/{user['id']}/sessions"),
        ("DELETE", f"/auth/admin/users/{user['id']}/sessions/{session_id}"),
        ("GET", f"/auth/admin/users/{user['id']}/identities"),
        ("GET", f"/auth/admin/users/{user['id']}/mfa"),
    ]
    for method, path in paths:
        refused = await client.request(method, path, headers=bearer(tokens))
        assert refused.status_code == 403, path
        assert refused.headers["content-type"] == "application/problem+json"
        assert (await client.request(method, path)).status_code == 401
        missing = await client.request(
            method, path.replace(user["id"], str(uuid.uuid4())), headers=bearer(admin)
        )
        assert missing.status_code == 404, path
        assert missing.json()["type"].endswith("/user-not-found")
    assert (await client.get("/auth/me", headers=bearer(tokens))).status_code == 200  # nothing revoked
    identities = await client.get(f"/auth/admin/users/{user['id']}/identities", headers=bearer(admin))
    assert identities.json() == {"items": [], "has_password": True, "next_cursor": None}
    factors = await client.get(f"/auth/admin/users/{user['id']}/mfa", headers=bearer(admin))
    assert factors.json() == {"totp": False, "recovery_codes_left": 0, "passkeys": 0, "methods": []}


async def test_the_system_state_is_for_admins_and_shows_readiness_and_the_outbox(
    client: httpx.AsyncClient, admin: dict[str, Any]
) -> None:
    answer = await client.get("/auth/admin/system", headers=bearer(admin))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["service"] == "auth-service" and body["ready"] is True
    assert body["checks"] == {"database": "ok", "redis": "ok"} and body["reported"] == {"broker": "ok"}
    assert body["outbox"]["backlog"] >= 0
    [consumer] = body["consumers"]  # the seat-limit consumer (org.seat_limit_changed), with its queues
    assert consumer["name"] == "auth-service" and consumer["dlq"]["name"] == "auth-service.dlq"
    _, tokens = await signed_up(client)
    refused = await client.get("/auth/admin/system", headers=bearer(tokens))
    assert refused.status_code == 403 and refused.headers["content-type"] == "application/problem+json"
    assert (await client.get("/auth/admin/system")).status_code == 401
