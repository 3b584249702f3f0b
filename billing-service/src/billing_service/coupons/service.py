"""Coupon rules: the admin's coupons and promotion codes, kept in step with Stripe, and the check a
promotion code passes before a customer may subscribe with it.

Each Stripe call carries an idempotency key built from the row's id and the intent, so a retried
request never makes a second coupon or code. A coupon limited to plans is limited at Stripe to
those plans' products, so a code typed on Stripe's Checkout page follows the same rule as one given
to `POST /billing/subscriptions/subscribe`. Redemption counts are Stripe's (Checkout redeems codes
we never see typed): the subscribe check reads them from Stripe.
"""

from __future__ import annotations

import uuid

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from billing_service.coupons.repository import CouponRepository, PromotionCodeRepository
from billing_service.coupons.schemas import CouponCreate, PromotionCodeCreate
from billing_service.errors import (
    CouponDeleted,
    CouponNotFound,
    PromotionCodeExpired,
    PromotionCodeFirstTimeOnly,
    PromotionCodeNotApplicable,
    PromotionCodeNotFound,
    PromotionCodeTaken,
    PromotionCodeUnknown,
    PromotionCodeUsedUp,
    UnknownCouponPlan,
)
from billing_service.integrations.stripe import StripeGateway, StripeRequestRejected
from billing_service.models import Coupon, Plan, PromotionCode
from billing_service.pagination import decode_time_cursor, page_of
from billing_service.payments.repository import PaymentRepository
from billing_service.plans.repository import PlanRepository
from gatehouse_platform.db import utcnow


async def get_coupon(db: AsyncSession, coupon_id: uuid.UUID, *, for_update: bool = False) -> Coupon:
    coupon = await CouponRepository(db).get(coupon_id, for_update=for_update)
    if coupon is None:
        raise CouponNotFound(f"No coupon {coupon_id}.")
    return coupon


async def create_coupon(db: AsyncSession, stripe: StripeGateway, body: CouponCreate) -> Coupon:
    product_ids = []
    plans = PlanRepository(db)
    for code in dict.fromkeys(body.applies_to):
        plan = await plans.by_code(code)
        if plan is None:
            raise UnknownCouponPlan(f"No plan with code {code!r} for the coupon to apply to.")
        if plan.stripe_product_id:
            product_ids.append(plan.stripe_product_id)
    coupon = Coupon(
        id=uuid.uuid4(),
        name=body.name,
        percent_off=body.percent_off,
        amount_off=body.amount_off,
        currency=body.currency,
        duration=body.duration,
        duration_in_months=body.duration_in_months,
        max_redemptions=body.max_redemptions,
        redeem_by=body.redeem_by,
        plan_codes=list(dict.fromkeys(body.applies_to)),
    )
    db.add(coupon)
    await db.flush()
    coupon.stripe_coupon_id = await stripe.create_coupon(
        name=coupon.name,
        percent_off=coupon.percent_off,
        amount_off=coupon.amount_off,
        currency=coupon.currency,
        duration=coupon.duration.value,
        duration_in_months=coupon.duration_in_months,
        max_redemptions=coupon.max_redemptions,
        redeem_by=coupon.redeem_by,
        product_ids=product_ids,
        metadata={"coupon_id": str(coupon.id)},
        key=f"coupon-{coupon.id}-create",
    )
    await db.flush()
    return coupon


async def list_coupons(
    db: AsyncSession, *, include_deleted: bool, limit: int, cursor: str | None
) -> tuple[list[Coupon], str | None]:
    after = decode_time_cursor(cursor) if cursor else None
    rows = await CouponRepository(db).page(include_deleted=include_deleted, limit=limit + 1, after=after)
    return page_of(rows, limit, lambda coupon: (coupon.created_at, coupon.id))


async def delete_coupon(db: AsyncSession, stripe: StripeGateway, coupon_id: uuid.UUID) -> Coupon:
    """No new redemptions (its codes are deactivated); discounts already given run on. Idempotent."""
    coupon = await get_coupon(db, coupon_id, for_update=True)
    if coupon.deleted_at is not None:
        return coupon
    for promo in await PromotionCodeRepository(db).active_for_coupon(coupon.id):
        await _deactivate(stripe, promo)
    if coupon.stripe_coupon_id:
        await stripe.delete_coupon(coupon.stripe_coupon_id)
    coupon.deleted_at = utcnow()
    await db.flush()
    return coupon


async def create_promotion_code(
    db: AsyncSession, stripe: StripeGateway, coupon_id: uuid.UUID, body: PromotionCodeCreate
) -> PromotionCode:
    coupon = await get_coupon(db, coupon_id)
    if coupon.deleted_at is not None:
        raise CouponDeleted(f"The coupon {coupon.id} was deleted; it takes no new promotion codes.")
    assert coupon.stripe_coupon_id is not None
    promo = PromotionCode(
        id=uuid.uuid4(),
        coupon_id=coupon.id,
        code=body.code,
        max_redemptions=body.max_redemptions,
        expires_at=body.expires_at,
        first_time_only=body.first_time_only,
        is_active=True,
    )
    try:
        async with db.begin_nested():
            db.add(promo)
            await db.flush()
    except IntegrityError as exc:
        raise PromotionCodeTaken(f"An active promotion code {body.code!r} exists.") from exc
    try:
        promo.stripe_promotion_code_id = await stripe.create_promotion_code(
            coupon_id=coupon.stripe_coupon_id,
            code=promo.code,
            max_redemptions=promo.max_redemptions,
            expires_at=promo.expires_at,
            first_time_only=promo.first_time_only,
            metadata={"promotion_code_id": str(promo.id), "coupon_id": str(coupon.id)},
            key=f"promotion-code-{promo.id}-create",
        )
    except StripeRequestRejected as exc:
        if exc.code == "resource_already_exists":  # made at Stripe outside our API
            raise PromotionCodeTaken(f"Stripe has an active promotion code {body.code!r}.") from exc
        raise
    await db.flush()
    return promo


async def list_promotion_codes(
    db: AsyncSession, coupon_id: uuid.UUID, *, limit: int, cursor: str | None
) -> tuple[list[PromotionCode], str | None]:
    await get_coupon(db, coupon_id)
    after = decode_time_cursor(cursor) if cursor else None
    rows = await PromotionCodeRepository(db).page_for_coupon(coupon_id, limit=limit + 1, after=after)
    return page_of(rows, limit, lambda promo: (promo.created_at, promo.id))


async def deactivate_promotion_code(
    db: AsyncSession, stripe: StripeGateway, coupon_id: uuid.UUID, promotion_code_id: uuid.UUID
) -> PromotionCode:
    """Customers can no longer use it; subscriptions that did keep their discount. Idempotent."""
    promo = await PromotionCodeRepository(db).get(promotion_code_id, for_update=True)
    if promo is None or promo.coupon_id != coupon_id:
        raise PromotionCodeNotFound(f"No promotion code {promotion_code_id} on coupon {coupon_id}.")
    if promo.is_active:
        await _deactivate(stripe, promo)
        await db.flush()
    return promo


async def _deactivate(stripe: StripeGateway, promo: PromotionCode) -> None:
    if promo.stripe_promotion_code_id:
        await stripe.set_promotion_code_active(
            promo.stripe_promotion_code_id, False, key=f"promotion-code-{promo.id}-deactivate"
        )
    promo.is_active = False


async def redeemable_promotion_code(
    db: AsyncSession, stripe: StripeGateway, user_id: uuid.UUID, plan: Plan, text: str
) -> PromotionCode:
    """The active promotion code `text` if this user may start `plan` with it now; else the
    problem that says why not (unknown, expired, used up, not for this plan, first purchase only)."""
    codes = PromotionCodeRepository(db)
    promo = await codes.active_by_code(text)
    if promo is None:
        if await codes.latest_by_code(text) is not None:
            raise PromotionCodeExpired(f"The promotion code {text!r} is no longer active.")
        raise PromotionCodeUnknown(f"There is no promotion code {text!r}.")
    coupon = await get_coupon(db, promo.coupon_id)
    now = utcnow()
    if coupon.deleted_at is not None or (coupon.redeem_by is not None and coupon.redeem_by <= now):
        raise PromotionCodeExpired(f"The promotion code {text!r} is no longer valid.")
    if promo.expires_at is not None and promo.expires_at <= now:
        raise PromotionCodeExpired(f"The promotion code {text!r} expired on {promo.expires_at:%Y-%m-%d}.")
    if coupon.plan_codes and plan.code not in coupon.plan_codes:
        raise PromotionCodeNotApplicable(
            f"The promotion code {text!r} applies to the plans {', '.join(coupon.plan_codes)}, "
            f"not {plan.code}."
        )
    if coupon.currency is not None and coupon.currency != plan.currency:
        raise PromotionCodeNotApplicable(
            f"The promotion code {text!r} is an amount in {coupon.currency}; "
            f"{plan.code} is paid in {plan.currency}."
        )
    if promo.first_time_only and await PaymentRepository(db).has_paid(user_id):
        raise PromotionCodeFirstTimeOnly(f"The promotion code {text!r} is for a first purchase only.")
    assert promo.stripe_promotion_code_id is not None
    state = await stripe.retrieve_promotion_code(promo.stripe_promotion_code_id)
    code_used_up = state.max_redemptions is not None and state.times_redeemed >= state.max_redemptions
    coupon_used_up = (
        state.coupon_max_redemptions is not None
        and state.coupon_times_redeemed >= state.coupon_max_redemptions
    )
    if code_used_up or coupon_used_up:
        raise PromotionCodeUsedUp(f"The promotion code {text!r} has been used as often as it may be.")
    if not state.active or not state.coupon_valid:
        raise PromotionCodeExpired(f"The promotion code {text!r} is no longer valid.")
    return promo
