import uuid

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from auth_service.models import OneTimeToken, Profile, User
from conftest import PASSWORD, EventTap, bearer, new_email, new_username, register, signed_up


async def test_register_creates_user_with_profile_and_publishes_events(
    client: httpx.AsyncClient, db: async_sessionmaker[AsyncSession], events: EventTap
) -> None:
    email = new_email()
    response = await client.post(
        "/auth/register",
        json={"email": email, "username": new_username(), "password": PASSWORD, "display_name": "Ada"},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["email"] == email
    assert body["email_verified"] is False
    assert body["roles"] == []
    assert body["profile"]["display_name"] == "Ada"
    assert "password_hash" not in body and PASSWORD not in response.text
    async with db() as session:
        user = await session.get(User, uuid.UUID(body["id"]))
        assert user is not None and user.password_hash and user.password_hash.startswith("$argon2id$")
        assert await session.get(Profile, user.id) is not None
        tokens = (
            (await session.execute(select(OneTimeToken).where(OneTimeToken.user_id == user.id)))
            .scalars()
            .all()
        )
        assert [t.purpose for t in tokens] == ["verify_email"]
    registered = await events.wait_for("user.registered", lambda e: e["data"]["email"] == email)
    assert registered["source"] == "/auth-service"
    assert registered["subject"] == body["id"]
    assert registered["data"]["provider"] == "password"
    requested = await events.wait_for(
        "user.email_verification_requested", lambda e: e["data"]["email"] == email
    )
    assert len(requested["data"]["token"]) >= 40


async def test_email_is_unique_case_insensitively(client: httpx.AsyncClient) -> None:
    user = await register(client)
    response = await client.post(
        "/auth/register",
        json={"email": user["email"].upper(), "username": new_username(), "password": PASSWORD},
    )
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("/email-taken")


async def test_username_is_unique_case_insensitively(client: httpx.AsyncClient) -> None:
    user = await register(client)
    response = await client.post(
        "/auth/register",
        json={"email": new_email(), "username": user["username"].upper(), "password": PASSWORD},
    )
    assert response.status_code == 409
    assert response.json()["type"].endswith("/username-taken")


async def test_common_password_is_refused_with_a_field_error(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/auth/register", json={"email": new_email(), "username": new_username(), "password": "password123"}
    )
    assert response.status_code == 422
    assert "common" in response.json()["errors"]["password"]


async def test_short_and_overlong_passwords_are_refused_but_no_composition_rules(
    client: httpx.AsyncClient,
) -> None:
    for password in ("short1!", "x" * 64 + "y" * 65):
        response = await client.post(
            "/auth/register", json={"email": new_email(), "username": new_username(), "password": password}
        )
        assert response.status_code == 422, password
        assert "password" in response.json()["errors"]
    # A long passphrase of lowercase words is fine: no composition rules (NIST 800-63B).
    response = await client.post(
        "/auth/register",
        json={"email": new_email(), "username": new_username(), "password": "purple tuesday lighthouse"},
    )
    assert response.status_code == 201


async def test_invalid_fields_are_reported_per_field(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/auth/register", json={"email": "not-an-email", "username": "a", "password": PASSWORD}
    )
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert set(errors) == {"email", "username"}


async def test_me_and_profile_update(client: httpx.AsyncClient) -> None:
    user, tokens = await signed_up(client)
    me = await client.get("/auth/me", headers=bearer(tokens))
    assert me.status_code == 200
    assert me.json()["id"] == user["id"]
    update = await client.patch(
        "/auth/me",
        headers=bearer(tokens),
        json={"first_name": "Ada", "last_name": "Lovelace", "timezone": "Europe/London", "locale": "en-GB"},
    )
    assert update.status_code == 200, update.text
    profile = (await client.get("/auth/me", headers=bearer(tokens))).json()["profile"]
    assert profile["first_name"] == "Ada" and profile["timezone"] == "Europe/London"


async def test_profile_update_rejects_unknown_timezone_and_taken_username(client: httpx.AsyncClient) -> None:
    other = await register(client)
    _, tokens = await signed_up(client)
    bad_tz = await client.patch("/auth/me", headers=bearer(tokens), json={"timezone": "Mars/Olympus"})
    assert bad_tz.status_code == 422
    assert "timezone" in bad_tz.json()["errors"]
    taken = await client.patch("/auth/me", headers=bearer(tokens), json={"username": other["username"]})
    assert taken.status_code == 409


async def test_me_requires_a_token(client: httpx.AsyncClient) -> None:
    response = await client.get("/auth/me")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_nul_characters_are_a_validation_error_not_a_server_error(client: httpx.AsyncClient) -> None:
    """Found by schemathesis: PostgreSQL text cannot hold NUL, so it must be refused up front."""
    _, tokens = await signed_up(client)
    response = await client.patch("/auth/me", headers=bearer(tokens), json={"bio": "hi\u0000there"})
    assert response.status_code == 422, response.text
    assert "bio" in response.json()["errors"]
    register = await client.post(
        "/auth/register",
        json={"email": new_email(), "username": new_username(), "password": "nul\u0000" + PASSWORD},
    )
    assert register.status_code == 422
    search = await client.get("/auth/verify", params={"token": "a" * 20 + "\u0000"})
    assert search.status_code in (400, 422)
