"""What each operation can answer, written once for every OpenAPI document we serve.

An operation's answers follow from what it is made of, so they are derived, not listed by hand in
every route:

- a request body: 400 (`malformed-body`: not JSON, not UTF-8) and 422 (the fields are wrong);
- any parameter or body: 422;
- a dependency marked with `errors.raises(...)` (however deep): the statuses of those errors — a
  token check 401, a role check 403, a rate limit 429 (its `Retry-After` required);
- every operation: 503, when a dependency it needs is down (`Retry-After` when the server can tell);
- and what the route declares itself with `responses(...)` (a 404, a 409).

Every 4xx/5xx is `application/problem+json` with the shared `Problem` schema. The gateway adds its
own answers (edge token check, rate limits, upstream failures) to the merged document with
`add_answers()`, the same function the services use.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from starlette.routing import BaseRoute

from gatehouse_platform.errors import DomainError, MalformedBody, ServiceUnavailable, declared_errors

PROBLEM_REF = "#/components/schemas/Problem"
PROBLEM_CONTENT = {"application/problem+json": {"schema": {"$ref": PROBLEM_REF}}}
VALIDATION_FAILED = "Validation failed: `errors` maps each field to a message"
RETRY_AFTER_REQUIRED = frozenset({429})  # every 429 says when to come back; a 503 says it when it can
RETRY_AFTER = {
    "description": "Seconds to wait before trying again",
    "schema": {"type": "integer", "minimum": 0},
}


def dependency_errors(dependant: Dependant) -> list[type[DomainError]]:
    """The errors the marked dependencies of an operation may raise, depth first, each once."""
    found: list[type[DomainError]] = []
    for sub in dependant.dependencies:
        for error in (*declared_errors(sub.call), *dependency_errors(sub)):
            if error not in found:
                found.append(error)
    return found


def _has_parameters(dependant: Dependant) -> bool:
    if dependant.path_params or dependant.query_params or dependant.header_params:
        return True
    if dependant.cookie_params or dependant.body_params:
        return True
    return any(_has_parameters(sub) for sub in dependant.dependencies)


def _has_body(dependant: Dependant) -> bool:
    return bool(dependant.body_params) or any(_has_body(sub) for sub in dependant.dependencies)


def operation_answers(route: APIRoute | RouteContext) -> dict[int, str]:
    """The problem answers an operation gives, status → description, from what it is made of."""
    answers: dict[int, list[str]] = {}

    def add(status: int, description: str) -> None:
        descriptions = answers.setdefault(status, [])
        if description not in descriptions:
            descriptions.append(description)

    if _has_body(route.dependant):
        add(MalformedBody.status, MalformedBody.described())
    if _has_parameters(route.dependant):
        add(422, VALIDATION_FAILED)
    for error in dependency_errors(route.dependant):
        add(error.status, error.described())
    add(ServiceUnavailable.status, ServiceUnavailable.described())
    return {status: "; ".join(descriptions) for status, descriptions in sorted(answers.items())}


def add_answers(operation: dict[str, Any], answers: Mapping[int, str]) -> None:
    """Adds problem answers to an OpenAPI operation; a status already listed keeps its own
    description, with the new one appended when it says something else."""
    responses: dict[str, Any] = operation.setdefault("responses", {})
    for status, description in answers.items():
        entry = responses.setdefault(str(status), {"description": description})
        if description not in entry.get("description", "").split("; "):
            entry["description"] = "; ".join(filter(None, [entry.get("description"), description]))
    problems_as_problem_json(operation)


def problems_as_problem_json(operation: dict[str, Any]) -> None:
    """Every 4xx/5xx of the operation as problem+json with the Problem schema; `Retry-After` on
    429 and 503."""
    for status, response in operation.get("responses", {}).items():
        if not status.startswith(("4", "5")):
            continue
        response["content"] = PROBLEM_CONTENT
        if status == "422":
            response["description"] = VALIDATION_FAILED
        if status in ("429", "503"):
            headers = response.setdefault("headers", {})
            headers["Retry-After"] = {**RETRY_AFTER, "required": int(status) in RETRY_AFTER_REQUIRED}


def document_answers(schema: dict[str, Any], routes: Iterable[BaseRoute]) -> None:
    """Lists every operation's answers in a document FastAPI generated from `routes`."""
    paths: dict[str, Any] = schema.get("paths", {})
    # A route context is an APIRoute as included (prefix, the router's dependencies and all).
    for route in iter_route_contexts(list(routes)):
        if not isinstance(route.original_route, APIRoute) or not route.include_in_schema:
            continue
        item = paths.get(route.path_format or "", {})
        for method in route.methods or ():
            operation = item.get(method.lower())
            if operation is not None:
                add_answers(operation, operation_answers(route))
    for item in paths.values():
        for operation in item.values():
            if isinstance(operation, dict):
                problems_as_problem_json(operation)
