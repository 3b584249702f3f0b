"""An organization's API keys: made, listed and revoked by its owners and admins; exchanged for a
token that names no person (its `sub` is the key) and reads the org as a member would; outliving
its creator's membership and account; dying with the org."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import jwt
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from test_api_keys import create_key, exchange, key_token, problem_type
from test_orgs import member_of, new_org, person

from auth_service.accounts.deletion import erase
from auth_service.models import ApiKey, User
from conftest import EventTap, bearer
from gatehouse_contracts.revocations import Revocations
from gatehouse_contracts.tokens import AccessTokenClaims
from gatehouse_platform.db import utcnow

Sessions = async_sessionmaker[AsyncSession]
ORG_SCOPES = ["orgs:read", "billing:read"]


async def org_with_people(
    client: httpx.AsyncClient, db: Sessions, events: EventTap
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], dict[str, Any]]:
    """An org, its owner's tokens, an admin's and a plain member's."""
    _, owner = await person(client, db)
    org = await new_org(client, owner)
    _, admin = await member_of(client, db, events, owner, org["id"], role="admin")
    _, member = await member_of(client, db, events, owner, org["id"])
    return org, owner, admin, member


async def post_key(client: httpx.AsyncClient, tokens: dict[str, Any], **body: Any) -> httpx.Response:
    return await client.post(
        "/auth/api-keys", json={"name": "org reports", "scopes": ORG_SCOPES, **body}, headers=bearer(tokens)
    )


async def test_owners_and_admins_make_the_orgs_keys_and_nobody_else_does(
    client: httpx.AsyncClient, db: Sessions, events: EventTap
) -> None:
    org, owner, admin, member = await org_with_people(client, db, events)
    _, outsider = await person(client, db)
    by_owner = await create_key(client, owner, ORG_SCOPES, org_id=org["id"])
    by_admin = await create_key(client, admin, ["billing:read"], org_id=org["id"])
    assert by_owner["org_id"] == org["id"] and by_owner["scopes"] == ORG_SCOPES

    refused = await post_key(client, member, org_id=org["id"])
    assert refused.status_code == 403 and problem_type(refused) == "org-role-required"
    unknown = await post_key(client, outsider, org_id=org["id"])
    assert unknown.status_code == 404 and problem_type(unknown) == "org-not-found"
    personal_scope = await post_key(client, owner, org_id=org["id"], scopes=["profile:read"])
    assert personal_scope.status_code == 422 and "scopes" in personal_scope.json()["errors"]
    writer = await post_key(client, owner, org_id=org["id"], scopes=["billing:read", "billing:write"])
    assert writer.status_code == 422 and "scopes" in writer.json()["errors"]

    listed = await client.get("/auth/api-keys", params={"org_id": org["id"]}, headers=bearer(admin))
    assert listed.status_code == 200
    assert [k["id"] for k in listed.json()["items"]] == [by_admin["id"], by_owner["id"]]
    assert all(k["org_id"] == org["id"] for k in listed.json()["items"])
    mine = await client.get("/auth/api-keys", headers=bearer(owner))
    assert mine.json()["items"] == []  # my personal keys only
    for tokens, status in ((member, 403), (outsider, 404)):
        response = await client.get("/auth/api-keys", params={"org_id": org["id"]}, headers=bearer(tokens))
        assert response.status_code == status, response.text
    created = await events.wait_for("api_key.created", lambda e: e["data"]["key_id"] == by_owner["id"])
    assert created["data"]["org_id"] == org["id"]


async def test_another_admin_revokes_an_org_key_and_a_member_cannot(
    client: httpx.AsyncClient, db: Sessions, events: EventTap
) -> None:
    org, owner, admin, member = await org_with_people(client, db, events)
    created = await create_key(client, owner, ORG_SCOPES, org_id=org["id"])
    token = await key_token(client, created["key"])
    _, outsider = await person(client, db)
    for tokens in (member, outsider):
        refused = await client.delete(f"/auth/api-keys/{created['id']}", headers=bearer(tokens))
        assert refused.status_code == 404 and problem_type(refused) == "api-key-not-found"
    assert (await client.delete(f"/auth/api-keys/{created['id']}", headers=bearer(admin))).status_code == 204
    event = await events.wait_for("api_key.revoked", lambda e: e["data"]["key_id"] == created["id"])
    assert event["data"]["reason"] == "revoked" and event["data"]["org_id"] == org["id"]
    assert (await exchange(client, created["key"])).status_code == 401
    assert (await client.get(f"/auth/orgs/{org['id']}", headers=token)).status_code == 401
    listed = await client.get("/auth/api-keys", params={"org_id": org["id"]}, headers=bearer(owner))
    assert listed.json()["items"] == []


async def test_the_exchanged_token_names_the_org_and_no_person(
    client: httpx.AsyncClient, db: Sessions, events: EventTap
) -> None:
    org, owner, _, member = await org_with_people(client, db, events)
    other = await new_org(client, owner)
    created = await create_key(client, owner, ORG_SCOPES, org_id=org["id"])
    response = await exchange(client, created["key"])
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    raw = jwt.decode(token, options={"verify_signature": False})
    assert raw["sub"] == raw["sid"] == created["id"]
    assert raw["email"] == "" and raw["email_verified"] is False and raw["roles"] == []
    assert raw["org_id"] == org["id"] and raw["org_role"] == "member"
    assert raw["scope"] == "orgs:read billing:read"
    claims = AccessTokenClaims.model_validate(raw)  # what every verifier reads
    assert claims.is_api_key and claims.org_id == uuid.UUID(org["id"])

    headers = {"Authorization": f"Bearer {token}"}
    read = await client.get(f"/auth/orgs/{org['id']}", headers=headers)
    assert read.status_code == 200, read.text
    assert read.json()["id"] == org["id"] and read.json()["role"] == "member"
    members = await client.get(f"/auth/orgs/{org['id']}/members", headers=headers)
    assert members.status_code == 200 and len(members.json()["items"]) == 3
    elsewhere = await client.get(f"/auth/orgs/{other['id']}", headers=headers)
    assert elsewhere.status_code == 404 and problem_type(elsewhere) == "org-not-found"
    for method, path in (("GET", "/auth/me"), ("GET", "/auth/api-keys"), ("GET", "/auth/orgs")):
        refused = await client.request(method, path, headers=headers)
        assert refused.status_code == 403 and problem_type(refused) == "insufficient-scope", path
    # a member's own session still reads as before; a billing-only org key does not read the org
    assert (await client.get(f"/auth/orgs/{org['id']}", headers=bearer(member))).status_code == 200
    billing_only = await create_key(client, owner, ["billing:read"], org_id=org["id"])
    narrow = await client.get(f"/auth/orgs/{org['id']}", headers=await key_token(client, billing_only["key"]))
    assert narrow.status_code == 403 and narrow.json()["required_scope"] == "orgs:read"


async def test_the_key_outlives_its_creators_removal_deletion_and_erasure(
    client: httpx.AsyncClient, db: Sessions, events: EventTap
) -> None:
    org, owner, admin, _ = await org_with_people(client, db, events)
    by_admin = await create_key(client, admin, ORG_SCOPES, org_id=org["id"])
    gone_admin, gone = await member_of(client, db, events, owner, org["id"], role="admin")
    removed_key = await create_key(client, gone, ORG_SCOPES, org_id=org["id"])
    removal = await client.delete(f"/auth/orgs/{org['id']}/members/{gone_admin['id']}", headers=bearer(owner))
    assert removal.status_code == 204, removal.text
    assert (
        await client.get(f"/auth/orgs/{org['id']}", headers=await key_token(client, removed_key["key"]))
    ).status_code == 200
    # the removed creator no longer revokes or lists it
    revoked = await client.delete(f"/auth/api-keys/{removed_key['id']}", headers=bearer(gone))
    assert revoked.status_code == 404

    # the admin who made the other key deletes their account, which is then erased
    me = (await client.get("/auth/me", headers=bearer(admin))).json()
    assert (await client.delete("/auth/me", headers=bearer(admin))).status_code == 202
    async with db() as session:
        user = await session.get(User, uuid.UUID(me["id"]))
        assert user is not None
        await erase(session, user, now=utcnow())
        await session.commit()
    async with db() as session:
        row = await session.get(ApiKey, uuid.UUID(by_admin["id"]))
        assert row is not None and row.revoked_at is None and row.user_id == uuid.UUID(me["id"])
    assert (
        await client.get(f"/auth/orgs/{org['id']}", headers=await key_token(client, by_admin["key"]))
    ).status_code == 200
    listed = await client.get("/auth/api-keys", params={"org_id": org["id"]}, headers=bearer(owner))
    assert {k["id"] for k in listed.json()["items"]} == {by_admin["id"], removed_key["id"]}


async def test_the_orgs_deletion_revokes_its_keys(
    client: httpx.AsyncClient, db: Sessions, events: EventTap
) -> None:
    org, owner, admin, _ = await org_with_people(client, db, events)
    created = await create_key(client, admin, ORG_SCOPES, org_id=org["id"])
    token = await key_token(client, created["key"])
    assert (await client.delete(f"/auth/orgs/{org['id']}", headers=bearer(owner))).status_code == 204
    event = await events.wait_for("api_key.revoked", lambda e: e["data"]["key_id"] == created["id"])
    assert event["data"]["reason"] == "org_deleted" and event["data"]["org_id"] == org["id"]
    refused = await exchange(client, created["key"])
    assert refused.status_code == 401 and problem_type(refused) == "invalid-api-key"
    assert (await client.get(f"/auth/orgs/{org['id']}", headers=token)).status_code == 401
    listed = Revocations.model_validate((await client.get("/auth/internal/revocations")).json())
    assert uuid.UUID(created["id"]) in {s.session_id for s in listed.sessions}


async def test_an_org_deleted_with_its_last_members_account_takes_its_keys(
    client: httpx.AsyncClient, db: Sessions, events: EventTap
) -> None:
    _, owner = await person(client, db)
    org = await new_org(client, owner)
    created = await create_key(client, owner, ["billing:read"], org_id=org["id"])
    assert (await client.delete("/auth/me", headers=bearer(owner))).status_code == 202
    event = await events.wait_for("api_key.revoked", lambda e: e["data"]["key_id"] == created["id"])
    assert event["data"]["reason"] == "org_deleted"
    assert (await exchange(client, created["key"])).status_code == 401
