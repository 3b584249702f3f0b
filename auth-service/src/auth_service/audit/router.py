"""The audit trail, read only: a person's own, and anyone's for admins."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from auth_service.audit import service
from auth_service.audit.schemas import AuditEventOut, AuditEventPage
from auth_service.audit.service import AuditEventType
from auth_service.dependencies import AdminPrincipal, CurrentPrincipal, DbSession
from auth_service.errors import MfaEnrollmentRequired, MfaSignInRequired
from auth_service.pagination import InvalidCursor
from gatehouse_platform.errors import Forbidden, Unauthorized, responses

router = APIRouter(prefix="/auth", tags=["audit"])

Limit = Annotated[int, Query(ge=1, le=200)]
Cursor = Annotated[str | None, Query(max_length=200, description="`next_cursor` of the previous page")]


@router.get(
    "/audit-events/me",
    responses=responses(Unauthorized, InvalidCursor),
    summary="My security activity, newest first",
)
async def my_audit_events(
    principal: CurrentPrincipal, db: DbSession, limit: Limit = 50, cursor: Cursor = None
) -> AuditEventPage:
    items, next_cursor = await service.page(db, limit=limit, cursor=cursor, user_id=principal.user.id)
    return AuditEventPage(items=[AuditEventOut.of(e) for e in items], next_cursor=next_cursor)


@router.get(
    "/admin/audit-events",
    tags=["admin"],
    responses=responses(Unauthorized, Forbidden, MfaEnrollmentRequired, MfaSignInRequired, InvalidCursor),
    summary="Any user's security activity, newest first",
)
async def admin_audit_events(
    _: AdminPrincipal,
    db: DbSession,
    user_id: uuid.UUID | None = None,
    type: Annotated[AuditEventType | None, Query(description="Only events of this type")] = None,
    since: Annotated[datetime | None, Query(description="Only events at or after this time")] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> AuditEventPage:
    items, next_cursor = await service.page(
        db, limit=limit, cursor=cursor, user_id=user_id, type_=type, since=since
    )
    return AuditEventPage(items=[AuditEventOut.of(e) for e in items], next_cursor=next_cursor)
