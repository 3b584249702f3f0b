"""Revoking API keys, for the key rules and for those whose changes end keys (an org's deletion):
each key gets `revoked_at`, an audit entry and `api_key.revoked` (the gateway drops it, every
verifier's denylist takes its id)."""

from __future__ import annotations

import uuid
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from auth_service.api_keys.repository import ApiKeyRepository
from auth_service.audit import service as audit
from auth_service.events import emit
from auth_service.models import ApiKey
from auth_service.principal import Client
from gatehouse_contracts.events import ApiKeyRevoked
from gatehouse_platform.db import utcnow

RevokeReason = Literal["revoked", "owner_deleted", "org_deleted", "creator_left"]


async def revoke_keys(
    db: AsyncSession,
    keys: list[ApiKey],
    *,
    reason: RevokeReason,
    client: Client | None = None,
    actor_id: uuid.UUID | None = None,
) -> None:
    """The keys stop working. The audit entry is the creator's (`actor_id`: who did it, when
    someone else: an org's admin revoking its key, the owner deleting the org)."""
    now = utcnow()
    for key in keys:
        key.revoked_at = now
        key.revoke_reason = reason
        audit.record(
            db,
            audit.AuditEventType.API_KEY_REVOKED,
            key.user_id,
            client=client,
            actor_id=actor_id if actor_id != key.user_id else None,
            details={
                "key_id": str(key.id),
                "name": key.name,
                "prefix": key.prefix,
                "reason": reason,
                **({"org_id": str(key.org_id)} if key.org_id else {}),
            },
        )
        await emit(
            db,
            ApiKeyRevoked(
                key_id=key.id, user_id=key.user_id, org_id=key.org_id, reason=reason, revoked_at=now
            ),
            user_id=key.user_id,
        )
    if keys:
        await db.flush()


async def revoke_all_of_org(db: AsyncSession, org_id: uuid.UUID, *, by: uuid.UUID) -> None:
    """The org is being deleted: every working key of it dies (reason `org_deleted`)."""
    keys = await ApiKeyRepository(db).active_of_org(org_id, for_update=True)
    await revoke_keys(db, keys, reason="org_deleted", actor_id=by)
