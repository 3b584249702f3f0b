"""Tokens exchanged from an API key (a `scope` claim, `sid` = the key's id): billing's read routes
need `billing:read`, its money actions `billing:write`, and routes no scope covers (the Customer
Portal, the data export, admin APIs) refuse every key with 403 insufficient-scope. A revoked key's
token is refused once `api_key.revoked` reaches billing's denylist."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import httpx
import pytest

from conftest import User, assert_problem
from gatehouse_contracts.envelope import EventData
from gatehouse_contracts.events import ApiKeyRevoked
from gatehouse_platform.testing import TestIssuer, eventually

ALL = "profile:read orgs:read billing:read billing:write"


def key_token(issuer: TestIssuer, user: User, scope: str, key_id: uuid.UUID | None = None) -> dict[str, str]:
    return issuer.bearer(
        user.id, email=user.email, scope=scope, sid=str(key_id or uuid.uuid4()), roles=[], amr=[]
    )


@pytest.mark.parametrize(
    "path",
    [
        "/billing/subscriptions/me",
        "/billing/entitlements/me",
        "/billing/payments/me",
        "/billing/invoices/me",
        "/billing/payment-method/me",
    ],
)
async def test_billing_read_answers_a_key_as_it_answers_the_person(
    client: httpx.AsyncClient, new_user: Callable[..., User], issuer: TestIssuer, path: str
) -> None:
    user = new_user()
    as_person = await client.get(path, headers=user.headers)
    as_key = await client.get(path, headers=key_token(issuer, user, "billing:read"))
    assert as_key.status_code == as_person.status_code != 403, as_key.text
    assert as_key.json() == as_person.json() or as_key.json()["type"] == as_person.json()["type"]
    refused = await client.get(path, headers=key_token(issuer, user, "profile:read billing:write"))
    body = assert_problem(refused, 403, "insufficient-scope")
    assert body["required_scope"] == "billing:read"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/billing/subscriptions/subscribe", {"plan_code": "no-such-plan"}),
        ("POST", "/billing/subscriptions/upgrade", {"plan_code": "no-such-plan"}),
        ("POST", "/billing/subscriptions/cancel", None),
        ("POST", "/billing/subscriptions/resume", None),
        ("DELETE", "/billing/subscriptions/scheduled-change", None),
    ],
)
async def test_money_actions_need_billing_write(
    client: httpx.AsyncClient,
    new_user: Callable[..., User],
    issuer: TestIssuer,
    method: str,
    path: str,
    body: dict[str, str] | None,
) -> None:
    user = new_user()
    read_only = await client.request(method, path, json=body, headers=key_token(issuer, user, "billing:read"))
    assert assert_problem(read_only, 403, "insufficient-scope")["required_scope"] == "billing:write"
    as_person = await client.request(method, path, json=body, headers=user.headers)
    as_writer = await client.request(
        method, path, json=body, headers=key_token(issuer, user, "billing:write")
    )
    assert as_writer.status_code == as_person.status_code != 403, as_writer.text
    assert as_writer.json()["type"] == as_person.json()["type"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/billing/portal"),
        ("GET", "/billing/me/export"),
        ("GET", "/billing/admin/users/00000000-0000-0000-0000-000000000000/subscriptions"),
        ("POST", "/billing/plans"),
    ],
)
async def test_routes_no_scope_covers_refuse_every_key(
    client: httpx.AsyncClient, new_user: Callable[..., User], issuer: TestIssuer, method: str, path: str
) -> None:
    user = new_user()
    headers = issuer.bearer(user.id, email=user.email, scope=ALL, roles=["admin"])  # even an admin's
    response = await client.request(method, path, json={} if method == "POST" else None, headers=headers)
    body = assert_problem(response, 403, "insufficient-scope")
    assert body.get("required_scope") is None and "API keys cannot do this" in body["detail"]


async def test_a_revoked_keys_token_is_refused_once_the_event_arrives(
    client: httpx.AsyncClient,
    new_user: Callable[..., User],
    issuer: TestIssuer,
    publish: Callable[[EventData], Awaitable[None]],
) -> None:
    user, key_id = new_user(), uuid.uuid4()
    headers = key_token(issuer, user, "billing:read", key_id)
    assert (await client.get("/billing/entitlements/me", headers=headers)).status_code == 200
    await publish(
        ApiKeyRevoked(
            key_id=key_id, user_id=user.id, org_id=None, reason="revoked", revoked_at=datetime.now(UTC)
        )
    )

    async def refused() -> bool:
        return (await client.get("/billing/entitlements/me", headers=headers)).status_code == 401

    await eventually(refused, "billing to refuse the revoked key's token", within=5.0)
    other_key = key_token(issuer, user, "billing:read")
    assert (await client.get("/billing/entitlements/me", headers=other_key)).status_code == 200


async def test_an_org_keys_token_reads_its_orgs_billing_and_is_nobody_personally(
    client: httpx.AsyncClient, issuer: TestIssuer, publish: Callable[[EventData], Awaitable[None]]
) -> None:
    """An org's key: `sub` and `sid` are the key's id, no email, `org_role` member."""
    key_id, org_id = uuid.uuid4(), uuid.uuid4()
    headers = issuer.bearer(
        key_id,
        email="",
        email_verified=False,
        scope="orgs:read billing:read",
        sid=str(key_id),
        org_id=str(org_id),
        org_role="member",
        roles=[],
        amr=[],
    )
    entitlements = await client.get(f"/billing/orgs/{org_id}/entitlements", headers=headers)
    assert entitlements.status_code == 200, entitlements.text
    assert entitlements.json()["org_id"] == str(org_id)
    assert_problem(
        await client.get(f"/billing/orgs/{uuid.uuid4()}/entitlements", headers=headers), 404, "org-not-found"
    )
    mine = await client.get("/billing/subscriptions/me", headers=headers)  # nobody's: the key has none
    assert mine.status_code == 404, mine.text
    await publish(
        ApiKeyRevoked(
            key_id=key_id,
            user_id=uuid.uuid4(),
            org_id=org_id,
            reason="org_deleted",
            revoked_at=datetime.now(UTC),
        )
    )

    async def refused() -> bool:
        return (await client.get(f"/billing/orgs/{org_id}/entitlements", headers=headers)).status_code == 401

    await eventually(refused, "billing to refuse the deleted org's key", within=5.0)
