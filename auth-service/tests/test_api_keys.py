"""API keys: created with their secret shown once, listed without it, exchanged by the gateway for
an access token limited to the key's scopes, revoked (by the person, or with their account)."""

import logging
import re
import uuid
from datetime import timedelta
from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from auth_service.models import ApiKey
from conftest import PASSWORD, EventTap, bearer, signed_up
from gatehouse_contracts.revocations import Revocations
from gatehouse_platform.db import utcnow

KEY_SHAPE = re.compile(r"^gk_live_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$")
EXCHANGE = "/auth/internal/api-keys/exchange"


def secret_of(key: str) -> str:
    """The random part (which may itself hold `_`), after `gk_live_`, the id part and `_`."""
    return key[len("gk_live_") + 13 :]


async def create_key(
    client: httpx.AsyncClient, tokens: dict[str, Any], scopes: list[str], **extra: Any
) -> dict[str, Any]:
    response = await client.post(
        "/auth/api-keys", json={"name": "ci deploys", "scopes": scopes, **extra}, headers=bearer(tokens)
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def exchange(client: httpx.AsyncClient, key: str) -> httpx.Response:
    return await client.post(EXCHANGE, json={"key": key})


async def key_token(client: httpx.AsyncClient, key: str) -> dict[str, str]:
    response = await exchange(client, key)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def problem_type(response: httpx.Response) -> str:
    return str(response.json()["type"]).rsplit("/", 1)[-1]


async def test_a_created_key_is_shown_once_and_stored_hashed(
    client: httpx.AsyncClient, db: async_sessionmaker[AsyncSession], events: EventTap
) -> None:
    user, tokens = await signed_up(client)
    created = await create_key(client, tokens, ["billing:read", "profile:read"], expires_in_days=30)
    key = created["key"]
    assert KEY_SHAPE.match(key) and len(secret_of(key)) == 43  # 256 random bits
    assert key.startswith(created["prefix"] + "_")
    assert created["scopes"] == ["profile:read", "billing:read"]  # the documented order

    listed = await client.get("/auth/api-keys", headers=bearer(tokens))
    assert listed.status_code == 200
    assert secret_of(key) not in listed.text
    (item,) = listed.json()["items"]
    assert item["id"] == created["id"] and item["prefix"] == created["prefix"]
    assert item["last_used_at"] is None and item["expires_at"] is not None and item["org_id"] is None

    async with db() as session:
        row = await session.get(ApiKey, uuid.UUID(created["id"]))
        assert row is not None and len(row.secret_hash) == 32
        assert key.encode() not in row.secret_hash and row.prefix == created["prefix"]

    event = await events.wait_for("api_key.created", lambda e: e["data"]["key_id"] == created["id"])
    assert event["data"]["email"] == user["email"] and event["data"]["prefix"] == created["prefix"]
    assert secret_of(key) not in str(event)

    trail = (await client.get("/auth/audit-events/me", headers=bearer(tokens))).json()["items"]
    assert any(e["type"] == "api_key.created" for e in trail)


async def test_the_exchanged_token_carries_the_keys_id_and_scopes_and_no_roles(
    client: httpx.AsyncClient, db: async_sessionmaker[AsyncSession]
) -> None:
    user, tokens = await signed_up(client)
    created = await create_key(client, tokens, ["profile:read", "billing:write"])
    response = await exchange(client, created["key"])
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer" and body["scope"] == "profile:read billing:write"
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["sid"] == created["id"] and claims["sub"] == user["id"]
    assert claims["scope"] == "profile:read billing:write" and claims["roles"] == []
    assert claims["exp"] - claims["iat"] == body["expires_in"] <= 900
    me = await client.get("/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200 and me.json()["id"] == user["id"]
    async with db() as session:
        row = await session.get(ApiKey, uuid.UUID(created["id"]))
        assert row is not None and row.last_used_at is not None


async def test_a_key_without_the_scope_is_refused_with_insufficient_scope(client: httpx.AsyncClient) -> None:
    _, tokens = await signed_up(client)
    created = await create_key(client, tokens, ["billing:read"])
    response = await client.get("/auth/me", headers=await key_token(client, created["key"]))
    assert response.status_code == 403
    assert problem_type(response) == "insufficient-scope"
    assert response.json()["required_scope"] == "profile:read"
    assert 'error="insufficient_scope"' in response.headers["www-authenticate"]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/auth/api-keys", {"name": "more", "scopes": ["profile:read"]}),
        ("GET", "/auth/api-keys", None),
        ("POST", "/auth/change-password", {"old_password": PASSWORD, "new_password": "a-new-long-one-9"}),
        ("PATCH", "/auth/me", {"bio": "keys may not"}),
        ("GET", "/auth/sessions", None),
        ("POST", "/auth/logout-all", None),
        ("GET", "/auth/admin/users", None),
        ("GET", "/auth/audit-events/me", None),
    ],
)
async def test_a_key_token_is_refused_where_no_scope_reaches(
    client: httpx.AsyncClient, method: str, path: str, body: dict[str, Any] | None
) -> None:
    _, tokens = await signed_up(client)
    created = await create_key(client, tokens, ["profile:read", "orgs:read", "billing:read", "billing:write"])
    response = await client.request(method, path, json=body, headers=await key_token(client, created["key"]))
    assert response.status_code == 403, response.text
    assert problem_type(response) == "insufficient-scope"
    assert "API keys cannot do this" in response.json()["detail"]


async def test_wrong_or_garbled_keys_are_refused_alike(client: httpx.AsyncClient) -> None:
    _, tokens = await signed_up(client)
    created = await create_key(client, tokens, ["profile:read"])
    key: str = created["key"]
    public, secret = created["prefix"], secret_of(key)
    wrong_secret = f"{public}_{'A' * 43}"
    unknown = f"gk_live_{'0' * 12}_{secret}"
    for presented in (wrong_secret, unknown, key[:-1], key + "x", "gk_live_", "not a key", key.upper()):
        response = await exchange(client, presented)
        assert response.status_code == 401, presented
        assert problem_type(response) == "invalid-api-key"
    empty = await exchange(client, "")
    assert empty.status_code == 422 and "key" in empty.json()["errors"]
    assert (
        await client.post(EXCHANGE, content=b"{", headers={"content-type": "application/json"})
    ).status_code == 400


async def test_a_revoked_key_stops_working_and_is_in_the_revocation_list(
    client: httpx.AsyncClient, events: EventTap
) -> None:
    user, tokens = await signed_up(client)
    created = await create_key(client, tokens, ["profile:read"])
    exchanged = await key_token(client, created["key"])
    revoked = await client.delete(f"/auth/api-keys/{created['id']}", headers=bearer(tokens))
    assert revoked.status_code == 204

    refused = await exchange(client, created["key"])
    assert refused.status_code == 401 and problem_type(refused) == "invalid-api-key"
    assert (await client.get("/auth/me", headers=exchanged)).status_code == 401  # its token dies too
    assert (await client.get("/auth/api-keys", headers=bearer(tokens))).json()["items"] == []
    again = await client.delete(f"/auth/api-keys/{created['id']}", headers=bearer(tokens))
    assert again.status_code == 404 and problem_type(again) == "api-key-not-found"

    event = await events.wait_for("api_key.revoked", lambda e: e["data"]["key_id"] == created["id"])
    assert event["data"]["reason"] == "revoked" and event["data"]["user_id"] == user["id"]
    listed = Revocations.model_validate((await client.get("/auth/internal/revocations")).json())
    assert uuid.UUID(created["id"]) in {s.session_id for s in listed.sessions}
    trail = (await client.get("/auth/audit-events/me", headers=bearer(tokens))).json()["items"]
    assert any(e["type"] == "api_key.revoked" for e in trail)


async def test_nobody_revokes_or_sees_another_persons_key(client: httpx.AsyncClient) -> None:
    _, owner = await signed_up(client)
    _, other = await signed_up(client)
    created = await create_key(client, owner, ["profile:read"])
    response = await client.delete(f"/auth/api-keys/{created['id']}", headers=bearer(other))
    assert response.status_code == 404
    assert (await client.get("/auth/api-keys", headers=bearer(other))).json()["items"] == []
    assert (await client.delete("/auth/api-keys/not-a-uuid", headers=bearer(owner))).status_code == 422
    assert (await exchange(client, created["key"])).status_code == 200


async def test_an_expired_key_is_refused_and_a_closing_one_gets_a_shorter_token(
    client: httpx.AsyncClient, db: async_sessionmaker[AsyncSession]
) -> None:
    _, tokens = await signed_up(client)
    expired = await create_key(client, tokens, ["profile:read"], expires_in_days=1)
    closing = await create_key(client, tokens, ["profile:read"], expires_in_days=1)
    async with db() as session, session.begin():
        await session.execute(
            update(ApiKey)
            .where(ApiKey.id == uuid.UUID(expired["id"]))
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
        await session.execute(
            update(ApiKey)
            .where(ApiKey.id == uuid.UUID(closing["id"]))
            .values(expires_at=utcnow() + timedelta(seconds=120))
        )
    refused = await exchange(client, expired["key"])
    assert refused.status_code == 401 and problem_type(refused) == "invalid-api-key"
    short = await exchange(client, closing["key"])
    assert short.status_code == 200 and 100 < short.json()["expires_in"] <= 120
    listed = (await client.get("/auth/api-keys", headers=bearer(tokens))).json()["items"]
    assert [k["id"] for k in listed] == [closing["id"]]


async def test_a_deactivated_accounts_keys_die(client: httpx.AsyncClient, events: EventTap) -> None:
    _, tokens = await signed_up(client)
    created = await create_key(client, tokens, ["profile:read"])
    response = await client.post("/auth/deactivate", json={"password": PASSWORD}, headers=bearer(tokens))
    assert response.status_code in (200, 204), response.text
    event = await events.wait_for("api_key.revoked", lambda e: e["data"]["key_id"] == created["id"])
    assert event["data"]["reason"] == "owner_deleted"
    assert (await exchange(client, created["key"])).status_code == 401


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "", "scopes": ["profile:read"]}, "name"),
        ({"name": "x" * 65, "scopes": ["profile:read"]}, "name"),
        ({"name": "ok", "scopes": []}, "scopes"),
        ({"name": "ok", "scopes": ["admin"]}, "scopes"),
        ({"name": "ok", "scopes": ["profile:read"], "expires_in_days": 0}, "expires_in_days"),
        ({"name": "ok", "scopes": ["profile:read"], "expires_in_days": 4000}, "expires_in_days"),
        ({"name": "ok", "scopes": ["billing:read"], "org_id": "not-an-id"}, "org_id"),
        ({"name": "ok", "scopes": ["profile:read"], "org_id": str(uuid.uuid4())}, "scopes"),
    ],
)
async def test_bad_key_requests_name_the_field(
    client: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    _, tokens = await signed_up(client)
    response = await client.post("/auth/api-keys", json=body, headers=bearer(tokens))
    assert response.status_code == 422, response.text
    assert any(name.startswith(field) for name in response.json()["errors"]), response.json()


async def test_the_secret_is_never_logged(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    _, tokens = await signed_up(client)
    with caplog.at_level(logging.DEBUG):
        created = await create_key(client, tokens, ["profile:read"])
        await exchange(client, created["key"])
        await exchange(client, created["key"][:-2] + "zz")
    secret = secret_of(created["key"])
    for record in caplog.records:
        assert secret not in record.getMessage()
        assert secret not in str(record.__dict__)
