"""Queries on coupons and promotion codes."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import func, select, tuple_

from billing_service.models import Coupon, PromotionCode
from gatehouse_platform.db import Repository


class CouponRepository(Repository[Coupon]):
    model = Coupon

    async def page(
        self, *, include_deleted: bool, limit: int, after: tuple[datetime, uuid.UUID] | None
    ) -> list[Coupon]:
        """Newest first, keyset-paginated on (created_at, id)."""
        stmt = select(Coupon)
        if not include_deleted:
            stmt = stmt.where(Coupon.deleted_at.is_(None))
        if after is not None:
            stmt = stmt.where(tuple_(Coupon.created_at, Coupon.id) < tuple_(*after))
        stmt = stmt.order_by(Coupon.created_at.desc(), Coupon.id.desc()).limit(limit)
        return list((await self.session.execute(stmt)).scalars())

    async def by_stripe_ids(self, stripe_ids: set[str]) -> dict[str, Coupon]:
        if not stripe_ids:
            return {}
        rows = await self.session.execute(select(Coupon).where(Coupon.stripe_coupon_id.in_(stripe_ids)))
        return {coupon.stripe_coupon_id or "": coupon for coupon in rows.scalars()}


class PromotionCodeRepository(Repository[PromotionCode]):
    model = PromotionCode

    async def active_by_code(self, code: str) -> PromotionCode | None:
        stmt = select(PromotionCode).where(
            func.lower(PromotionCode.code) == code.lower(), PromotionCode.is_active.is_(True)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def latest_by_code(self, code: str) -> PromotionCode | None:
        """The newest code of that text, active or not (to say why an inactive one is refused)."""
        stmt = (
            select(PromotionCode)
            .where(func.lower(PromotionCode.code) == code.lower())
            .order_by(PromotionCode.created_at.desc())
            .limit(1)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def page_for_coupon(
        self, coupon_id: uuid.UUID, *, limit: int, after: tuple[datetime, uuid.UUID] | None
    ) -> list[PromotionCode]:
        stmt = select(PromotionCode).where(PromotionCode.coupon_id == coupon_id)
        if after is not None:
            stmt = stmt.where(tuple_(PromotionCode.created_at, PromotionCode.id) < tuple_(*after))
        stmt = stmt.order_by(PromotionCode.created_at.desc(), PromotionCode.id.desc()).limit(limit)
        return list((await self.session.execute(stmt)).scalars())

    async def by_stripe_ids(self, stripe_ids: set[str]) -> dict[str, PromotionCode]:
        if not stripe_ids:
            return {}
        rows = await self.session.execute(
            select(PromotionCode).where(PromotionCode.stripe_promotion_code_id.in_(stripe_ids))
        )
        return {promo.stripe_promotion_code_id or "": promo for promo in rows.scalars()}

    async def active_for_coupon(self, coupon_id: uuid.UUID) -> list[PromotionCode]:
        return await self.list_where(PromotionCode.coupon_id == coupon_id, PromotionCode.is_active.is_(True))
