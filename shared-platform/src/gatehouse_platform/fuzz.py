"""What the services' OpenAPI tests share (tests only: schemathesis is a dev dependency).

`FUZZ_CHECKS`: the checks every service's schemathesis test runs.
Not only "no 500": each answer must be one the operation documents (status code, content type,
documented headers such as a 429's `Retry-After`, body schema), an undeclared method must answer
405 with `Allow`, and an `OPTIONS` answer's `Allow` must name exactly the documented methods —
the checks that would have caught what issue 22's drill found over the gateway's merged document.
"""

from __future__ import annotations

from typing import Any

import httpx
from schemathesis.checks import CheckFunction, not_a_server_error
from schemathesis.specs.openapi.checks import (
    allow_header_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

FUZZ_CHECKS: list[CheckFunction] = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    unsupported_method,
    allow_header_conformance,
]


async def openapi_document(client: httpx.AsyncClient) -> dict[str, Any]:
    """The service's OpenAPI document, as a client reads it."""
    response = await client.get("/openapi.json")
    assert response.status_code == 200, response.text
    return dict(response.json())


def request_body_schema(document: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    """An operation's JSON request body schema, with the document's components to resolve it (for
    `jsonschema.validate`)."""
    schema = document["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]
    return {**schema, "components": document["components"]}


def assert_every_operation_lists_its_answers(document: dict[str, Any]) -> None:
    """Every operation lists 503, a body's 400, a secured one's 401, each as problem+json."""
    for path, item in document["paths"].items():
        for method, operation in item.items():
            where = f"{method.upper()} {path}"
            statuses = set(operation["responses"])
            assert "503" in statuses, where
            if "requestBody" in operation:
                assert "400" in statuses, where
            if "security" in operation:
                assert "401" in statuses, where
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")):
                    assert set(response["content"]) == {"application/problem+json"}, f"{where} {status}"
