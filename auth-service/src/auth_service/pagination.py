"""Keyset pagination cursors, newest first on (a timestamp, an id): opaque to clients."""

from __future__ import annotations

import base64
import uuid
from datetime import datetime

from gatehouse_platform.errors import DomainError


class InvalidCursor(DomainError):
    status = 400
    slug = "invalid-cursor"
    title = "Invalid cursor"


def encode_cursor(at: datetime, id_: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(f"{at.isoformat()}|{id_}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        at, _, id_ = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
        return datetime.fromisoformat(at), uuid.UUID(id_)
    except ValueError as exc:
        raise InvalidCursor("The cursor is not one we gave out.") from exc
