"""Payment endpoints: the caller's invoices, and any user's for admins."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from billing_service.dependencies import AdminClaims, CurrentClaims, DbSession
from billing_service.errors import InvalidCursor
from billing_service.pagination import Cursor, Limit
from billing_service.payments import service
from billing_service.payments.schemas import PaymentOut, PaymentPage
from gatehouse_platform.errors import Forbidden, Unauthorized, responses

router = APIRouter(prefix="/billing", tags=["payments"])


@router.get(
    "/payments/me", summary="My payments, newest first", responses=responses(Unauthorized, InvalidCursor)
)
async def my_payments(
    claims: CurrentClaims, db: DbSession, limit: Limit = 20, cursor: Cursor = None
) -> PaymentPage:
    payments, next_cursor = await service.payments_page(db, claims.sub, limit=limit, cursor=cursor)
    return PaymentPage(items=[PaymentOut.model_validate(p) for p in payments], next_cursor=next_cursor)


@router.get(
    "/admin/users/{user_id}/payments",
    tags=["admin"],
    summary="A user's payments, newest first",
    responses=responses(Unauthorized, Forbidden, InvalidCursor),
)
async def user_payments(
    user_id: uuid.UUID, _: AdminClaims, db: DbSession, limit: Limit = 20, cursor: Cursor = None
) -> PaymentPage:
    payments, next_cursor = await service.payments_page(db, user_id, limit=limit, cursor=cursor)
    return PaymentPage(items=[PaymentOut.model_validate(p) for p in payments], next_cursor=next_cursor)
