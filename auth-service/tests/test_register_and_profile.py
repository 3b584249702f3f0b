import uuid

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from auth_service.accounts.router import REGISTRATION_ACCEPTED
from auth_service.models import OneTimeToken, Profile, User
from conftest import PASSWORD, EventTap, account, bearer, new_email, new_username, register, signed_up


async def test_register_creates_user_with_profile_and_publishes_events(
    client: httpx.AsyncClient, db: async_sessionmaker[AsyncSession], events: EventTap
) -> None:
    email = new_email()
    response = await client.post(
        "/auth/register",
        json={"email": email, "username": new_username(), "password": PASSWORD, "display_name": "Ada"},
    )
    assert response.status_code == 202, response.text
    assert response.json() == {"status": "verification_sent", "detail": REGISTRATION_ACCEPTED}
    body = await account(email)
    assert body["email_verified"] is False
    assert body["roles"] == []
    assert body["profile"]["display_name"] == "Ada"
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


def answer_seen_by_a_client(response: httpx.Response) -> tuple[int, dict[str, str], bytes]:
    """What a caller could tell two answers apart by: the status, every header but the per-request
    ones, the body's bytes."""
    per_request = {"x-request-id", "traceparent", "date", "server-timing"}
    headers = {name: value for name, value in response.headers.items() if name.lower() not in per_request}
    return response.status_code, headers, response.content


async def test_registering_an_existing_email_answers_as_a_new_one_and_tells_its_owner(
    client: httpx.AsyncClient, db: async_sessionmaker[AsyncSession], events: EventTap
) -> None:
    owner = await register(client)
    fresh = await client.post(
        "/auth/register", json={"email": new_email(), "username": new_username(), "password": PASSWORD}
    )
    again = await client.post(
        "/auth/register",
        json={"email": owner["email"].upper(), "username": new_username(), "password": "another long secret"},
    )
    assert answer_seen_by_a_client(again) == answer_seen_by_a_client(fresh)
    assert again.status_code == 202 and again.json()["status"] == "verification_sent"

    attempted = await events.wait_for("user.sign_up_attempted", lambda e: e["data"]["user_id"] == owner["id"])
    assert attempted["data"]["email"] == owner["email"]
    assert attempted["data"]["username"] == owner["username"]
    async with db() as session:
        users = (await session.execute(select(User).where(User.email.ilike(owner["email"])))).scalars().all()
        assert [str(u.id) for u in users] == [owner["id"]]
        tokens = (
            (await session.execute(select(OneTimeToken).where(OneTimeToken.user_id == users[0].id)))
            .scalars()
            .all()
        )
        assert len(tokens) == 1  # the first registration's verification link only
    # The account is untouched: its own password still signs in, the attempt's does not.
    assert (
        await client.post("/auth/login", json={"email": owner["email"], "password": PASSWORD})
    ).status_code == 200
    refused = await client.post(
        "/auth/login", json={"email": owner["email"], "password": "another long secret"}
    )
    assert refused.status_code == 401


async def test_a_deactivated_account_hears_nothing_of_a_sign_up_attempt(
    client: httpx.AsyncClient, events: EventTap
) -> None:
    owner, tokens = await signed_up(client)
    assert (
        await client.post("/auth/deactivate", headers=bearer(tokens), json={"password": PASSWORD})
    ).status_code == 200
    again = await client.post(
        "/auth/register", json={"email": owner["email"], "username": new_username(), "password": PASSWORD}
    )
    assert again.status_code == 202 and again.json()["status"] == "verification_sent"
    marker = await register(client)  # published after the attempt would have been
    await events.wait_for("user.registered", lambda e: e["data"]["user_id"] == marker["id"])
    assert await events.all_of("user.sign_up_attempted", lambda e: e["data"]["user_id"] == owner["id"]) == []


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
    assert response.status_code == 202


async def test_invalid_fields_are_reported_per_field(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/auth/register", json={"email": "not-an-email", "username": "a", "password": PASSWORD}
    )
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert set(errors) == {"email", "username"}


async def test_one_answer_names_every_invalid_field_password_policy_included(
    client: httpx.AsyncClient,
) -> None:
    """The password's policy (common words, the username) is checked beside the other fields, not
    after them: a person fixes everything at once."""
    for password, says in (("password", "common"), ("short", "at least 8"), ("x" * 129, "at most 128")):
        response = await client.post(
            "/auth/register", json={"email": "not-an-email", "username": "a", "password": password}
        )
        assert response.status_code == 422, response.text
        problem = response.json()
        assert problem["type"].endswith("/validation-failed")
        assert response.headers["content-type"] == "application/problem+json"
        assert set(problem["errors"]) == {"email", "username", "password"}, password
        assert says in problem["errors"]["password"]
    username = new_username()
    same_as_username = await client.post(
        "/auth/register", json={"email": "nope", "username": username, "password": username.upper()}
    )
    assert same_as_username.status_code == 422
    errors = same_as_username.json()["errors"]
    assert set(errors) == {"email", "password"}
    assert "username" in errors["password"]


async def test_field_errors_come_before_a_taken_username(client: httpx.AsyncClient) -> None:
    user = await register(client)
    response = await client.post(
        "/auth/register", json={"email": new_email(), "username": user["username"], "password": "password"}
    )
    assert response.status_code == 422
    assert set(response.json()["errors"]) == {"password"}


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
