"""Payment endpoints: the caller's invoices, any user's for admins, and refunds by admins."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header

from billing_service.dependencies import AdminClaims, DbSession, ReaderClaims, StripeDep
from billing_service.errors import (
    STRIPE_ERRORS,
    IdempotencyKeyReused,
    InvalidCursor,
    PaymentNotFound,
    PaymentNotRefundable,
    RefundExceedsPayment,
)
from billing_service.pagination import Cursor, Limit
from billing_service.payments import money, service
from billing_service.payments.schemas import PaymentOut, PaymentPage, RefundOut, RefundRequest, RefundResult
from gatehouse_platform.errors import Forbidden, Unauthorized, responses

IdempotencyKey = Annotated[
    str,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        description="Required: the same key on the same payment gives the same refund, never a second.",
    ),
]

router = APIRouter(prefix="/billing", tags=["payments"])


@router.get(
    "/payments/me", summary="My payments, newest first", responses=responses(Unauthorized, InvalidCursor)
)
async def my_payments(
    claims: ReaderClaims, db: DbSession, limit: Limit = 20, cursor: Cursor = None
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


@router.post(
    "/admin/payments/{payment_id}/refund",
    tags=["admin"],
    summary="Refund a payment, all that is left or part of it (once per Idempotency-Key)",
    responses=responses(
        Unauthorized,
        Forbidden,
        PaymentNotFound,
        PaymentNotRefundable,
        RefundExceedsPayment,
        IdempotencyKeyReused,
        *STRIPE_ERRORS,
    ),
)
async def refund_payment(
    payment_id: uuid.UUID,
    body: RefundRequest,
    idempotency_key: IdempotencyKey,
    claims: AdminClaims,
    db: DbSession,
    stripe: StripeDep,
) -> RefundResult:
    refund, payment = await money.refund_payment(
        db,
        stripe,
        payment_id=payment_id,
        amount=body.amount,
        reason=body.reason,
        key=idempotency_key,
        admin_id=claims.sub,
    )
    return RefundResult(refund=RefundOut.model_validate(refund), payment=PaymentOut.model_validate(payment))
