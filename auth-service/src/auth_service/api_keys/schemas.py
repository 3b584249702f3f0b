"""Bodies of the API-key endpoints. The secret is in one answer only: the creation's."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field

from auth_service.models import ApiKey
from gatehouse_contracts.tokens import ApiKeyScope
from gatehouse_platform.schemas import RequestModel, SafeStr


class CreateApiKey(RequestModel):
    name: SafeStr = Field(min_length=1, max_length=64, description="How you tell this key apart")
    scopes: list[ApiKeyScope] = Field(
        min_length=1, max_length=4, description="What the key may do (see the scopes table)"
    )
    expires_in_days: int | None = Field(
        default=None, ge=1, le=3650, description="The key stops working this many days from now; none = never"
    )
    org_id: uuid.UUID | None = Field(
        default=None,
        description="Make the organization's key (you must be its owner or admin): it belongs to the org, "
        "outlives your membership, and may hold only `orgs:read` and `billing:read`",
    )


class CreatedApiKey(BaseModel):
    id: uuid.UUID
    key: str = Field(description="The key itself (`gk_live_…`): shown this once, never again")
    prefix: str
    name: str
    scopes: list[ApiKeyScope]
    org_id: uuid.UUID | None = Field(default=None, description="The organization whose key it is")
    expires_at: datetime | None


class ApiKeyOut(BaseModel):
    id: uuid.UUID
    name: str
    prefix: str = Field(description="The key's public start (`gk_live_` and its id part)")
    scopes: list[str]
    org_id: uuid.UUID | None = Field(description="The organization whose key it is; none: a personal key")
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None = Field(description="When it was last exchanged for an access token")

    @classmethod
    def of(cls, key: ApiKey) -> ApiKeyOut:
        return cls(
            id=key.id,
            name=key.name,
            prefix=key.prefix,
            scopes=list(key.scopes),
            org_id=key.org_id,
            created_at=key.created_at,
            expires_at=key.expires_at,
            last_used_at=key.last_used_at,
        )


class ApiKeyList(BaseModel):
    items: list[ApiKeyOut]
    next_cursor: str | None = None


class ExchangeRequest(RequestModel):
    key: str = Field(min_length=1, max_length=256)


class ExchangedToken(BaseModel):
    """An access token for the key (OAuth 2.0 naming); `key_id` is its `sid`."""

    access_token: str
    token_type: str = "Bearer"
    expires_in: int
    scope: str
    key_id: uuid.UUID
