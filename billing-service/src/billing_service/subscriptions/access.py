"""Reading subscriptions: the caller's own, what they are entitled to now, and any user's for admins."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from billing_service.coupons.repository import CouponRepository, PromotionCodeRepository
from billing_service.errors import SubscriptionNotFound
from billing_service.models import Plan, PlanPrice, Subscription
from billing_service.pagination import decode_time_cursor, page_of
from billing_service.plans.repository import PlanPriceRepository, PlanRepository
from billing_service.settings import Settings
from billing_service.subscriptions.dunning import DUNNING_STATUSES
from billing_service.subscriptions.repository import SubscriptionRepository
from billing_service.subscriptions.schemas import DiscountOut, EntitlementsOut, SubscriptionOut, has_access
from gatehouse_platform.db import utcnow


async def _describe(db: AsyncSession, rows: list[Subscription], settings: Settings) -> list[SubscriptionOut]:
    plans: dict[uuid.UUID, Plan] = await PlanRepository(db).by_ids(
        {r.plan_id for r in rows} | {r.scheduled_plan_id for r in rows if r.scheduled_plan_id}
    )
    prices: dict[str, PlanPrice] = await PlanPriceRepository(db).by_price_ids(
        {r.stripe_price_id for r in rows if r.stripe_price_id}
    )
    discounts = await _discounts(db, rows)
    grace, now = timedelta(seconds=settings.expiry_grace_seconds), utcnow()
    dunning_grace = timedelta(seconds=settings.dunning_grace_seconds)
    return [
        SubscriptionOut.of(
            r,
            plans[r.plan_id],
            prices.get(r.stripe_price_id or ""),
            grace=grace,
            dunning_grace=dunning_grace,
            now=now,
            discount=discounts.get(r.id),
            scheduled_plan=plans.get(r.scheduled_plan_id) if r.scheduled_plan_id else None,
        )
        for r in rows
    ]


async def _discounts(db: AsyncSession, rows: list[Subscription]) -> dict[uuid.UUID, DiscountOut]:
    """The discount of each row that has one from a coupon of ours (one made in Stripe's dashboard
    is applied by Stripe all the same, but we have no coupon to describe it with)."""
    discounted = [r for r in rows if r.discount_stripe_coupon_id and r.discount_start]
    coupons = await CouponRepository(db).by_stripe_ids(
        {r.discount_stripe_coupon_id or "" for r in discounted}
    )
    codes = await PromotionCodeRepository(db).by_stripe_ids(
        {r.discount_stripe_promotion_code_id for r in discounted if r.discount_stripe_promotion_code_id}
    )
    out = {}
    for row in discounted:
        coupon = coupons.get(row.discount_stripe_coupon_id or "")
        if coupon is not None:
            promo = codes.get(row.discount_stripe_promotion_code_id or "")
            out[row.id] = DiscountOut.of(row, coupon, promo.code if promo else None)
    return out


async def describe(db: AsyncSession, settings: Settings, row: Subscription) -> SubscriptionOut:
    return (await _describe(db, [row], settings))[0]


async def current_subscription(db: AsyncSession, settings: Settings, user_id: uuid.UUID) -> SubscriptionOut:
    """The subscription that holds access (or is about to), else the most recent one."""
    subscriptions = SubscriptionRepository(db)
    row = await subscriptions.holding(user_id) or await subscriptions.latest(user_id)
    if row is None:
        raise SubscriptionNotFound("You have never subscribed.")
    return await describe(db, settings, row)


async def current_org_subscription(
    db: AsyncSession, settings: Settings, org_id: uuid.UUID
) -> SubscriptionOut:
    subscriptions = SubscriptionRepository(db)
    row = await subscriptions.holding_of_org(org_id) or await subscriptions.latest_of_org(org_id)
    if row is None:
        raise SubscriptionNotFound("The organization has never subscribed.")
    return await describe(db, settings, row)


async def entitlements(db: AsyncSession, settings: Settings, user_id: uuid.UUID) -> EntitlementsOut:
    return await _entitlements_of(db, settings, await SubscriptionRepository(db).holding(user_id))


async def org_entitlements(db: AsyncSession, settings: Settings, org_id: uuid.UUID) -> EntitlementsOut:
    """The organization's: what every member acting in it may use."""
    out = await _entitlements_of(db, settings, await SubscriptionRepository(db).holding_of_org(org_id))
    return out.model_copy(update={"org_id": org_id})


async def _entitlements_of(db: AsyncSession, settings: Settings, row: Subscription | None) -> EntitlementsOut:
    if row is None:
        return EntitlementsOut()
    plan = await PlanRepository(db).get(row.plan_id)
    assert plan is not None
    if row.restricted_at is not None and row.status in DUNNING_STATUSES:
        return EntitlementsOut(
            plan_code=plan.code, tier=plan.tier, status=row.status, restricted=True, features=[]
        )
    if not has_access(row, grace=timedelta(seconds=settings.expiry_grace_seconds), now=utcnow()):
        return EntitlementsOut()
    return EntitlementsOut(
        plan_code=plan.code,
        tier=plan.tier,
        features=list(plan.features),
        status=row.status,
        active_until=row.current_period_end,
    )


async def subscriptions_page(
    db: AsyncSession, settings: Settings, user_id: uuid.UUID, *, limit: int, cursor: str | None
) -> tuple[list[SubscriptionOut], str | None]:
    after = decode_time_cursor(cursor) if cursor else None
    rows = await SubscriptionRepository(db).page_for_user(user_id, limit=limit + 1, after=after)
    page, next_cursor = page_of(rows, limit, lambda row: (row.created_at, row.id))
    return await _describe(db, page, settings), next_cursor
