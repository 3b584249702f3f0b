"""The OpenAPI document says what billing-service does (issue 22: the schema admitted `tier: null`,
which the server refuses, and the server admitted currency `ivi`, which Stripe does not know)."""

from __future__ import annotations

from typing import Any

import httpx
import jsonschema
import pytest

from conftest import NewPlan, new_code
from gatehouse_platform.fuzz import (
    assert_every_operation_lists_its_answers,
    openapi_document,
    request_body_schema,
)

PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
async def document(client: httpx.AsyncClient) -> dict[str, Any]:
    return await openapi_document(client)


def test_every_operation_lists_its_problem_answers(document: dict[str, Any]) -> None:
    assert_every_operation_lists_its_answers(document)
    plans = document["paths"]["/billing/plans"]["post"]["responses"]
    assert {"401", "403"} <= set(plans)
    assert set(plans["403"]["content"]) == {PROBLEM}


def test_plan_schemas_refuse_null_fields_and_unknown_currencies(document: dict[str, Any]) -> None:
    update = request_body_schema(document, "patch", "/billing/plans/{plan_id}")
    for refused in ({"tier": None}, {"name": None}, {"currency": "ivi"}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(refused, update)
    jsonschema.validate({"tier": "pro", "currency": "eur"}, update)
    create = request_body_schema(document, "post", "/billing/plans")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"code": "x", "name": "X", "tier": "pro", "amount": 1, "currency": "ivi"}, create)


async def test_a_currency_stripe_does_not_support_is_refused(
    client: httpx.AsyncClient, admin: dict[str, str], new_plan: NewPlan
) -> None:
    body = {"code": new_code(), "name": "X", "tier": "pro", "amount": 100, "currency": "ivi"}
    created = await client.post("/billing/plans", json=body, headers=admin)
    assert created.status_code == 422, created.text
    assert "currency" in created.json()["errors"]
    plan = await new_plan(currency="EUR")  # any case, stored as Stripe writes it
    assert plan["currency"] == "eur"
    changed = await client.patch(f"/billing/plans/{plan['id']}", json={"currency": "ivi"}, headers=admin)
    assert changed.status_code == 422 and "currency" in changed.json()["errors"]
    cleared = await client.patch(f"/billing/plans/{plan['id']}", json={"tier": None}, headers=admin)
    assert cleared.status_code == 422 and "tier" in cleared.json()["errors"]
