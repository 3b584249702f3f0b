"""Passkeys: registration, sign-in with no username or password, and the attacks on them —
a replayed challenge, another user's credential, the wrong origin or RP ID, a counter going back."""

from __future__ import annotations

from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from authenticator import SoftAuthenticator
from test_claims import claims
from test_mfa import problem_type

from auth_service.main import create_app
from conftest import PASSWORD, MovableClock, bearer, make_settings, signed_up
from gatehouse_platform.pytest_plugin import EventTap


async def add_passkey(
    client: httpx.AsyncClient, tokens: dict[str, Any], authenticator: SoftAuthenticator, name: str = "Laptop"
) -> dict[str, Any]:
    options = await client.post("/auth/passkeys/register/options", headers=bearer(tokens))
    assert options.status_code == 200, options.text
    response = await client.post(
        "/auth/passkeys/register/verify",
        json={"credential": authenticator.create(options.json()), "name": name},
        headers=bearer(tokens),
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def sign_in_options(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.post("/auth/passkeys/login/options")
    assert response.status_code == 200, response.text
    return dict(response.json())


async def sign_in(client: httpx.AsyncClient, credential: dict[str, Any]) -> httpx.Response:
    return await client.post("/auth/passkeys/login/verify", json={"credential": credential})


async def test_register_a_passkey_then_sign_in_with_it_and_no_password(
    client: httpx.AsyncClient, events: EventTap
) -> None:
    user, tokens = await signed_up(client)
    options = (await client.post("/auth/passkeys/register/options", headers=bearer(tokens))).json()
    assert options["rp"]["id"] == "localhost"
    assert options["authenticatorSelection"]["residentKey"] == "required"
    assert options["authenticatorSelection"]["userVerification"] == "required"
    authenticator = SoftAuthenticator()
    registered = await client.post(
        "/auth/passkeys/register/verify",
        json={"credential": authenticator.create(options), "name": "Laptop"},
        headers=bearer(tokens),
    )
    assert registered.status_code == 201, registered.text
    added = await events.wait_for("user.passkey_added", lambda e: e["data"]["user_id"] == user["id"])
    assert added["data"]["name"] == "Laptop"

    request = await sign_in_options(client)
    assert request.get("allowCredentials", []) == []  # discoverable: no username asked
    response = await sign_in(client, authenticator.get(request))
    assert response.status_code == 200, response.text
    assert response.json()["user"]["id"] == user["id"]
    assert response.cookies.get("gatehouse_refresh")
    assert claims(response.json()).amr == ["hwk", "mfa", "user"]
    [listed] = (await client.get("/auth/passkeys", headers=bearer(tokens))).json()["items"]
    assert listed["name"] == "Laptop" and listed["last_used_at"] is not None
    mfa = (await client.get("/auth/mfa", headers=bearer(tokens))).json()
    assert mfa["passkeys"] == 1


async def test_a_synced_passkey_says_swk(client: httpx.AsyncClient) -> None:
    _, tokens = await signed_up(client)
    authenticator = SoftAuthenticator(backup_eligible=True)
    assert (await add_passkey(client, tokens, authenticator))["backed_up"] is True
    response = await sign_in(client, authenticator.get(await sign_in_options(client)))
    assert response.status_code == 200, response.text
    assert claims(response.json()).amr == ["mfa", "swk", "user"]


async def test_a_replayed_challenge_is_refused(client: httpx.AsyncClient) -> None:
    _, tokens = await signed_up(client)
    authenticator = SoftAuthenticator()
    await add_passkey(client, tokens, authenticator)
    request = await sign_in_options(client)
    assert (await sign_in(client, authenticator.get(request))).status_code == 200
    replay = await sign_in(client, authenticator.get(request))
    assert replay.status_code == 401
    assert problem_type(replay) == "passkey-rejected"


async def test_a_registration_challenge_of_another_user_is_refused(client: httpx.AsyncClient) -> None:
    _, alice = await signed_up(client)
    _, mallory = await signed_up(client)
    options = (await client.post("/auth/passkeys/register/options", headers=bearer(alice))).json()
    response = await client.post(
        "/auth/passkeys/register/verify",
        json={"credential": SoftAuthenticator().create(options), "name": "Stolen"},
        headers=bearer(mallory),
    )
    assert response.status_code == 401
    assert (await client.get("/auth/passkeys", headers=bearer(mallory))).json()["items"] == []


async def test_a_credential_claiming_another_users_handle_is_refused(client: httpx.AsyncClient) -> None:
    _, alice = await signed_up(client)
    _, bob = await signed_up(client)
    alices_key = SoftAuthenticator()
    await add_passkey(client, alice, alices_key)
    bobs_key = SoftAuthenticator()
    await add_passkey(client, bob, bobs_key)
    alices_key.user_handle = bobs_key.user_handle  # Alice's credential, presented as Bob's account
    response = await sign_in(client, alices_key.get(await sign_in_options(client)))
    assert response.status_code == 401


async def test_an_unregistered_credential_is_refused(client: httpx.AsyncClient) -> None:
    _, tokens = await signed_up(client)
    await add_passkey(client, tokens, SoftAuthenticator())
    stranger = SoftAuthenticator()
    stranger.user_handle = b"\x00" * 16
    response = await sign_in(client, stranger.get(await sign_in_options(client)))
    assert response.status_code == 401


async def test_the_wrong_origin_or_rp_id_is_refused(client: httpx.AsyncClient) -> None:
    _, tokens = await signed_up(client)
    options = (await client.post("/auth/passkeys/register/options", headers=bearer(tokens))).json()
    phished = await client.post(
        "/auth/passkeys/register/verify",
        json={"credential": SoftAuthenticator().create(options, origin="https://evil.example"), "name": "x"},
        headers=bearer(tokens),
    )
    assert phished.status_code == 401
    authenticator = SoftAuthenticator()
    await add_passkey(client, tokens, authenticator)
    wrong_origin = await sign_in(
        client, authenticator.get(await sign_in_options(client), origin="https://evil.example")
    )
    assert wrong_origin.status_code == 401
    wrong_rp = await sign_in(client, authenticator.get(await sign_in_options(client), rp_id="evil.example"))
    assert wrong_rp.status_code == 401
    assert (await sign_in(client, authenticator.get(await sign_in_options(client)))).status_code == 200


async def test_a_sign_counter_going_backwards_is_refused(client: httpx.AsyncClient) -> None:
    _, tokens = await signed_up(client)
    authenticator = SoftAuthenticator()
    await add_passkey(client, tokens, authenticator)
    assert (
        await sign_in(client, authenticator.get(await sign_in_options(client), sign_count=7))
    ).status_code == 200
    cloned = await sign_in(client, authenticator.get(await sign_in_options(client), sign_count=5))
    assert cloned.status_code == 401
    assert problem_type(cloned) == "passkey-rejected"


async def test_a_changed_backup_eligibility_is_refused(client: httpx.AsyncClient) -> None:
    _, tokens = await signed_up(client)
    authenticator = SoftAuthenticator()
    await add_passkey(client, tokens, authenticator)
    response = await sign_in(client, authenticator.get(await sign_in_options(client), backup_eligible=True))
    assert response.status_code == 401


async def test_rename_and_remove_a_passkey_which_needs_a_recent_sign_in(
    client: httpx.AsyncClient, clock: MovableClock, events: EventTap
) -> None:
    user, tokens = await signed_up(client)
    _, others = await signed_up(client)
    authenticator = SoftAuthenticator()
    passkey = await add_passkey(client, tokens, authenticator)
    renamed = await client.patch(
        f"/auth/passkeys/{passkey['id']}", json={"name": "Phone"}, headers=bearer(tokens)
    )
    assert renamed.status_code == 200 and renamed.json()["name"] == "Phone"
    foreign = await client.patch(
        f"/auth/passkeys/{passkey['id']}", json={"name": "Mine"}, headers=bearer(others)
    )
    assert foreign.status_code == 404
    clock.offset += 301
    stale = await client.delete(f"/auth/passkeys/{passkey['id']}", headers=bearer(tokens))
    assert stale.status_code == 401
    assert problem_type(stale) == "reauthentication-required"
    clock.offset = 0
    assert (await client.delete(f"/auth/passkeys/{passkey['id']}", headers=bearer(others))).status_code == 404
    removed = await client.delete(f"/auth/passkeys/{passkey['id']}", headers=bearer(tokens))
    assert removed.status_code == 204
    event = await events.wait_for("user.passkey_removed", lambda e: e["data"]["user_id"] == user["id"])
    assert event["data"]["name"] == "Phone"
    assert (await sign_in(client, authenticator.get(await sign_in_options(client)))).status_code == 401


async def test_reauthenticating_with_a_passkey_renews_the_sign_in(
    client: httpx.AsyncClient, clock: MovableClock
) -> None:
    _, tokens = await signed_up(client)
    _, others = await signed_up(client)
    authenticator = SoftAuthenticator()
    passkey = await add_passkey(client, tokens, authenticator)
    other_key = SoftAuthenticator()
    await add_passkey(client, others, other_key)
    clock.offset += 301
    foreign = await client.post(
        "/auth/reauthenticate",
        json={"passkey": other_key.get(await sign_in_options(client))},
        headers=bearer(tokens),
    )
    assert foreign.status_code == 401  # a passkey of someone else proves nothing about me
    response = await client.post(
        "/auth/reauthenticate",
        json={"passkey": authenticator.get(await sign_in_options(client))},
        headers=bearer(tokens),
    )
    assert response.status_code == 200, response.text
    assert claims(response.json()).amr == ["hwk", "mfa", "pwd", "user"]
    removed = await client.delete(f"/auth/passkeys/{passkey['id']}", headers=bearer(response.json()))
    assert removed.status_code == 204


async def test_a_password_sign_in_of_a_user_with_a_passkey_finishes_with_the_passkey(
    client: httpx.AsyncClient,
) -> None:
    user, tokens = await signed_up(client)
    authenticator = SoftAuthenticator()
    await add_passkey(client, tokens, authenticator)
    _, others = await signed_up(client)
    other_key = SoftAuthenticator()
    await add_passkey(client, others, other_key)
    response = await client.post("/auth/login", json={"email": user["email"], "password": PASSWORD})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["mfa_required"] is True and body["methods"] == ["passkey"]
    foreign = await client.post(
        "/auth/login/mfa",
        json={"mfa_token": body["mfa_token"], "passkey": other_key.get(await sign_in_options(client))},
    )
    assert foreign.status_code == 401
    assert problem_type(foreign) == "invalid-second-factor"
    done = await client.post(
        "/auth/login/mfa",
        json={"mfa_token": body["mfa_token"], "passkey": authenticator.get(await sign_in_options(client))},
    )
    assert done.status_code == 200, done.text
    assert claims(done.json()).amr == ["hwk", "mfa", "pwd", "user"]


async def test_passkey_sign_in_is_limited_per_address(database_url: str, amqp_url: str) -> None:
    settings = make_settings(database_url, amqp_url, credential_ip_limit="3/minute")
    app = create_app(settings, run_relay=False)
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://auth.test") as strict,
    ):
        statuses = [(await strict.post("/auth/passkeys/login/options")).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
