"""Keyset pagination: `limit` + an opaque `cursor` naming the last row of the previous page."""

from __future__ import annotations

import base64
import uuid
from datetime import datetime
from typing import Generic, TypeVar

from pydantic import BaseModel

from billing_service.errors import InvalidCursor

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None


def encode_cursor(*parts: object) -> str:
    text = "|".join(p.isoformat() if isinstance(p, datetime) else str(p) for p in parts)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _decode(cursor: str, count: int) -> list[str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        parts = base64.urlsafe_b64decode(padded.encode()).decode().split("|")
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidCursor("The cursor is not one we gave out.") from exc
    if len(parts) != count:
        raise InvalidCursor("The cursor is not one we gave out.")
    return parts


def decode_time_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """A cursor of (timestamp, id)."""
    moment, row_id = _decode(cursor, 2)
    try:
        parsed = datetime.fromisoformat(moment)
        if parsed.tzinfo is None:
            raise ValueError("naive timestamp")
        return parsed, uuid.UUID(row_id)
    except ValueError as exc:
        raise InvalidCursor("The cursor is not one we gave out.") from exc


def decode_plan_cursor(cursor: str) -> tuple[int, str]:
    """A cursor of (amount, code)."""
    amount, code = _decode(cursor, 2)
    try:
        return int(amount), code
    except ValueError as exc:
        raise InvalidCursor("The cursor is not one we gave out.") from exc
