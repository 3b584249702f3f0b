import asyncio
import uuid

import httpx
import jwt
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from auth_service.models import AuthSession
from conftest import PASSWORD, EventTap, assert_signed_out, bearer, login, refresh, register, signed_up
from gatehouse_contracts.revocations import Revocations


async def test_refresh_rotates_the_token(client: httpx.AsyncClient) -> None:
    _, tokens = await signed_up(client)
    first = await refresh(client, tokens["refresh_token"])
    assert first.status_code == 200, first.text
    rotated = first.json()
    assert rotated["refresh_token"] != tokens["refresh_token"]
    second = await refresh(client, rotated["refresh_token"])
    assert second.status_code == 200
    assert (await client.get("/auth/me", headers=bearer(second.json()))).status_code == 200


async def test_refresh_by_cookie(client: httpx.AsyncClient) -> None:
    user = await register(client)
    async with httpx.AsyncClient(transport=client._transport, base_url=str(client.base_url)) as browser:
        await login(browser, user["email"])
        assert browser.cookies.get("gatehouse_refresh")
        response = await browser.post("/auth/refresh-token")
        assert response.status_code == 200, response.text
        assert browser.cookies.get("gatehouse_refresh") == response.json()["refresh_token"]


async def test_two_tabs_refreshing_at_once_both_get_the_same_successor(client: httpx.AsyncClient) -> None:
    _, tokens = await signed_up(client)
    a, b = await asyncio.gather(
        refresh(client, tokens["refresh_token"]), refresh(client, tokens["refresh_token"])
    )
    assert a.status_code == b.status_code == 200
    assert a.json()["refresh_token"] == b.json()["refresh_token"]
    # ... and the successor goes on working.
    assert (await refresh(client, a.json()["refresh_token"])).status_code == 200


async def test_reused_refresh_token_revokes_the_family(
    client: httpx.AsyncClient, db: async_sessionmaker[AsyncSession], events: EventTap
) -> None:
    user, tokens = await signed_up(client)
    first = (await refresh(client, tokens["refresh_token"])).json()
    second = (await refresh(client, first["refresh_token"])).json()
    # The first token is two rotations old: beyond any grace, it is theft.
    reuse = await refresh(client, tokens["refresh_token"])
    assert reuse.status_code == 401
    assert reuse.json()["type"].endswith("/refresh-token-reused")
    # The whole family is dead: the latest refresh token and its access token too.
    assert (await refresh(client, second["refresh_token"])).status_code == 401
    assert (await client.get("/auth/me", headers=bearer(second))).status_code == 401
    async with db() as session:
        row = (
            await session.execute(select(AuthSession).where(AuthSession.user_id == uuid.UUID(user["id"])))
        ).scalar_one()
        assert row.revoked_at is not None and row.revoke_reason == "refresh_reuse"
    event = await events.wait_for("session.revoked", lambda e: e["data"]["user_id"] == user["id"])
    assert event["data"]["reason"] == "refresh_reuse"
    assert event["data"]["session_ids"] == [str(row.id)]


async def test_reuse_after_the_grace_period_is_theft_too(client: httpx.AsyncClient, app) -> None:  # type: ignore[no-untyped-def]
    settings = app.state.services.settings
    _, tokens = await signed_up(client)
    (await refresh(client, tokens["refresh_token"])).json()
    original = settings.refresh_reuse_grace_seconds
    settings.refresh_reuse_grace_seconds = 0
    try:
        await asyncio.sleep(0.01)
        assert (await refresh(client, tokens["refresh_token"])).status_code == 401
    finally:
        settings.refresh_reuse_grace_seconds = original


async def test_unknown_or_missing_refresh_token(client: httpx.AsyncClient) -> None:
    await signed_up(client)  # an earlier sign-in on this client must not lend it a refresh cookie
    assert (await refresh(client, "x" * 43)).status_code == 401
    missing = await client.post("/auth/refresh-token")
    assert missing.status_code == 401
    assert missing.json()["type"].endswith("/invalid-refresh-token")


async def test_sessions_list_shows_devices_and_marks_the_current_one(client: httpx.AsyncClient) -> None:
    user = await register(client)
    phone = await login(client, user["email"], **{"User-Agent": "Phone/1.0"})
    laptop = await login(client, user["email"], **{"User-Agent": "Laptop/2.0"})
    response = await client.get("/auth/sessions", headers=bearer(laptop))
    assert response.status_code == 200
    items = response.json()["items"]
    assert {i["user_agent"] for i in items} == {"Phone/1.0", "Laptop/2.0"}
    current = [i for i in items if i["current"]]
    assert len(current) == 1 and current[0]["user_agent"] == "Laptop/2.0"
    assert all(i["ip"] == "127.0.0.1" and i["method"] == "password" for i in items)
    assert phone


async def test_revoke_one_session(client: httpx.AsyncClient, events: EventTap) -> None:
    user = await register(client)
    phone = await login(client, user["email"])
    laptop = await login(client, user["email"])
    phone_sid = next(
        i["id"]
        for i in (await client.get("/auth/sessions", headers=bearer(phone))).json()["items"]
        if i["current"]
    )
    response = await client.delete(f"/auth/sessions/{phone_sid}", headers=bearer(laptop))
    assert response.status_code == 204
    await assert_signed_out(client, phone)
    assert (await client.get("/auth/me", headers=bearer(laptop))).status_code == 200
    again = await client.delete(f"/auth/sessions/{phone_sid}", headers=bearer(laptop))
    assert again.status_code == 404
    await events.wait_for("session.revoked", lambda e: e["data"]["session_ids"] == [phone_sid])


async def test_cannot_revoke_someone_elses_session(client: httpx.AsyncClient) -> None:
    _, mine = await signed_up(client)
    _, theirs = await signed_up(client)
    their_sid = (await client.get("/auth/sessions", headers=bearer(theirs))).json()["items"][0]["id"]
    assert (await client.delete(f"/auth/sessions/{their_sid}", headers=bearer(mine))).status_code == 404
    assert (await client.get("/auth/me", headers=bearer(theirs))).status_code == 200


async def test_logout_ends_this_session_only(client: httpx.AsyncClient) -> None:
    user = await register(client)
    one = await login(client, user["email"])
    two = await login(client, user["email"])
    response = await client.post("/auth/logout", headers=bearer(one))
    assert response.status_code == 200
    assert (
        'gatehouse_refresh=""' in response.headers["set-cookie"]
        or "Max-Age=0" in response.headers["set-cookie"]
    )
    await assert_signed_out(client, one)
    assert (await client.get("/auth/me", headers=bearer(two))).status_code == 200


async def test_logout_everywhere_ends_every_session(client: httpx.AsyncClient, events: EventTap) -> None:
    user = await register(client)
    sessions = [await login(client, user["email"]) for _ in range(3)]
    assert (await client.post("/auth/logout-all", headers=bearer(sessions[0]))).status_code == 200
    for tokens in sessions:
        await assert_signed_out(client, tokens)
    event = await events.wait_for(
        "session.revoked",
        lambda e: e["data"]["user_id"] == user["id"] and e["data"]["reason"] == "logout_all",
    )
    assert len(event["data"]["session_ids"]) == 3


async def test_the_revocation_list_holds_what_verifiers_must_still_refuse(client: httpx.AsyncClient) -> None:
    """What a verifier rebuilds its denylist from after its Redis lost its data: the sessions
    revoked and the users deactivated within an access token's lifetime, nothing else."""
    user = await register(client)
    gone = await login(client, user["email"])
    kept = await login(client, user["email"])
    assert (await client.post("/auth/logout", headers=bearer(gone))).status_code == 200
    leaver, leaver_tokens = await signed_up(client)
    response = await client.post(
        "/auth/deactivate", headers=bearer(leaver_tokens), json={"password": PASSWORD}
    )
    assert response.status_code == 200, response.text

    response = await client.get("/auth/internal/revocations")
    assert response.status_code == 200
    revocations = Revocations.model_validate(response.json())
    revoked = {s.session_id for s in revocations.sessions}
    assert session_of(gone) in revoked
    assert session_of(leaver_tokens) in revoked
    assert session_of(kept) not in revoked
    assert uuid.UUID(leaver["id"]) in {u.user_id for u in revocations.users}
    assert uuid.UUID(user["id"]) not in {u.user_id for u in revocations.users}
    assert "/auth/internal/revocations" not in (await client.get("/openapi.json")).text


def session_of(tokens: dict[str, str]) -> uuid.UUID:
    return uuid.UUID(jwt.decode(tokens["access_token"], options={"verify_signature": False})["sid"])
