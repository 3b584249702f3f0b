"""API keys: create (the secret shown once), list, revoke; the gateway's exchange."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from auth_service.api_keys import service
from auth_service.api_keys.schemas import (
    ApiKeyList,
    ApiKeyOut,
    CreateApiKey,
    CreatedApiKey,
    ExchangedToken,
    ExchangeRequest,
)
from auth_service.dependencies import ClientDep, CurrentPrincipal, DbSession, KeyRingDep, SettingsDep
from auth_service.errors import (
    ApiKeyNotFound,
    InvalidApiKey,
    InvalidField,
    OrgNotFound,
    OrgRoleRequired,
    TooManyApiKeys,
)
from gatehouse_contracts.tokens import API_KEY_SCOPES as ALL_SCOPES
from gatehouse_platform.errors import Unauthorized, responses

router = APIRouter(prefix="/auth", tags=["api-keys"])

EXCHANGE_PATH = "/internal/api-keys/exchange"


@router.post(
    "/api-keys",
    status_code=status.HTTP_201_CREATED,
    responses=responses(Unauthorized, TooManyApiKeys, OrgNotFound, OrgRoleRequired, InvalidField),
    summary="Create an API key (mine, or with `org_id` the org's): the key is in this answer only",
)
async def create_api_key(
    body: CreateApiKey, principal: CurrentPrincipal, db: DbSession, settings: SettingsDep, client: ClientDep
) -> CreatedApiKey:
    key, secret = await service.create(
        db,
        settings,
        principal.user,
        name=body.name,
        scopes=body.scopes,
        expires_in_days=body.expires_in_days,
        client=client,
        org_id=body.org_id,
    )
    return CreatedApiKey(
        id=key.id,
        key=secret,
        prefix=key.prefix,
        name=key.name,
        scopes=[s for s in ALL_SCOPES if s in key.scopes],
        org_id=key.org_id,
        expires_at=key.expires_at,
    )


@router.get(
    "/api-keys",
    responses=responses(Unauthorized, OrgNotFound, OrgRoleRequired),
    summary="My working API keys, or with `org_id` the org's (owners and admins); never their secret",
)
async def list_api_keys(
    principal: CurrentPrincipal,
    db: DbSession,
    org_id: Annotated[uuid.UUID | None, Query(description="The org whose keys to list")] = None,
) -> ApiKeyList:
    keys = await service.list_keys(db, principal.user.id, org_id)
    return ApiKeyList(items=[ApiKeyOut.of(k) for k in keys])


@router.delete(
    "/api-keys/{key_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(Unauthorized, ApiKeyNotFound),
    summary="Revoke an API key (mine, or an org's I own or administer): it stops working everywhere "
    "within seconds",
)
async def revoke_api_key(
    key_id: uuid.UUID, principal: CurrentPrincipal, db: DbSession, client: ClientDep
) -> None:
    await service.revoke(db, principal.user.id, key_id, client=client)


@router.post(
    EXCHANGE_PATH,
    include_in_schema=False,  # for the gateway; it refuses /auth/internal/** from outside
    responses=responses(InvalidApiKey),
    summary="Exchange an API key for a short-lived access token",
)
async def exchange_api_key(
    body: ExchangeRequest, db: DbSession, keyring: KeyRingDep, settings: SettingsDep
) -> ExchangedToken:
    exchanged = await service.exchange(db, keyring, settings, body.key)
    return ExchangedToken(
        access_token=exchanged.access_token,
        expires_in=exchanged.expires_in,
        scope=exchanged.key.scope,
        key_id=exchanged.key.id,
    )
