"""The OpenAPI document says what auth-service does (issue 22: schemathesis found answers it did not
list, and request schemas admitting what the server refuses)."""

from __future__ import annotations

from typing import Any

import httpx
import jsonschema
import pytest

from conftest import new_email, new_username
from gatehouse_platform.fuzz import (
    assert_every_operation_lists_its_answers,
    openapi_document,
    request_body_schema,
)

PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
async def document(client: httpx.AsyncClient) -> dict[str, Any]:
    return await openapi_document(client)


def answers(document: dict[str, Any], method: str, path: str) -> set[str]:
    return set(document["paths"][path][method]["responses"])


def test_every_operation_lists_its_problem_answers(document: dict[str, Any]) -> None:
    assert_every_operation_lists_its_answers(document)
    assert {"401", "429"} <= answers(document, "post", "/auth/request/verify")
    assert {"401", "403"} <= answers(document, "get", "/auth/admin/users")
    assert "401" in answers(document, "patch", "/auth/me")
    assert "429" in answers(document, "post", "/auth/login")


def test_request_schemas_refuse_what_the_server_refuses(document: dict[str, Any]) -> None:
    register = request_body_schema(document, "post", "/auth/register")
    valid = {"email": new_email(), "username": new_username(), "password": "x" * 7}
    with pytest.raises(jsonschema.ValidationError):  # the server wants 8 to 128 characters
        jsonschema.validate(valid, register)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**valid, "password": "x" * 129}, register)
    jsonschema.validate({**valid, "password": "x" * 8}, register)
    for path, field in (("/auth/new-password", "new_password"), ("/auth/change-password", "new_password")):
        prop = document["components"]["schemas"][
            request_body_schema(document, "post", path)["$ref"].rsplit("/")[-1]
        ]
        assert (prop["properties"][field]["minLength"], prop["properties"][field]["maxLength"]) == (8, 128)

    login = request_body_schema(document, "post", "/auth/login")
    for refused in ({"password": "pw"}, {"email": "a@b.c", "username": "ada", "password": "pw"}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(refused, login)
    jsonschema.validate({"username": "ada", "password": "pw"}, login)
    jsonschema.validate({"email": "a@b.c", "username": None, "password": "pw"}, login)

    profile = request_body_schema(document, "patch", "/auth/me")
    with pytest.raises(jsonschema.ValidationError):  # a username cannot be cleared
        jsonschema.validate({"username": None}, profile)
    jsonschema.validate({"bio": None}, profile)


async def test_the_server_refuses_what_the_schemas_refuse(client: httpx.AsyncClient) -> None:
    short = await client.post(
        "/auth/register", json={"email": new_email(), "username": new_username(), "password": "x" * 7}
    )
    assert short.status_code == 422
    assert short.json()["errors"] == {"password": "Use at least 8 characters."}
    neither = await client.post("/auth/login", json={"password": "pw"})
    assert neither.status_code == 422


async def test_malformed_json_is_a_400_with_its_own_type(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/auth/login", content=b'{"email": "a@b.c", ', headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["type"] == "https://gatehouse.dev/problems/malformed-body"


async def test_405_allows_every_method_of_the_path(client: httpx.AsyncClient) -> None:
    response = await client.put("/auth/me")
    assert response.status_code == 405
    assert set(response.headers["allow"].split(", ")) == {"GET", "PATCH", "DELETE"}


async def test_verification_request_without_a_token_is_401(client: httpx.AsyncClient) -> None:
    for _ in range(3):
        assert (await client.post("/auth/request/verify")).status_code == 401
