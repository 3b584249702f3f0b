"""Bodies of the provider sign-in and identity endpoints."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from auth_service.models import Identity


class AuthorizationStart(BaseModel):
    authorization_url: str


class IdentityOut(BaseModel):
    provider: str
    email: str | None
    email_verified: bool
    created_at: datetime
    last_login_at: datetime | None

    @classmethod
    def of(cls, identity: Identity) -> IdentityOut:
        return cls(
            provider=identity.provider,
            email=identity.email,
            email_verified=identity.email_verified,
            created_at=identity.created_at,
            last_login_at=identity.last_login_at,
        )


class IdentityList(BaseModel):
    items: list[IdentityOut]
    has_password: bool
    next_cursor: str | None = None
