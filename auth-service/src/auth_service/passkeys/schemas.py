"""Bodies of the passkey endpoints. Credentials are the browser's PublicKeyCredential as JSON
(`credential.toJSON()`: base64url fields), checked by the WebAuthn verification itself."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from auth_service.models import Passkey
from gatehouse_platform.schemas import RequestModel, SafeStr


class RegisterPasskey(RequestModel):
    credential: dict[str, Any]
    name: SafeStr = Field(min_length=1, max_length=64)


class PasskeyCredential(RequestModel):
    credential: dict[str, Any]


class RenamePasskey(RequestModel):
    name: SafeStr = Field(min_length=1, max_length=64)


class PasskeyOut(BaseModel):
    id: uuid.UUID
    name: str
    created_at: datetime
    last_used_at: datetime | None
    backed_up: bool = Field(description="Synced to the user's other devices (e.g. a password manager)")

    @classmethod
    def of(cls, passkey: Passkey) -> PasskeyOut:
        return cls(
            id=passkey.id,
            name=passkey.name,
            created_at=passkey.created_at,
            last_used_at=passkey.last_used_at,
            backed_up=passkey.backed_up,
        )


class PasskeyList(BaseModel):
    items: list[PasskeyOut]
    next_cursor: str | None = None
