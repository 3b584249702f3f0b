"""Reading billing's audit trail (admins only). No route writes it."""

from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import APIRouter, Query

from billing_service.audit import service
from billing_service.audit.schemas import AuditEventOut, AuditEventPage
from billing_service.audit.service import AuditAction
from billing_service.dependencies import AdminClaims, DbSession
from billing_service.errors import InvalidCursor
from billing_service.pagination import Cursor, Limit
from gatehouse_platform.errors import Forbidden, Unauthorized, responses

router = APIRouter(prefix="/billing", tags=["admin"])


@router.get(
    "/admin/audit-events",
    summary="Admins' money and catalogue actions, newest first",
    responses=responses(Unauthorized, Forbidden, InvalidCursor),
)
async def audit_events(
    _: AdminClaims,
    db: DbSession,
    actor_id: uuid.UUID | None = None,
    user_id: uuid.UUID | None = None,
    action: AuditAction | None = None,
    subject_id: uuid.UUID | None = None,
    since: datetime | None = Query(None, description="Inclusive"),
    limit: Limit = 50,
    cursor: Cursor = None,
) -> AuditEventPage:
    rows, next_cursor = await service.page(
        db,
        limit=limit,
        cursor=cursor,
        actor_id=actor_id,
        user_id=user_id,
        action=action,
        subject_id=subject_id,
        since=since,
    )
    return AuditEventPage(items=[AuditEventOut.model_validate(r) for r in rows], next_cursor=next_cursor)
