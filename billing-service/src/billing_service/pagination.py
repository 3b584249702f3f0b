"""Keyset pagination: `limit` + an opaque `cursor` naming the last row of the previous page."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Annotated, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel

from billing_service.errors import InvalidCursor

T = TypeVar("T")
Row = TypeVar("Row")

Limit = Annotated[int, Query(ge=1, le=100)]
Cursor = Annotated[str | None, Query(max_length=200)]

NOT_OURS = "The cursor is not one we gave out."


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None


def encode_cursor(*parts: object) -> str:
    text = "|".join(p.isoformat() if isinstance(p, datetime) else str(p) for p in parts)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def page_of(
    rows: Sequence[Row], limit: int, position: Callable[[Row], tuple[object, ...]]
) -> tuple[list[Row], str | None]:
    """The first `limit` of `rows` (fetched with `limit + 1`) and, if there were more, the cursor
    of the next page: the `position` of this page's last row."""
    page = list(rows[:limit])
    return page, encode_cursor(*position(page[-1])) if len(rows) > limit else None


def _decode(cursor: str, count: int) -> list[str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        parts = base64.urlsafe_b64decode(padded.encode()).decode().split("|")
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidCursor(NOT_OURS) from exc
    if len(parts) != count:
        raise InvalidCursor(NOT_OURS)
    return parts


def decode_single_cursor(cursor: str) -> str:
    """A cursor of one value (an id of the provider's)."""
    (value,) = _decode(cursor, 1)
    return value


def decode_time_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """A cursor of (timestamp, id)."""
    moment, row_id = decode_time_key_cursor(cursor)
    try:
        return moment, uuid.UUID(row_id)
    except ValueError as exc:
        raise InvalidCursor(NOT_OURS) from exc


def decode_time_key_cursor(cursor: str) -> tuple[datetime, str]:
    """A cursor of (timestamp, a provider's id such as `evt_…`)."""
    moment, key = _decode(cursor, 2)
    try:
        parsed = datetime.fromisoformat(moment)
    except ValueError as exc:
        raise InvalidCursor(NOT_OURS) from exc
    if parsed.tzinfo is None:
        raise InvalidCursor(NOT_OURS)
    return parsed, key


def decode_plan_cursor(cursor: str) -> tuple[int, str]:
    """A cursor of (amount, code)."""
    amount, code = _decode(cursor, 2)
    try:
        return int(amount), code
    except ValueError as exc:
        raise InvalidCursor(NOT_OURS) from exc
