"""Coupon and promotion code administration (admins only)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response

from billing_service.audit.service import AuditAction, record, sent
from billing_service.coupons import service
from billing_service.coupons.schemas import (
    CouponCreate,
    CouponOut,
    CouponPage,
    PromotionCodeCreate,
    PromotionCodeOut,
    PromotionCodePage,
)
from billing_service.dependencies import AdminClaims, DbSession, StripeDep
from billing_service.errors import (
    STRIPE_ERRORS,
    CouponDeleted,
    CouponNotFound,
    InvalidCursor,
    PromotionCodeNotFound,
    PromotionCodeTaken,
    UnknownCouponPlan,
)
from billing_service.pagination import Cursor, Limit
from gatehouse_platform.errors import Forbidden, Unauthorized, responses

router = APIRouter(prefix="/billing", tags=["coupons", "admin"])
ADMIN_ERRORS = (Unauthorized, Forbidden)


@router.post(
    "/coupons",
    status_code=201,
    summary="Make a coupon (percent or amount off, for once, some months or forever)",
    responses=responses(*ADMIN_ERRORS, UnknownCouponPlan, *STRIPE_ERRORS),
)
async def create_coupon(
    body: CouponCreate, admin: AdminClaims, db: DbSession, stripe: StripeDep
) -> CouponOut:
    coupon = await service.create_coupon(db, stripe, body)
    record(db, AuditAction.COUPON_CREATED, actor_id=admin.sub, subject_id=coupon.id, details=sent(body))
    return CouponOut.model_validate(coupon)


@router.get("/coupons", summary="Coupons, newest first", responses=responses(*ADMIN_ERRORS, InvalidCursor))
async def list_coupons(
    _: AdminClaims, db: DbSession, limit: Limit = 50, cursor: Cursor = None, include_deleted: bool = False
) -> CouponPage:
    rows, next_cursor = await service.list_coupons(
        db, include_deleted=include_deleted, limit=limit, cursor=cursor
    )
    return CouponPage(items=[CouponOut.model_validate(c) for c in rows], next_cursor=next_cursor)


@router.delete(
    "/coupons/{coupon_id}",
    status_code=204,
    summary="Delete a coupon: no new redemptions (its codes are deactivated); given discounts run on",
    responses=responses(*ADMIN_ERRORS, CouponNotFound, *STRIPE_ERRORS),
)
async def delete_coupon(
    coupon_id: uuid.UUID, admin: AdminClaims, db: DbSession, stripe: StripeDep
) -> Response:
    coupon = await service.delete_coupon(db, stripe, coupon_id)
    record(
        db,
        AuditAction.COUPON_DELETED,
        actor_id=admin.sub,
        subject_id=coupon.id,
        details={"name": coupon.name},
    )
    return Response(status_code=204)


@router.post(
    "/coupons/{coupon_id}/promotion-codes",
    status_code=201,
    summary="Make a promotion code customers type for the coupon",
    responses=responses(*ADMIN_ERRORS, CouponNotFound, CouponDeleted, PromotionCodeTaken, *STRIPE_ERRORS),
)
async def create_promotion_code(
    coupon_id: uuid.UUID, body: PromotionCodeCreate, admin: AdminClaims, db: DbSession, stripe: StripeDep
) -> PromotionCodeOut:
    promo = await service.create_promotion_code(db, stripe, coupon_id, body)
    details = {"coupon_id": str(coupon_id), **sent(body)}
    record(db, AuditAction.PROMOTION_CODE_CREATED, actor_id=admin.sub, subject_id=promo.id, details=details)
    return PromotionCodeOut.model_validate(promo)


@router.get(
    "/coupons/{coupon_id}/promotion-codes",
    summary="The coupon's promotion codes, newest first",
    responses=responses(*ADMIN_ERRORS, CouponNotFound, InvalidCursor),
)
async def list_promotion_codes(
    coupon_id: uuid.UUID, _: AdminClaims, db: DbSession, limit: Limit = 50, cursor: Cursor = None
) -> PromotionCodePage:
    rows, next_cursor = await service.list_promotion_codes(db, coupon_id, limit=limit, cursor=cursor)
    return PromotionCodePage(
        items=[PromotionCodeOut.model_validate(p) for p in rows], next_cursor=next_cursor
    )


@router.post(
    "/coupons/{coupon_id}/promotion-codes/{promotion_code_id}/deactivate",
    summary="Stop a promotion code (subscriptions that used it keep their discount)",
    responses=responses(*ADMIN_ERRORS, PromotionCodeNotFound, *STRIPE_ERRORS),
)
async def deactivate_promotion_code(
    coupon_id: uuid.UUID, promotion_code_id: uuid.UUID, admin: AdminClaims, db: DbSession, stripe: StripeDep
) -> PromotionCodeOut:
    promo = await service.deactivate_promotion_code(db, stripe, coupon_id, promotion_code_id)
    details = {"coupon_id": str(coupon_id), "code": promo.code}
    record(
        db, AuditAction.PROMOTION_CODE_DEACTIVATED, actor_id=admin.sub, subject_id=promo.id, details=details
    )
    return PromotionCodeOut.model_validate(promo)
