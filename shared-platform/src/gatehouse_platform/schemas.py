"""Base of request bodies: unknown fields refused, and no NUL characters anywhere (PostgreSQL text
cannot store them; refusing them up front makes a clear 422 instead of a database error).

The JSON Schema of a body says what the server admits, rules checked in code included:
`exactly_one_of()` for "this field or that one", `PartialUpdate` / `without_null()` for fields
that may be left out but not sent as null."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict, field_validator

NUL_MESSAGE = "must not contain NUL characters"


def _no_nul(value: Any) -> Any:
    if isinstance(value, str) and "\x00" in value:
        raise ValueError(NUL_MESSAGE)
    if isinstance(value, list | tuple | set):
        for item in value:
            _no_nul(item)
    if isinstance(value, dict):
        for key, item in value.items():
            _no_nul(key)
            _no_nul(item)
    return value


SafeStr = Annotated[str, AfterValidator(_no_nul)]


class RequestModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _reject_nul(cls, value: Any) -> Any:
        return _no_nul(value)


def exactly_one_of(*fields: str) -> dict[str, Any]:
    """`json_schema_extra` for a body that needs exactly one of `fields` as a non-empty string (a
    null or empty one counts as absent); the model checks the same in a validator."""
    return {
        "oneOf": [
            {"required": [name], "properties": {name: {"type": "string", "minLength": 1}}} for name in fields
        ]
    }


def without_null(*fields: str) -> Callable[[dict[str, Any]], None]:
    """`json_schema_extra` taking `null` out of the schema of `fields` (every field when none are
    named): they default to None in Python ("left out") but refuse an explicit null."""

    def edit(schema: dict[str, Any]) -> None:
        for name, prop in schema.get("properties", {}).items():
            if fields and name not in fields:
                continue
            options = [option for option in prop.get("anyOf", ()) if option != {"type": "null"}]
            if "anyOf" in prop:
                del prop["anyOf"]
                if len(options) == 1:
                    prop.update(options[0])
                else:
                    prop["anyOf"] = options
            if prop.get("default", ...) is None:
                del prop["default"]

    return edit


class PartialUpdate(RequestModel):
    """A PATCH body: a field left out stays as it is; none may be null (it would mean nothing
    sensible), and the schema says so."""

    model_config = ConfigDict(json_schema_extra=without_null())
    null_message: ClassVar[str] = "must not be null (leave the field out to keep it)"

    @field_validator("*", mode="after")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError(cls.null_message)
        return value
