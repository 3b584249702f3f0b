"""Billing's audit trail: every admin action on the catalogue and on money leaves an entry naming
the admin, read back (admins only) with filters and pages. Refunds are checked with the refund
tests (test_refunds_disputes.py)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
from test_coupons import make_code, make_coupon

from conftest import User, new_code
from gatehouse_platform import testing

TRAIL = "/billing/admin/audit-events"


async def trail(client: httpx.AsyncClient, headers: dict[str, str], **params: Any) -> dict[str, Any]:
    response = await client.get(TRAIL, params={"limit": 100, **params}, headers=headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_catalogue_changes_are_audited_with_the_admin_who_made_them(
    client: httpx.AsyncClient, issuer: testing.TestIssuer
) -> None:
    admin_id = uuid.uuid4()
    admin = issuer.bearer(admin_id, email="auditor@example.com", roles=["admin"])
    created = await client.post(
        "/billing/plans",
        json={"code": new_code(), "name": "Audited", "tier": "pro", "amount": 1500},
        headers=admin,
    )
    assert created.status_code == 201, created.text
    plan = created.json()
    changed = await client.patch(f"/billing/plans/{plan['id']}", json={"name": "Renamed"}, headers=admin)
    assert changed.status_code == 200, changed.text
    assert (await client.delete(f"/billing/plans/{plan['id']}", headers=admin)).status_code == 204
    coupon = await make_coupon(client, admin, name="Audited coupon")
    code = await make_code(client, admin, coupon["id"])
    stopped = await client.post(
        f"/billing/coupons/{coupon['id']}/promotion-codes/{code['id']}/deactivate", headers=admin
    )
    assert stopped.status_code == 200, stopped.text
    assert (await client.delete(f"/billing/coupons/{coupon['id']}", headers=admin)).status_code == 204

    entries = (await trail(client, admin, actor_id=str(admin_id)))["items"]
    assert [(e["action"], e["subject_id"]) for e in entries] == [
        ("coupon.deleted", coupon["id"]),
        ("promotion_code.deactivated", code["id"]),
        ("promotion_code.created", code["id"]),
        ("coupon.created", coupon["id"]),
        ("plan.retired", plan["id"]),
        ("plan.updated", plan["id"]),
        ("plan.created", plan["id"]),
    ]
    assert {e["actor_id"] for e in entries} == {str(admin_id)}
    by_action = {e["action"]: e["details"] for e in entries}
    assert by_action["plan.updated"] == {"name": "Renamed"}
    assert by_action["plan.created"]["amount"] == 1500
    assert by_action["promotion_code.created"] == {"coupon_id": coupon["id"], "code": code["code"]}
    assert by_action["plan.retired"] == {"code": plan["code"]}

    only_plan = await trail(client, admin, subject_id=plan["id"], action="plan.updated")
    assert [e["action"] for e in only_plan["items"]] == ["plan.updated"]


async def test_the_trail_comes_in_pages_and_a_refused_action_leaves_no_entry(
    client: httpx.AsyncClient, issuer: testing.TestIssuer
) -> None:
    admin_id = uuid.uuid4()
    admin = issuer.bearer(admin_id, roles=["admin"])
    coupons = [await make_coupon(client, admin, name=f"Page {n}") for n in range(3)]
    missing = await client.delete(f"/billing/plans/{uuid.uuid4()}", headers=admin)
    assert missing.status_code == 404

    first = await trail(client, admin, actor_id=str(admin_id), limit=2)
    assert [e["subject_id"] for e in first["items"]] == [coupons[2]["id"], coupons[1]["id"]]
    second = await trail(client, admin, actor_id=str(admin_id), limit=2, cursor=first["next_cursor"])
    assert [e["subject_id"] for e in second["items"]] == [coupons[0]["id"]]
    assert second["next_cursor"] is None


async def test_only_admins_read_the_trail_and_bad_filters_are_refused(
    client: httpx.AsyncClient, admin: dict[str, str], new_user: Callable[..., User]
) -> None:
    person = new_user()
    assert (await client.get(TRAIL, headers=person.headers)).status_code == 403
    assert (await client.get(TRAIL)).status_code == 401
    for params in ({"action": "plan.stolen"}, {"actor_id": "nobody"}, {"limit": 0}, {"since": "yesterday"}):
        refused = await client.get(TRAIL, params=params, headers=admin)
        assert refused.status_code == 422, params
        assert refused.headers["content-type"].startswith("application/problem+json")
    forged = await client.get(TRAIL, params={"cursor": "forged"}, headers=admin)
    assert forged.status_code == 400 and forged.json()["type"].endswith("/invalid-cursor")
    # Append-only: no method writes it.
    assert (await client.post(TRAIL, json={}, headers=admin)).status_code == 405
