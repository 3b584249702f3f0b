"""The OpenAPI document says what the server answers (issue 22: a schemathesis run over the merged
document found malformed JSON answering 400 `about:blank` undocumented, 401 and 429 undocumented,
and 405 answers whose `Allow` named one method of several)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Depends, FastAPI, Header
from pydantic import Field

from gatehouse_platform.app import Lifespan, service_app
from gatehouse_platform.errors import Conflict, Forbidden, TooManyRequests, Unauthorized, raises, responses
from gatehouse_platform.schemas import RequestModel

PROBLEM = "application/problem+json"
MALFORMED = "https://gatehouse.dev/problems/malformed-body"


@dataclass
class Services:
    pass


@raises(Unauthorized)
def signed_in(authorization: Annotated[str, Header()] = "") -> str:
    if authorization != "Bearer ok":
        raise Unauthorized()
    return "someone"


@raises(Forbidden)
def admin(user: Annotated[str, Depends(signed_in)]) -> str:
    return user


@raises(TooManyRequests)
def limited() -> None:
    return None


class Thing(RequestModel):
    name: str = Field(min_length=1)


def probe_app() -> FastAPI:
    router = APIRouter()

    @router.get("/things")
    async def list_things() -> list[str]:
        return []

    @router.post("/things", responses=responses(Conflict))
    async def add_thing(
        body: Thing, user: Annotated[str, Depends(admin)], _: Annotated[None, Depends(limited)]
    ) -> dict[str, str]:
        return {"name": body.name}

    @router.delete("/things/{name}")
    async def drop_thing(name: str, user: Annotated[str, Depends(signed_in)]) -> dict[str, str]:
        return {"name": name}

    @router.patch("/things/{name}")
    async def rename_thing(name: str, body: Thing) -> dict[str, str]:
        return {"name": body.name}

    return service_app(
        title="probe", description="", services=Services(), lifespan=Lifespan(), checks={}, routers=[router]
    )


def client_of(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://probe")


def answers(document: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    return dict(document["paths"][path][method]["responses"])


def test_each_operation_lists_what_its_dependencies_imply() -> None:
    document = probe_app().openapi()
    add = answers(document, "post", "/things")
    assert set(add) == {"200", "400", "401", "403", "409", "422", "429", "503"}
    for status in ("400", "401", "403", "409", "422", "429", "503"):
        assert add[status]["content"] == {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    assert MALFORMED in add["400"]["description"]
    assert add["429"]["headers"]["Retry-After"]["required"] is True
    assert "Retry-After" in add["503"]["headers"]
    assert set(answers(document, "get", "/things")) == {"200", "503"}
    assert set(answers(document, "delete", "/things/{name}")) == {"200", "401", "422", "503"}
    assert set(answers(document, "patch", "/things/{name}")) == {"200", "400", "422", "503"}


async def test_malformed_json_is_a_documented_400_with_a_stable_type() -> None:
    async with client_of(probe_app()) as http:
        for body in (b'{"name": ', b"\xff\xfe not utf-8", b"[1, 2"):
            response = await http.patch(
                "/things/a", content=body, headers={"Content-Type": "application/json"}
            )
            assert response.status_code == 400, response.text
            assert response.headers["content-type"] == PROBLEM
            assert response.json()["type"] == MALFORMED
        # Well-formed JSON of the wrong shape stays a 422 naming the field.
        wrong = await http.patch("/things/a", json={"name": 3})
        assert wrong.status_code == 422 and "name" in wrong.json()["errors"]
        empty = await http.patch("/things/a", json={"name": ""})
        assert empty.json()["errors"] == {"name": "Must not be empty."}


async def test_405_names_every_method_the_path_supports() -> None:
    async with client_of(probe_app()) as http:
        response = await http.put("/things/a", json={"name": "b"})
        assert response.status_code == 405
        assert response.headers["content-type"] == PROBLEM
        assert set(response.headers["allow"].split(", ")) == {"DELETE", "PATCH"}
        on_list = await http.delete("/things")
        assert set(on_list.headers["allow"].split(", ")) == {"GET", "POST"}
