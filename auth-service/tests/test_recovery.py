"""Email verification, password reset and change, email sign-in codes, email change."""

import httpx

from conftest import PASSWORD, EventTap, assert_signed_out, bearer, login, new_email, register, signed_up

NEW_PASSWORD = "a fresh and different passphrase"


async def verification_token(events: EventTap, email: str) -> str:
    event = await events.wait_for("user.email_verification_requested", lambda e: e["data"]["email"] == email)
    return str(event["data"]["token"])


async def test_the_emailed_link_verifies_the_email_once(client: httpx.AsyncClient, events: EventTap) -> None:
    user = await register(client)
    token = await verification_token(events, user["email"])
    response = await client.get("/auth/verify", params={"token": token})
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "verified"
    tokens = await login(client, user["email"])
    assert tokens["user"]["email_verified"] is True
    verified = await events.wait_for("user.verified", lambda e: e["data"]["user_id"] == user["id"])
    assert verified["data"]["email"] == user["email"]
    again = await client.post("/auth/verify", json={"token": token})
    assert again.status_code == 400
    assert again.json()["type"].endswith("/invalid-token")


async def test_a_browser_following_the_emailed_link_is_sent_to_the_web_page(
    client: httpx.AsyncClient, events: EventTap
) -> None:
    """Links sent before the web front existed keep working: a browser (Accept: text/html) lands on
    the page that confirms with a button, and the token is not spent by the GET."""
    user = await register(client)
    token = await verification_token(events, user["email"])
    page = await client.get(
        "/auth/verify",
        params={"token": token},
        headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"},
    )
    assert page.status_code == 303
    assert page.headers["location"] == f"/verify-email?token={token}"
    assert (await client.post("/auth/verify", json={"token": token})).status_code == 200


async def test_resend_verification_invalidates_the_older_link(
    client: httpx.AsyncClient, events: EventTap
) -> None:
    user, tokens = await signed_up(client)
    first = await verification_token(events, user["email"])
    response = await client.post("/auth/request/verify", headers=bearer(tokens))
    assert response.status_code == 202
    second_event = await events.wait_for(
        "user.email_verification_requested",
        lambda e: e["data"]["email"] == user["email"] and e["data"]["token"] != first,
    )
    assert (await client.post("/auth/verify", json={"token": first})).status_code == 400
    assert (
        await client.post("/auth/verify", json={"token": second_event["data"]["token"]})
    ).status_code == 200
    # Verified users cannot ask again.
    assert (await client.post("/auth/request/verify", headers=bearer(tokens))).status_code == 409


async def test_a_verification_token_cannot_reset_a_password(
    client: httpx.AsyncClient, events: EventTap
) -> None:
    user = await register(client)
    token = await verification_token(events, user["email"])
    response = await client.post("/auth/new-password", json={"token": token, "new_password": NEW_PASSWORD})
    assert response.status_code == 400
    assert (await client.post("/auth/verify", json={"token": token})).status_code == 200


async def test_forgot_password_answers_the_same_for_unknown_emails(client: httpx.AsyncClient) -> None:
    user = await register(client)
    known = await client.post("/auth/forget-password", json={"email": user["email"]})
    unknown = await client.post("/auth/forget-password", json={"email": new_email()})
    assert known.status_code == unknown.status_code == 202
    assert known.json() == unknown.json()


async def test_password_reset_sets_the_password_and_revokes_every_session(
    client: httpx.AsyncClient, events: EventTap
) -> None:
    user = await register(client)
    sessions = [await login(client, user["email"]) for _ in range(2)]
    await client.post("/auth/forget-password", json={"email": user["email"]})
    event = await events.wait_for(
        "user.password_reset_requested", lambda e: e["data"]["email"] == user["email"]
    )
    token = event["data"]["token"]
    response = await client.post("/auth/new-password", json={"token": token, "new_password": NEW_PASSWORD})
    assert response.status_code == 200, response.text
    for tokens in sessions:
        await assert_signed_out(client, tokens)
    assert (
        await client.post("/auth/login", json={"email": user["email"], "password": PASSWORD})
    ).status_code == 401
    await login(client, user["email"], NEW_PASSWORD)
    changed = await events.wait_for("user.password_changed", lambda e: e["data"]["user_id"] == user["id"])
    assert changed["data"]["method"] == "reset"
    revoked = await events.wait_for(
        "session.revoked",
        lambda e: e["data"]["user_id"] == user["id"] and e["data"]["reason"] == "password_reset",
    )
    assert len(revoked["data"]["session_ids"]) == 2
    # Single use.
    reuse = await client.post(
        "/auth/new-password", json={"token": token, "new_password": "yet another passphrase"}
    )
    assert reuse.status_code == 400


async def test_password_reset_applies_the_policy(client: httpx.AsyncClient, events: EventTap) -> None:
    user = await register(client)
    await client.post("/auth/forget-password", json={"email": user["email"]})
    event = await events.wait_for(
        "user.password_reset_requested", lambda e: e["data"]["email"] == user["email"]
    )
    weak = await client.post(
        "/auth/new-password", json={"token": event["data"]["token"], "new_password": "qwerty123"}
    )
    assert weak.status_code == 422
    assert "password" in weak.json()["errors"]
    # The token was not spent by the refused attempt.
    ok = await client.post(
        "/auth/new-password", json={"token": event["data"]["token"], "new_password": NEW_PASSWORD}
    )
    assert ok.status_code == 200


async def test_change_password_needs_the_old_one_and_revokes_the_other_sessions(
    client: httpx.AsyncClient, events: EventTap
) -> None:
    user = await register(client)
    here = await login(client, user["email"])
    elsewhere = await login(client, user["email"])
    wrong = await client.post(
        "/auth/change-password",
        headers=bearer(here),
        json={"old_password": "nope nope nope", "new_password": NEW_PASSWORD},
    )
    assert wrong.status_code == 401
    response = await client.post(
        "/auth/change-password",
        headers=bearer(here),
        json={"old_password": PASSWORD, "new_password": NEW_PASSWORD},
    )
    assert response.status_code == 200, response.text
    assert (await client.get("/auth/me", headers=bearer(here))).status_code == 200
    assert (await client.get("/auth/me", headers=bearer(elsewhere))).status_code == 401
    await login(client, user["email"], NEW_PASSWORD)
    changed = await events.wait_for("user.password_changed", lambda e: e["data"]["user_id"] == user["id"])
    assert changed["data"]["method"] == "change"


async def login_code(
    client: httpx.AsyncClient, events: EventTap, email: str, previous: str | None = None
) -> str:
    response = await client.post("/auth/request/login-code", json={"email": email})
    assert response.status_code == 202
    event = await events.wait_for(
        "user.login_code_requested", lambda e: e["data"]["email"] == email and e["data"]["code"] != previous
    )
    return str(event["data"]["code"])


async def test_login_with_an_emailed_code_once(client: httpx.AsyncClient, events: EventTap) -> None:
    user = await register(client)
    code = await login_code(client, events, user["email"])
    response = await client.post("/auth/login/code", json={"email": user["email"], "code": code})
    assert response.status_code == 200, response.text
    assert response.json()["user"]["email_verified"] is True  # the code proved the mailbox
    again = await client.post("/auth/login/code", json={"email": user["email"], "code": code})
    assert again.status_code == 401


async def test_login_code_request_answers_the_same_for_unknown_emails(client: httpx.AsyncClient) -> None:
    user = await register(client)
    known = await client.post("/auth/request/login-code", json={"email": user["email"]})
    unknown = await client.post("/auth/request/login-code", json={"email": new_email()})
    assert known.status_code == unknown.status_code == 202
    assert known.json() == unknown.json()


async def test_a_login_code_dies_after_five_wrong_tries(client: httpx.AsyncClient, events: EventTap) -> None:
    user = await register(client)
    code = await login_code(client, events, user["email"])
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(5):
        response = await client.post("/auth/login/code", json={"email": user["email"], "code": wrong})
        assert response.status_code == 401
    right = await client.post("/auth/login/code", json={"email": user["email"], "code": code})
    assert right.status_code == 401


async def test_a_new_code_replaces_the_old_one(client: httpx.AsyncClient, events: EventTap) -> None:
    user = await register(client)
    first = await login_code(client, events, user["email"])
    second = await login_code(client, events, user["email"], previous=first)
    assert (
        await client.post("/auth/login/code", json={"email": user["email"], "code": first})
    ).status_code == 401
    assert (
        await client.post("/auth/login/code", json={"email": user["email"], "code": second})
    ).status_code == 200


async def test_malformed_code_is_a_validation_error(client: httpx.AsyncClient) -> None:
    response = await client.post("/auth/login/code", json={"email": "a@example.com", "code": "12ab"})
    assert response.status_code == 422
    assert "code" in response.json()["errors"]


async def test_change_email_tells_both_addresses_and_needs_verification_again(
    client: httpx.AsyncClient, events: EventTap
) -> None:
    user, tokens = await signed_up(client)
    token = await verification_token(events, user["email"])
    await client.post("/auth/verify", json={"token": token})
    new = new_email()
    wrong = await client.post(
        "/auth/change-email", headers=bearer(tokens), json={"new_email": new, "password": "bad"}
    )
    assert wrong.status_code == 401
    response = await client.post(
        "/auth/change-email", headers=bearer(tokens), json={"new_email": new, "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    assert response.json()["email"] == new and response.json()["email_verified"] is False
    changed = await events.wait_for("user.email_changed", lambda e: e["data"]["user_id"] == user["id"])
    assert changed["data"] == {**changed["data"], "old_email": user["email"], "new_email": new}
    await verification_token(events, new)
    # The old address no longer signs in.
    assert (
        await client.post("/auth/login", json={"email": user["email"], "password": PASSWORD})
    ).status_code == 401
    await login(client, new)
